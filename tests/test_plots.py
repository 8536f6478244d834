"""The groups picture stays readable, and cheap to draw, as the stream grows."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from trautoml.plots import MAX_LEGEND_GROUPS, MAX_NAMED_DATASETS, draw_groups, groups_figure, project_2d


def _stream(n: int, n_groups: int):
    rng = np.random.default_rng(n)
    names = [f"ds-{i}" for i in range(n)]
    return names, rng.random((n, 4)), [f"g{i % n_groups + 1}" for i in range(n)]


def test_small_stream_names_every_dataset_and_has_a_legend():
    names, means, groups = _stream(8, 3)
    fig = draw_groups(names, means, groups, "ds-7")
    ax = fig.axes[0]
    assert {t.get_text() for t in ax.texts} == set(names)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["group g1", "group g2", "group g3"]
    assert ax.get_title() == "8 datasets in 3 groups; new: ds-7 → group g2"
    plt.close(fig)


def test_long_stream_names_only_the_new_dataset_and_drops_the_legend():
    # few groups, so the new dataset's group alone has far more members than a picture can name
    n, n_groups = 4 * MAX_NAMED_DATASETS, 2
    names, means, groups = _stream(n, n_groups)
    fig = draw_groups(names, means, groups, names[-1])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [names[-1]]
    assert ax.get_title().endswith(f"new: {names[-1]} → group {groups[-1]}")
    plt.close(fig)


def test_many_groups_drop_the_legend():
    names, means, groups = _stream(MAX_NAMED_DATASETS, 4 * MAX_LEGEND_GROUPS)
    fig = draw_groups(names, means, groups, names[-1])
    ax = fig.axes[0]
    assert {t.get_text() for t in ax.texts} == set(names)
    assert ax.get_legend() is None
    plt.close(fig)


def test_groups_figure_writes_a_png(tmp_path):
    names, means, groups = _stream(50, 12)
    path = groups_figure(names, means, groups, None, tmp_path / "groups.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_projection_keeps_the_two_main_directions():
    # points on a line in 3-D project onto the first axis with their distances kept
    t = np.array([0.0, 1.0, 3.0])
    pts = np.outer(t, [1.0, 2.0, 2.0]) / 3.0
    xy = project_2d(pts)
    assert np.allclose(np.abs(xy[:, 0] - xy[0, 0]), t) and np.allclose(xy[:, 1], 0)
