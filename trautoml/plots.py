"""Pictures people look at: the groups in profile space (PCA to 2-D)."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence

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
    named. Names never overlap one another or leave the picture: the new dataset is named first, each other one
    where one of a few spots beside its point is free, or not at all; the title is two short lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = project_2d(means)
    palette = plt.get_cmap("tab10")
    colour = {g: palette(k % 10) for k, g in enumerate(dict.fromkeys(groups))}  # in order of first appearance
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    ax.scatter(xy[:, 0], xy[:, 1], s=50, c=[colour[g] for g in groups], alpha=0.85)
    i = list(names).index(highlight) if highlight is not None and highlight in names else None
    new_group = None if i is None else groups[i]
    if i is not None and new_group:
        ax.scatter(xy[i, 0], xy[i, 1], s=260, marker="*", facecolor="none", edgecolor="black", linewidth=1.5)
    if len(colour) <= MAX_LEGEND_GROUPS:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", linestyle="", color=c, label=f"group {g}") for g, c in colour.items()]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xlabel("PC 1 of landmarker accuracies")
    ax.set_ylabel("PC 2")
    title = f"{len(names)} datasets in {len(colour)} groups"
    if highlight is not None and new_group:
        title += f"\nnew: {_shorten(highlight, TITLE_NAME_CHARS)} → group {new_group}"
    ax.set_title(title, fontsize=9)
    ax.margins(0.08)
    fig.tight_layout()  # before the names: they are placed on the final layout and must not move after
    order = [i for i, n in enumerate(names) if n == highlight]
    if len(names) <= MAX_NAMED_DATASETS:
        order += [i for i, n in enumerate(names) if n != highlight]
    _place_labels(fig, ax, xy, [names[i] for i in order], order)
    return fig


#: A name in the title longer than this is cut (with …), so the title fits the picture's width.
TITLE_NAME_CHARS = 48
#: Where a name may sit beside its point, in points: right-above, right-below, left-above, left-below, then
#: further above and below.
_LABEL_SPOTS = ((4, 4, "left", "bottom"), (4, -4, "left", "top"), (-4, 4, "right", "bottom"),
                (-4, -4, "right", "top"), (0, 9, "center", "bottom"), (0, -9, "center", "top"))


def _shorten(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def _place_labels(fig, ax, xy: np.ndarray, labels: Sequence[str], index: Sequence[int]) -> None:
    """Annotate each point ``index[k]`` with ``labels[k]`` at the first spot where the text overlaps no name placed
    so far (nor the title or legend) and stays inside the axes; leave the name off if there is none. The first
    label (the new dataset's) may also use the rest of the figure, so it is left off only if nothing fits."""
    renderer = fig.canvas.get_renderer()
    placed = [a.get_window_extent(renderer) for a in (ax.title, ax.get_legend()) if a is not None]
    for k, (label, i) in enumerate(zip(labels, index)):
        for area in (ax.bbox, fig.bbox) if k == 0 else (ax.bbox,):
            if _annotate_free(ax, renderer, _shorten(label, TITLE_NAME_CHARS), xy[i], area, placed):
                break


def _annotate_free(ax, renderer, label: str, point, area, placed: list) -> bool:
    """Put ``label`` at the first free spot beside ``point`` inside ``area``; False (nothing drawn) if none is."""
    for dx, dy, ha, va in _LABEL_SPOTS:
        text = ax.annotate(label, point, fontsize=6, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va)
        box = text.get_window_extent(renderer)
        fits = box.x0 >= area.x0 and box.x1 <= area.x1 and box.y0 >= area.y0 and box.y1 <= area.y1
        if fits and not any(box.overlaps(other) for other in placed):
            placed.append(box)
            return True
        text.remove()
    return False
