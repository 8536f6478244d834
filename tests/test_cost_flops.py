"""Training FLOPs, the cost unit load cannot change (trautoml.models.flops): counted by hand on small networks, equal
under a CPU hog, carried by every decision, charged again for cached work, and in the summary's net saving."""
from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import subprocess
import sys

import pytest
from torch import nn

from trautoml import TrAutoML
from trautoml.data import load_dataset
from trautoml.decision import Decision
from trautoml.models.flops import count
from trautoml.models.spec import ModelSpec
from trautoml.models.train import planned_flops, train_and_evaluate
from trautoml.summary import format_flops, summarize

#: Multinomial logistic regression over sklearn digits' 8x8 pixels: one Linear(64, 10).
LOGREG = ModelSpec(space="mlp", arch={"hidden": [], "activation": "relu", "norm": "none", "dropout": 0.0},
                   train={"batch_size": 32})
DIGITS = "builtin:digits?max_train=300"


def test_a_linear_layer_costs_2_in_out_forward_and_as_much_backward():
    c = count(nn.Linear(64, 10), (64,))
    assert c.forward == 2 * 64 * 10
    assert c.backward == 2 * 64 * 10  # the weights' gradient only: the input needs none
    assert c.work(trained=3, forward_only=5) == 3 * (2 * 1280) + 5 * 1280


def test_a_one_conv_net_counts_its_conv_and_head_and_the_heads_input_gradient():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    conv, head = 2 * (3 * 3 * 1) * 4 * (8 * 8), 2 * 256 * 5
    c = count(net, (1, 8, 8))
    assert c.forward == conv + head
    assert c.backward == conv + 2 * head  # conv: weights only; head: weights and its input's gradient


def test_a_training_is_charged_its_images_and_the_plan_agrees_without_training():
    ds = load_dataset(DIGITS)
    res = train_and_evaluate(LOGREG, ds, 1.5, seed=0, max_eval=100, device="cpu")
    n_train = len(ds.y_train)
    steps = math.ceil(1.5 * n_train / 32)
    forward = 2 * 64 * 10
    evaluated = min(100, len(ds.y_val)) + min(100, len(ds.y_test))  # no batch norm: no recalibration pass
    assert not res.diverged and res.steps == steps
    assert res.flops == 2 * forward * steps * 32 + forward * evaluated
    assert planned_flops(LOGREG, ds, 1.5, max_eval=100) == res.flops


def test_the_same_work_costs_the_same_flops_under_a_cpu_hog():
    spec = ModelSpec(space="cnn", arch={"layers": [{"type": "conv", "filters": 16, "kernel": 3, "stride": 1},
                                                   {"type": "pool", "op": "max", "size": 2, "stride": 2}],
                                        "activation": "relu", "norm": "batch", "dropout": 0.0})
    ds = load_dataset(DIGITS)
    quiet = train_and_evaluate(spec, ds, 2.0, seed=3, device="cpu")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = train_and_evaluate(spec, ds, 2.0, seed=3, device="cpu")
    finally:
        hog.kill()
        hog.wait()
    assert loaded.flops == quiet.flops > 0
    assert loaded.val_accuracy == quiet.val_accuracy  # the same work, whatever its seconds
    print(f"\nFLOPs {format_flops(quiet.flops)} both times; seconds {quiet.wall_seconds:.3f} quiet, "
          f"{loaded.wall_seconds:.3f} beside a CPU hog")


FLOPS = ("profile_flops", "search_flops", "train_flops")


def _costs(d) -> tuple:
    return tuple(getattr(d, f) for f in FLOPS)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """digits and its half, ingested into workspace a, then again into workspace b over the same cache."""
    tmp = tmp_path_factory.mktemp("flops")
    common = dict(preset="tiny", executor="serial", quiet=True, tracking=False, cache=tmp / "cache.db")
    uris = ["builtin:digits", "builtin:digits?subsample=0.5"]
    with TrAutoML(tmp / "a", **common) as t:
        first = [t.ingest(u) for u in uris]
    with TrAutoML(tmp / "b", **common) as t:
        again = [t.ingest(u) for u in uris]
    return tmp, common, uris, first, again


def test_an_ingest_charges_profile_search_and_training_flops(ingested):
    _, _, _, (searched, reused), _ = ingested
    assert (searched.outcome, reused.outcome) == ("searched", "reused")
    assert all(x > 0 for x in _costs(searched))
    assert reused.profile_flops > 0 and reused.train_flops > 0 and reused.search_flops == 0.0
    assert searched.total_flops == sum(_costs(searched))
    assert _costs(Decision.from_dict(json.loads(json.dumps(searched.to_dict())))) == _costs(searched)  # show --json
    print(f"\n{searched.dataset}: profile {format_flops(searched.profile_flops)} "
          f"({searched.profile_seconds:.2f}s), search {format_flops(searched.search_flops)} "
          f"({searched.search_seconds:.2f}s), train {format_flops(searched.train_flops)} "
          f"({searched.train_seconds:.2f}s)")


def test_a_cache_hit_is_charged_the_flops_counted_when_it_ran(ingested):
    _, _, _, first, again = ingested
    assert all(d.profile_cached for d in again) and again[0].cached_trials == again[0].trials > 0
    assert [_costs(d) for d in again] == [_costs(d) for d in first]


def test_records_cached_before_flops_were_counted_are_charged_the_same(ingested):
    tmp, common, uris, first, _ = ingested
    with sqlite3.connect(common["cache"]) as db:
        db.execute("UPDATE trials SET trial = json_remove(trial, '$.flops')")
        db.execute("UPDATE profiles SET profile = json_remove(profile, '$.flops')")
    with TrAutoML(tmp / "c", **common) as t:
        old = [t.ingest(u) for u in uris]
    assert [_costs(d) for d in old] == [_costs(d) for d in first]


def test_the_net_saving_charges_the_reuses_training(ingested):
    _, _, _, (searched, reused), _ = ingested
    s = summarize([searched, reused])
    # all-search: both datasets at the searched one's search + training; spent: everything, the reuse's training too
    assert s.net_saved_flops == pytest.approx(
        2 * (searched.search_flops + searched.train_flops) - searched.total_flops - reused.total_flops)
    assert s.net_saved_seconds == pytest.approx(
        2 * (searched.search_seconds + searched.train_seconds) - searched.total_seconds - reused.total_seconds)
    dearer = dataclasses.replace(reused, train_seconds=reused.train_seconds + 10.0,
                                 train_flops=reused.train_flops + 1e9)
    s2 = summarize([searched, dearer])
    assert s2.net_saved_seconds == pytest.approx(s.net_saved_seconds - 10.0)
    assert s2.net_saved_flops == pytest.approx(s.net_saved_flops - 1e9)
    spent = s.profile_flops + s.search_flops + s.train_flops
    assert s.net_saved_share == pytest.approx(s.net_saved_flops / (s.net_saved_flops + spent))
    assert f"({s.net_saved_share:.0%} of searching and training every dataset)" in s.text()
    assert "FLOP" in s.text() and s.to_dict()["train_flops"] == searched.train_flops + reused.train_flops


def test_decisions_stored_before_flops_load_with_none_charged():
    d = {"dataset": "x", "content_hash": "h", "group": "g1", "outcome": "searched", "reason": "empty-cluster",
         "spec": LOGREG.to_dict(), "backend": "hyperband", "val_accuracy": 0.5, "test_accuracy": 0.5,
         "profile_seconds": 1.0, "search_seconds": 2.0, "train_seconds": 3.0}
    old = Decision.from_dict(d)
    assert _costs(old) == (0.0, 0.0, 0.0) and old.total_flops == 0.0 and old.total_seconds == 6.0
