"""The tabular mini-benchmark (search_backends.transfer.minibench): its space, its canonical cells, and the shipped
table answering every point."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from search_backends.transfer import minibench as mb


def test_the_space_has_the_distinct_cells_nas_bench_101s_rules_give():
    cells = mb.cells()
    assert len(cells) == 2559 and len({c.key() for c in cells}) == len(cells)
    assert all(c.n >= 2 and len(c.ops) == c.n - 2 for c in cells)


def test_isomorphic_and_pruned_points_are_one_cell():
    chain = [0] * len(mb.EDGES)
    for e in ((0, 1), (1, 2), (2, 4), (0, 3), (3, 4)):
        chain[mb.EDGES.index(e)] = 1
    a = mb.canonical(chain, ("conv3x3", "conv1x1", "maxpool3x3"))
    # the same graph with nodes 1-2 (one branch) and 3 (the other) swapped in their labels
    swapped = [0] * len(mb.EDGES)
    for e in ((0, 2), (2, 3), (3, 4), (0, 1), (1, 4)):
        swapped[mb.EDGES.index(e)] = 1
    b = mb.canonical(swapped, ("maxpool3x3", "conv3x3", "conv1x1"))
    assert a == b
    # a node on no input→output path is pruned: its op does not matter
    dangling = list(chain)
    dangling[mb.EDGES.index((0, 3))] = dangling[mb.EDGES.index((3, 4))] = 0
    dangling[mb.EDGES.index((1, 3))] = 1  # 3 is reached but leads nowhere
    assert mb.canonical(dangling, ("conv3x3", "conv1x1", "conv1x1")) == \
        mb.canonical(dangling, ("conv3x3", "conv1x1", "maxpool3x3"))
    assert mb.canonical([0] * len(mb.EDGES), ("conv3x3",) * 3) is None  # the output is unreachable


def test_bad_points_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="10 edge bits and 3 ops"):
        mb.canonical([1, 0], ("conv3x3",) * 3)
    with pytest.raises(ValueError, match="unknown op 'conv5x5'"):
        mb.canonical([1] * 10, ("conv5x5", "conv1x1", "conv1x1"))


def test_a_build_is_deterministic(tmp_path):
    args = dict(datasets={"digits": "builtin:digits"}, workers=1, limit=2, progress=lambda msg: None)
    mb.build(tmp_path / "a.npz", **args)
    mb.build(tmp_path / "b.npz", **args)
    a, b = mb.MiniBench(tmp_path / "a.npz"), mb.MiniBench(tmp_path / "b.npz")
    assert a.keys == b.keys and np.array_equal(a.val, b.val) and np.array_equal(a.test, b.test)


def test_the_shipped_table_answers_every_point_of_the_space():
    bench = mb.MiniBench()
    assert len(bench) == 2559 and bench.datasets == list(mb.DATASETS)
    seen = set()
    for bits in itertools.product((0, 1), repeat=len(mb.EDGES)):
        for ops in itertools.product(mb.OPS, repeat=3):
            cell = mb.canonical(bits, ops)
            for d in bench.datasets:
                assert (bench.query(cell, d) is None) == (cell is None)
            if cell is not None:
                seen.add(cell.key())
    assert seen == set(bench.keys)
    for name in ("val", "test"):
        acc = getattr(bench, name)
        assert np.all((acc >= 0) & (acc <= 1)) and acc.std(axis=0).min() > 0.01  # cells differ on every dataset
    assert np.all(bench.seconds > 0)
    with pytest.raises(KeyError, match="unknown dataset 'cifar'"):
        bench.query(mb.cells()[0], "cifar")
