"""Pictures people look at: the groups in profile space (PCA to 2-D)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def project_2d(points: np.ndarray) -> np.ndarray:
    """PCA projection to two dimensions (padded with zeros when there are fewer than two directions)."""
    pts = np.atleast_2d(np.asarray(points, dtype=float))
    centred = pts - pts.mean(axis=0)
    if len(pts) < 2 or not np.any(centred):
        return np.zeros((len(pts), 2))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt[:2].T
    return np.pad(proj, ((0, 0), (0, 2 - proj.shape[1])))


def groups_figure(names: Sequence[str], means: np.ndarray, groups: Sequence[str], highlight: str | None,
                  path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = project_2d(means)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    palette = plt.get_cmap("tab10")
    for k, group in enumerate(dict.fromkeys(groups)):
        idx = [i for i, g in enumerate(groups) if g == group]
        ax.scatter(xy[idx, 0], xy[idx, 1], s=50, color=palette(k % 10), label=f"group {group}", alpha=0.85)
    for i, name in enumerate(names):
        if name == highlight:
            ax.scatter(xy[i, 0], xy[i, 1], s=260, marker="*", facecolor="none", edgecolor="black", linewidth=1.5,
                       label=f"new: {name}")
        ax.annotate(name, xy[i], fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("PC 1 of landmarker accuracies")
    ax.set_ylabel("PC 2")
    ax.set_title("Datasets in profile space, coloured by group")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
