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
    means = np.repeat(np.arange(8.0)[:, None], 4, axis=1) * [1, -1, 1, 2]  # spread out: room for every name
    fig = draw_groups(names, means, groups, "ds-7")
    ax = fig.axes[0]
    assert {t.get_text() for t in ax.texts} == set(names)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["group g1", "group g2", "group g3"]
    assert ax.get_title() == "8 datasets in 3 groups\nnew: ds-7 → group g2"
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


def _boxes_of_names(fig):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    return [t.get_window_extent(r) for t in fig.axes[0].texts]


def _demo_like(n: int):
    """``n`` datasets with long readable names, crowded in a few tight clusters (as families are)."""
    rng = np.random.default_rng(7)
    names = [f"fashion-mnist·image-bg·half·{i}" for i in range(n)]
    centres = rng.random((4, 5))
    means = centres[np.arange(n) % 4] + rng.normal(0, 0.01, (n, 5))
    return names, means, [f"g{i % 8 + 1}" for i in range(n)]


def test_names_never_overlap_and_title_and_names_stay_inside_the_picture():
    for n in (12, 500):
        names, means, groups = _demo_like(n)
        fig = draw_groups(names, means, groups, names[-1])
        boxes = _boxes_of_names(fig)
        assert boxes and fig.axes[0].texts[0].get_text() == names[-1]  # the new dataset is always named
        assert all(not a.overlaps(b) for k, a in enumerate(boxes) for b in boxes[k + 1:]), n
        title = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
        for box in boxes + [title]:
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, n
        plt.close(fig)


def test_a_very_long_name_is_cut_in_the_title():
    names, means, groups = _stream(3, 2)
    names[-1] = "x" * 300
    fig = draw_groups(names, means, groups, names[-1])
    title = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
    assert title.x1 <= fig.bbox.x1 and "…" in fig.axes[0].get_title()
    plt.close(fig)
