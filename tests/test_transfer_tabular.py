"""Search agents on the tabular mini-benchmark (search_backends.transfer.tabular) and the double-XOR study
(search_backends.transfer.fig3): the spaces map onto the table, replicas are deterministic, and quick versions of
Fig. 3, Fig. 5 and Wong's held-out transfer run end to end. The full runs are benchmarks (README), not tests."""
from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest

from search_backends.transfer import fig3
from search_backends.transfer import minibench as mb
from search_backends.transfer import tabular as tb


@pytest.fixture(scope="module")
def smooth_table(tmp_path_factory):
    """A table with a known optimum: validation accuracy grows with the number of conv3x3 ops and edges."""
    cells = mb.cells()
    score = np.array([c.ops.count("conv3x3") + 0.1 * len(c.edges) for c in cells], dtype=np.float32)
    val = np.stack([0.5 + 0.1 * score] * 3, axis=1)
    path = tmp_path_factory.mktemp("table") / "smooth.npz"
    np.savez_compressed(path, keys=np.array([c.key() for c in cells]), val=val, test=val - 0.01,
                        seconds=np.ones_like(val), meta=np.array(json.dumps({"datasets": list(mb.DATASETS)})))
    return str(path)


def test_the_spaces_share_state_names_and_map_every_walk_onto_the_table():
    full = dict(tb.FULL.states)
    assert len(full) == len(mb.EDGES) + 3
    for sub in tb.SUBSPACES:
        assert set(dict(sub.states)) < set(full)  # a proper subspace, named alike
    rng = random.Random(0)
    for _ in range(200):
        actions = [rng.choice(a) for _, a in tb.FULL.states]
        bits, ops = tb.point_of(tb.FULL, actions)
        assert bits == actions[:len(mb.EDGES)] and ops == actions[len(mb.EDGES):]
    # a subspace walk leaves node 3 out: its edges are off, whatever op it would have
    for sub in tb.SUBSPACES:
        for actions in itertools.product(*(a for _, a in sub.states)):
            bits, ops = tb.point_of(sub, actions)
            assert all(b == 0 for (i, j), b in zip(mb.EDGES, bits) if 3 in (i, j))
            cell = mb.canonical(bits, ops)
            assert cell is None or cell.n <= 4


def test_a_cell_space_refuses_unknown_ops_and_missing_ends():
    with pytest.raises(ValueError, match="unknown op 'conv7x7'"):
        tb.cell_space("x", ("conv7x7",))
    with pytest.raises(ValueError, match="input"):
        tb.cell_space("x", nodes=(0, 1, 2))


def test_a_replica_is_deterministic_under_its_seed(smooth_table):
    args = (smooth_table, "fashion", "transformer", 3, 20, 30, 5, 2, {"pqt_weight": 0.0})
    a, b = tb.fig5_replica(args), tb.fig5_replica(args)
    assert {m: (t.val, t.test) for m, t in a.items()} == {m: (t.val, t.test) for m, t in b.items()}
    c = tb.fig5_replica(args[:3] + (4,) + args[4:])  # another seed
    assert any(a[m].val != c[m].val for m in a)


def test_searches_find_the_known_optimum_of_a_smooth_table(smooth_table):
    bench = mb.MiniBench(smooth_table)
    best = float(bench.val[:, 0].max())
    evo = [tb.evolution_search(bench, "digits", 150, seed, population=10, sample=4) for seed in range(5)]
    rnd = [tb.random_search(bench, "digits", 150, seed) for seed in range(5)]
    assert all(len(t.val) == 150 for t in evo + rnd)
    assert sum(t.best_val()[-1] == pytest.approx(best) for t in evo) >= 4
    assert np.mean([t.best_val()[-1] for t in evo]) >= np.mean([t.best_val()[-1] for t in rnd])


def test_a_trace_tracks_the_best_by_validation():
    t = tb.Trace(val=[0.5, 0.7, 0.6, 0.8], test=[0.4, 0.65, 0.9, 0.7])
    assert t.best_val().tolist() == [0.5, 0.7, 0.7, 0.8]
    assert t.test_of_best().tolist() == [0.4, 0.65, 0.65, 0.7]
    assert t.trials_to(0.7) == 2 and t.trials_to(0.9) == float("inf")


def test_quick_fig5_and_wong_run_end_to_end(smooth_table):
    res = tb.fig5("digits", "lstm", replicas=2, budget=25, pretrain=40, population=5, sample=2, path=smooth_table)
    assert set(res["methods"]) == set(tb.FIG5_METHODS)
    thresholds = list(res["thresholds"].values())
    assert thresholds == sorted(thresholds)  # rank 50's accuracy ≤ rank 1's
    for m in res["methods"].values():
        assert m["runs"] == 2
        curve = [c["best_val"] for c in m["curve"].values()]
        assert curve == sorted(curve) and all(0 <= c["regret"] <= 1 for c in m["curve"].values())
    res = tb.wong("lstm", replicas=1, budget=15, pretrain=20, path=smooth_table)
    assert set(res["held_out"]) == set(mb.DATASETS)
    assert all(set(h["methods"]) == set(tb.WONG_METHODS) for h in res["held_out"].values())


def test_moving_average_matches_a_hand_computation():
    assert fig3.moving_average([1, 0, 1, 1], window=2).tolist() == [1.0, 0.5, 0.5, 1.0]


def test_quick_fig3_tunes_compares_and_maps_attention(monkeypatch):
    monkeypatch.setattr(fig3, "GRID", [{"lr": 5e-3, "pqt_weight": 0.0, "entropy_weight": 0.0}])
    monkeypatch.setattr(fig3, "TUNING_SEEDS", (10_000,))
    monkeypatch.setattr(fig3, "AGENTS", {k: fig3.AGENTS[k] for k in ("transformer", "lstm-matched")})
    res = fig3.fig3(replicas=2, budget=60, tune_budget=60)
    for agent in ("transformer", "lstm-matched"):
        r = res["agents"][agent]
        assert r["tuning"]["best"]["lr"] == 5e-3 and len(r["samples_to_threshold"]) == 2
        assert len(r["curve_every_10"]["mean"]) == 6
    att = np.array(res["agents"]["transformer"]["attention_first_layer"])
    assert att.shape == (7, 8)
    assert np.allclose(att.sum(1), 1, atol=0.01) and np.allclose(np.triu(att, 2), 0)  # a row sees its past only
