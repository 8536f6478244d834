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


#: Beyond these, the picture names only the new dataset (and its group in the title), and has no legend: a figure
#: with hundreds of labels is unreadable, and laying them out (legend placement, tight layout) grew to seconds per
#: ingest in a 400-dataset soak (bench/bench_soak.py), work repeated for every dataset of a long stream. Naming the
#: new dataset's whole group was not enough: in a long stream one group can hold hundreds of members.
MAX_NAMED_DATASETS, MAX_LEGEND_GROUPS = 30, 10


def groups_figure(names: Sequence[str], means: np.ndarray, groups: Sequence[str], highlight: str | None,
                  path: Path) -> Path:
    """Every dataset in profile space (PCA of the mean landmarker accuracies), coloured by group, the new one
    (``highlight``) starred, written to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = draw_groups(names, means, groups, highlight)
    fig.savefig(path)
    plt.close(fig)
    return path


def draw_groups(names: Sequence[str], means: np.ndarray, groups: Sequence[str], highlight: str | None):
    """The figure of ``groups_figure``: names and a legend while the stream is small, then only the new dataset
    named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = project_2d(means)
    palette = plt.get_cmap("tab10")
    colour = {g: palette(k % 10) for k, g in enumerate(dict.fromkeys(groups))}  # in order of first appearance
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    ax.scatter(xy[:, 0], xy[:, 1], s=50, c=[colour[g] for g in groups], alpha=0.85)
    new_group = groups[list(names).index(highlight)] if highlight in names else None
    for i, name in enumerate(names):
        if name == highlight:
            ax.scatter(xy[i, 0], xy[i, 1], s=260, marker="*", facecolor="none", edgecolor="black", linewidth=1.5)
        if len(names) <= MAX_NAMED_DATASETS or name == highlight:
            ax.annotate(name, xy[i], fontsize=6, xytext=(3, 3), textcoords="offset points")
    if len(colour) <= MAX_LEGEND_GROUPS:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", linestyle="", color=c, label=f"group {g}") for g, c in colour.items()]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xlabel("PC 1 of landmarker accuracies")
    ax.set_ylabel("PC 2")
    title = f"{len(names)} datasets in {len(colour)} groups"
    ax.set_title(title + (f"; new: {highlight} → group {new_group}" if new_group else ""), fontsize=9)
    fig.tight_layout()
    return fig
