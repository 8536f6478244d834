"""Warm-starting from earlier datasets' models (Lindauer & Hutter 2018; Feurer et al. 2015), grouper "none", and
the product options the benchmark's rows are made of (tracking off, a shared cache)."""
from __future__ import annotations

import numpy as np
import pytest

from trautoml import TrAutoML
from trautoml.grouping import make_grouper
from trautoml.warmstart import neighbour_specs


def _rows(points, specs):
    return [{"profile": {"mean": list(p)}, "decision": {"spec": s}} for p, s in zip(points, specs)]


def test_neighbours_latest_nearest_and_standardised():
    specs = [{"id": i} for i in range(4)]
    rows = _rows([[0.0, 0.0], [1.0, 0.0], [0.0, 40.0], [3.0, 20.0]], specs)
    assert neighbour_specs(rows, None, "latest", 2) == [{"id": 3}, {"id": 2}]
    assert neighbour_specs(rows, np.array([0.9, 0.1]), "profile", 2) == [{"id": 1}, {"id": 0}]
    # standardised per feature: the second feature's large spread no longer dominates the distance
    assert neighbour_specs(rows, np.array([0.0, 15.0]), "profile", 1) == [{"id": 3}]
    assert neighbour_specs(rows, np.array([0.0, 15.0]), "metafeatures", 1) == [{"id": 0}]
    assert neighbour_specs(_rows([[0], [1], [2]], [{"a": 1}, {"a": 1}, {"a": 2}]), None, "latest", 3) == \
        [{"a": 2}, {"a": 1}]  # one per distinct spec
    assert neighbour_specs([], np.zeros(2), "profile", 3) == []
    with pytest.raises(ValueError, match="unknown warm start"):
        neighbour_specs(rows, None, "psychic", 1)


def test_grouper_none_founds_a_group_for_every_dataset():
    g = make_grouper("none")
    assignments = [g.observe(np.zeros((1, 1))) for _ in range(3)]
    assert [a.group for a in assignments] == ["g1", "g2", "g3"] and all(a.founded for a in assignments)
    assert make_grouper("none").__class__.from_dict(g.to_dict()).labels() == ["g1", "g2", "g3"]


def test_bad_product_options_are_named():
    with pytest.raises(ValueError, match="unknown warm start"):
        TrAutoML("ws", warm_start="psychic")
    with pytest.raises(ValueError, match="warm_k"):
        TrAutoML("ws", warm_start="latest", warm_k=0)
    with pytest.raises(ValueError, match="goes with grouper"):
        TrAutoML("ws", grouper="mh", warm_start="metafeatures")


def test_untracked_workspaces_share_one_cache_and_warm_start_from_earlier_models(tmp_path):
    uris = ["builtin:digits?max_train=200", "builtin:digits?max_train=200&invert=1"]
    common = dict(preset="tiny", executor="serial", quiet=True, tracking=False, cache=tmp_path / "cache.db")
    cold = TrAutoML(tmp_path / "a", grouper="none", **common)
    first = [cold.ingest(u) for u in uris]
    assert not (tmp_path / "a" / "mlflow.db").exists()  # tracking off: no MLflow store at all
    assert [d.group for d in first] == ["g1", "g2"] and all(d.outcome == "searched" for d in first)
    assert first[0].profile_seconds == 0.0  # grouper none measures nothing
    warm = TrAutoML(tmp_path / "b", grouper="none", warm_start="latest", warm_k=1, **common)
    second = [warm.ingest(u) for u in uris]
    # the first dataset has no earlier one: the same search, every trial and the final training from the cache
    assert second[0].cached_trials == second[0].trials
    assert second[0].test_accuracy == first[0].test_accuracy and second[0].train_seconds == first[0].train_seconds
    # the second starts from the first's model, within the same budget: that spec was trained on it
    assert second[1].trials == first[1].trials
    import sqlite3

    with sqlite3.connect(tmp_path / "cache.db") as db:
        trained = {r[0] for r in db.execute("SELECT spec_key FROM trials WHERE content_hash = ?",
                                            (second[1].content_hash,))}
    assert first[0].spec.key() in trained
    # the search reports whether a warm-start model won it: exactly when the dataset got the earlier model
    assert second[1].search["warm_start_won"] == (second[1].spec == first[0].spec)
    assert second[0].search["warm_start_won"] is False and first[1].search["warm_start_won"] is False
