"""End to end through the Python API on tiny data (preset tiny, serial executor), checked in the workspace and,
through MlflowClient, in the MLflow store."""
from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from search_backends.base import TrialRequest
from helpers import all_runs, client, dataset_runs, mlflow_counts, new_workspace, \
    state_counts
from trautoml import TrAutoML
from trautoml.models.spec import ModelSpec
from trautoml.stages import GroupStage, ProfileStage, Recovery, SearchTrainStage
from trautoml.workspace import WorkspaceError

FIRST, SECOND = "builtin:digits", "builtin:digits?subsample=0.5"
#: The workspace seed of the two-dataset streams: at the tiny budget its search finds digits a model that knows the
#: task (0.99 validation accuracy; seed 0's reaches 0.10), so the reuse fine-tunes it (a founder at chance is
#: retrained afresh: the zero-shot check).
SEED = 3


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """Two ingests into a fresh workspace, the MLflow store created the real way (no template)."""
    ws = tmp_path_factory.mktemp("api")
    t = TrAutoML(ws, preset="tiny", executor="serial", quiet=True, seed=SEED)
    seconds = []
    decisions = []
    for uri in (FIRST, SECOND):
        t0 = time.perf_counter()
        decisions.append(t.ingest(uri))
        seconds.append(time.perf_counter() - t0)
    print(f"tiny ingest wall seconds (first includes creating the MLflow store): {seconds}")
    yield SimpleNamespace(ws=ws, t=t, first=decisions[0], second=decisions[1], seconds=seconds)
    t.close()


def test_first_dataset_searches_and_founds_a_group(stream):
    d = stream.first
    assert (d.dataset, d.outcome, d.reason, d.group, d.backend) == ("digits", "searched", "empty-cluster", "g1",
                                                                     "hyperband")
    assert d.spec.space == "cnn" and 0.0 <= d.test_accuracy <= 1.0 and d.val_accuracy > 0.1  # 10 classes
    assert d.profile_seconds > 0 and d.search_seconds > 0 and d.train_seconds > 0
    assert d.total_seconds == pytest.approx(d.profile_seconds + d.search_seconds + d.train_seconds)
    assert d.trials >= 2 and d.cached_trials == 0 and d.founded
    assert d.run_id and "founded g1" in d.explanation


def test_a_similar_dataset_reuses_the_group_model(stream):
    d = stream.second
    assert (d.dataset, d.outcome, d.reason, d.group) == ("digits·half", "reused", "test-accepted", "g1")
    assert d.spec == stream.first.spec
    assert d.search_seconds == 0.0 and d.train_seconds > 0 and d.trials == 0
    # one training rule: the reuse trains for the founder's epochs (tiny's 4), though it holds half the images
    assert d.final_epochs == stream.first.final_epochs == 4.0 and d.n_train < 0.6 * stream.first.n_train
    assert d.train_flops < 0.6 * stream.first.train_flops  # so it costs about half the founder's final training
    assert d.F is not None and d.p_value is not None and d.p_value >= 0.005
    # the accuracy guard is on: with one searched dataset it predicts the founder's accuracy moved by size, but it
    # cannot tell its error yet, so it does not judge, and the explanation says so
    check = d.reuse_check
    assert check["waiting"] and not check["escalate"] and check["prediction"]["members"] == 1
    assert "fewer than 4 searched datasets" in d.explanation
    assert client(stream.ws).get_run(d.run_id).data.tags["trautoml.accuracy_guard"] == "waiting"


def test_groups_and_decision_for(stream):
    t = stream.t
    assert t.groups() == [{"id": "g1", "members": ["digits", "digits·half"],
                           "model": stream.first.spec.to_dict()}]
    assert t.decision_for("digits").to_dict() == stream.first.to_dict()
    assert t.decision_for(stream.second.content_hash).dataset == "digits·half"
    # the short name, the URI and the long name the URI derives all name the same dataset
    for name in ("digits·half", SECOND, "digits?subsample=0.5"):
        assert t.decision_for(name).content_hash == stream.second.content_hash
    with pytest.raises(WorkspaceError, match="no dataset"):
        t.decision_for("nope")
    # another instance reads the same durable state
    assert TrAutoML(stream.ws, preset="tiny", quiet=True, seed=SEED).groups() == t.groups()


def test_reingest_returns_the_earlier_decision_without_recomputing(stream, monkeypatch):
    before = (state_counts(stream.ws), mlflow_counts(stream.ws))

    def recomputed(*args, **kwargs):
        raise AssertionError("a re-ingest must not profile, search or train")

    for stage in (ProfileStage, GroupStage, SearchTrainStage):
        monkeypatch.setattr(stage, "__call__", recomputed)
    again = TrAutoML(stream.ws, preset="tiny", executor="serial", quiet=True, seed=SEED).ingest(FIRST)
    assert again.to_dict() == stream.first.to_dict()
    assert (state_counts(stream.ws), mlflow_counts(stream.ws)) == before


def test_mlflow_holds_one_run_per_dataset_with_tags_trials_and_models(stream):
    c = client(stream.ws)
    runs = {r.data.tags["trautoml.dataset"]: r for r in dataset_runs(stream.ws)}
    assert set(runs) == {"digits", "digits·half"}
    assert not [r for r in all_runs(stream.ws) if r.info.status == "RUNNING"]
    for d in (stream.first, stream.second):
        run = runs[d.dataset]
        assert run.info.run_id == d.run_id and run.info.status == "FINISHED"
        tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
        assert tags["trautoml.group"] == "g1" and tags["trautoml.decision"] == d.outcome
        assert tags["trautoml.reason"] == d.reason and tags["trautoml.backend"] == "hyperband"
        assert params["preset"] == "tiny" and params["alpha"] == "0.005" and params["grouper"] == "mh"
        assert metrics["val_accuracy"] == pytest.approx(d.val_accuracy)
        assert metrics["train_seconds"] == pytest.approx(d.train_seconds)
        assert {f"profile.b{i}" for i in range(3)} <= set(metrics)
        artifacts = {a.path for a in c.list_artifacts(d.run_id)}
        assert {"profile.json", "model_spec.json", "decision.json", "groups.png"} <= artifacts
        assert tags["trautoml.model_uri"].startswith("models:/")  # MLflow 3: a logged model of the run
    assert "test.F" in runs["digits·half"].data.metrics
    children = c.search_runs([runs["digits"].info.experiment_id],
                             f"tags.mlflow.parentRunId = '{stream.first.run_id}'")
    assert len(children) == stream.first.trials
    assert all(json.loads(ch.data.params["spec"])["space"] == "cnn" for ch in children)
    versions = c.search_model_versions("name = 'trautoml-group-g1'")
    assert sorted(v.tags["trautoml.dataset"] for v in versions) == ["digits", "digits·half"]


def _weights(ws: Path, run_id: str) -> dict:
    import mlflow

    from mlflow.tracking._tracking_service import utils

    uri = client(ws).get_run(run_id).data.tags["trautoml.model_uri"]
    old = utils._tracking_uri  # the raw value: restoring get_tracking_uri() would set MLFLOW_TRACKING_URI
    mlflow.set_tracking_uri(f"sqlite:///{ws / 'mlflow.db'}")
    try:
        model = mlflow.pytorch.load_model(uri)
    finally:
        mlflow.set_tracking_uri(old)
    module = model.module() if hasattr(model, "module") and callable(model.module) else model
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def test_a_reused_model_fine_tunes_the_founders_weights_and_trains_them(stream):
    """The joining dataset starts from the weights its group's founder kept, and its training moves every layer;
    MLflow says where it started."""
    a, b = _weights(stream.ws, stream.first.run_id), _weights(stream.ws, stream.second.run_id)
    first, second = stream.first, stream.second
    assert first.spec == second.spec and second.outcome == "reused"
    assert second.init_from["dataset"] == first.dataset and second.init_from["weights"] == first.weights
    assert second.init_from["loaded"] == second.init_from["total"]          # same classes and shape: all of it
    assert second.init_from["epochs"] == pytest.approx(first.final_epochs * stream.t.preset.fine_tune_fraction)
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    weights = [k for k in a if k.endswith("weight")]
    assert weights and all(not np.allclose(a[k], b[k]) for k in weights)
    kept = stream.t.workspace.load_weights(first.weights)[0]                 # the founder's, as kept and logged
    assert all(np.allclose(kept[k].numpy(), a[k]) for k in weights)
    tags = client(stream.ws).get_run(second.run_id).data.tags
    assert tags["trautoml.init_from"] == first.dataset
    assert client(stream.ws).get_run(first.run_id).data.tags["trautoml.init_from"] == "scratch"


def test_trials_are_cached_with_their_measured_seconds(stream):
    t = stream.t
    ds = t.load("builtin:digits?subsample=0.5&seed=3")
    runner = t.searcher.runner(ds)
    spec = ModelSpec.from_dict(stream.first.spec.to_dict())
    first = runner([TrialRequest(spec, 0.2, 0)])[0]
    again = runner([TrialRequest(spec, 0.2, 0), TrialRequest(spec, 0.2, 1)])
    assert not first.cached and first.status == "ok"
    assert again[0].cached and again[0].wall_seconds == first.wall_seconds
    assert again[0].val_accuracy == first.val_accuracy
    assert not again[1].cached  # another seed is another trial


def test_summary_counts_the_reuse_and_estimates_its_search_from_its_group(stream):
    s = stream.t.summary()
    assert (s.datasets, s.groups, s.searched, s.reused, s.searches, s.escalations) == (2, 1, 1, 1, 1, 0)
    assert s.search_seconds == pytest.approx(stream.first.search_seconds)
    # the reuse is counted at its group's measured search: searching both would have cost twice the one search
    assert s.estimated_all_search_seconds == pytest.approx(2 * stream.first.search_seconds)
    assert s.saved_search_seconds == pytest.approx(stream.first.search_seconds)
    assert s.reused_test_accuracy == pytest.approx(stream.second.test_accuracy)
    assert s.reused_minus_group_test_accuracy == pytest.approx(stream.second.test_accuracy
                                                               - stream.first.test_accuracy)


def test_bad_names_and_options_are_refused_before_anything_is_written(tmp_path):
    for kwargs, match in (({"backend": "nope"}, "unknown search backend"), ({"grouper": "nope"}, "unknown grouper"),
                          ({"preset": "huge"}, "unknown preset"), ({"executor": "gpu-farm"}, "unknown executor"),
                          ({"n_trials": 2}, "T=2"), ({"bogus": 1}, "unknown setting"), ({"seed": -1}, "seed")):
        with pytest.raises(ValueError, match=match):
            TrAutoML(tmp_path / "ws", **kwargs)
    from trautoml.data import DatasetError

    t = TrAutoML(tmp_path / "ws", preset="tiny", quiet=True)
    for bad in ("builtin:nope", str(tmp_path / "missing.npz"), "stream:demo"):
        with pytest.raises(DatasetError):
            t.ingest(bad)
    assert not (tmp_path / "ws").exists()


# ---------------------------------------------------------------------------------------------- more paths
def test_metafeatures_grouper_and_random_backend_through_ingest_stream(tmp_path, template):
    ws = new_workspace(tmp_path / "ws", template)
    with TrAutoML(ws, backend="random", grouper="metafeatures", preset="tiny", executor="serial", quiet=True) as t:
        ds = t.load("builtin:digits?subsample=0.5")
        decisions = t.ingest_stream(["builtin:digits", ds])
    assert [d.backend for d in decisions] == ["random", "random"]
    assert decisions[0].outcome == "searched" and decisions[0].trials == 2  # search_trials=2
    # statistical meta-features see the size (log n, features per sample): the half is 0.67 > 0.5 away and founds
    assert [g["members"] for g in t.groups()] == [["digits"], ["digits·half"]]
    assert decisions[1].reason == "empty-cluster" and "distance 0.673 > 0.5" in decisions[1].explanation
    assert len(dataset_runs(ws)) == 2
    # ingest_stream ends by recording what grouping saved as the experiment's description
    assert "2 datasets" in client(ws).get_experiment_by_name("trautoml").tags["mlflow.note.content"]


def test_escalation_and_recovery_of_an_unfinished_run(tmp_path, template, monkeypatch):
    ws = new_workspace(tmp_path / "ws", template)
    # 1. The first ingest commits but its process "dies" before finishing the MLflow run and registering the model.
    t1 = TrAutoML(ws, preset="tiny", executor="serial", quiet=True, seed=SEED)
    monkeypatch.setattr(Recovery, "finish", lambda self, run_id, decision: None)
    first = t1.ingest(FIRST)
    monkeypatch.undo()
    c = client(ws)
    assert c.get_run(first.run_id).info.status == "RUNNING"
    assert not c.search_model_versions("name = 'trautoml-group-g1'")
    # 2. The next ingest recovers first; it joins g1, and the accuracy guard predicts it would reach 100% with
    # the group's model: the reused model falls short, so the guard escalates to a search.
    from trautoml import decide

    monkeypatch.setattr(decide, "predict_accuracy", lambda *a: decide.Prediction(1.0, 0.0, 0.0, 1, 4))
    t2 = TrAutoML(ws, preset="tiny", executor="serial", quiet=True, seed=SEED)
    second = t2.ingest(SECOND)
    monkeypatch.undo()
    check = second.reuse_check
    assert check["reused_val"] < check["reference"] == 1.0 and check["escalate"]
    assert "accuracy guard: reused val" in second.explanation and "escalate" in second.explanation
    run = client(ws).get_run(second.run_id).data
    assert run.tags["trautoml.accuracy_guard"] == "escalated" and run.metrics["guard_predicted_val"] == 1.0
    assert c.get_run(first.run_id).info.status == "FINISHED"
    assert len(c.search_model_versions("name = 'trautoml-group-g1'")) == 2
    assert second.group == "g1" and second.reason == "test-accepted" and second.escalated
    assert second.search_seconds > 0 and second.trials >= 2
    # before the search, the reuse fine-tuned from the founder's weights and, still short, trained on to the full
    # training's epochs
    start = second.escalated["reuse"]
    assert start["dataset"] == "digits" and start["weights"] == first.weights and start["loaded"] == start["total"]
    assert start["epochs"] + start["longer"] == pytest.approx(first.final_epochs)
    # the rule: the escalation's model is kept only if it beats the reused one on val (either way the group's
    # model stays the founder's)
    if second.outcome == "searched":
        assert second.spec != first.spec and second.val_accuracy > check["reused_val"]
    else:
        assert second.outcome == "reused" and second.spec == first.spec
        assert second.val_accuracy == check["reused_val"]
    assert t2.groups() == [{"id": "g1", "members": ["digits", "digits·half"], "model": first.spec.to_dict()}]
    assert not [r for r in all_runs(ws) if r.info.status == "RUNNING"]


def test_streams_expand_to_items_loaded_one_at_a_time(tmp_path):
    from trautoml.data import StreamItem

    (tmp_path / "list.txt").write_text("# two datasets\nbuiltin:digits\nbuiltin:digits?subsample=0.5 digits\n")
    items = TrAutoML.expand(f"manifest:{tmp_path / 'list.txt'}")
    assert [i.name for i in items] == ["digits", "digits?subsample=0.5"] and all(isinstance(i, StreamItem)
                                                                                 for i in items)
    mixed = TrAutoML.expand(["stream:demo", "builtin:digits", items[0]])
    assert len(mixed) == 14 and mixed[12] == "builtin:digits" and mixed[13] is items[0]
    assert TrAutoML.expand("builtin:digits") == ["builtin:digits"]


def test_the_grouper_is_kept_between_ingests_only_while_the_workspace_holds_its_state(tmp_path, template,
                                                                                      monkeypatch):
    from trautoml.grouping.markov import MarkovBFGrouper

    ws = new_workspace(tmp_path / "ws", template)
    replayed = []  # datasets replayed by each restore from the stored state
    restore = MarkovBFGrouper.from_dict.__func__
    monkeypatch.setattr(MarkovBFGrouper, "from_dict",
                        classmethod(lambda cls, d: replayed.append(len(d["datasets"])) or restore(cls, d)))
    uris = [f"builtin:digits?subsample={f}" for f in (0.3, 0.35, 0.4, 0.45, 0.5)]
    with TrAutoML(ws, preset="tiny", executor="serial", quiet=True) as t1, \
            TrAutoML(ws, preset="tiny", executor="serial", quiet=True) as t2:
        t1.ingest(uris[0])
        t1.ingest(uris[1])
        assert replayed == []  # t1 goes on with the grouper it committed
        t2.ingest(uris[2])
        assert replayed == [2]  # t2 never saw that state: it restores it
        real_search_and_train = SearchTrainStage.__call__
        monkeypatch.setattr(SearchTrainStage, "__call__", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
        with pytest.raises(RuntimeError):
            t2.ingest(uris[3])  # observed with t2's grouper, then failed: that grouper must not be used again
        monkeypatch.setattr(SearchTrainStage, "__call__", real_search_and_train)
        t2.ingest(uris[3])
        assert replayed == [2, 3]
        t1.ingest(uris[4])  # t1's grouper is two commits behind the workspace
        assert replayed == [2, 3, 4]
        name, state, version = t1.workspace.grouper_state()
    assert version == 5 and len(state["datasets"]) == 5  # each dataset observed once: no grouper was reused twice
    assert MarkovBFGrouper.from_dict(state).to_dict()["labels"] == state["labels"]  # the state replays consistently


def test_a_profile_stops_at_the_first_look_when_the_grouping_is_settled(tmp_path):
    # tiny's B = 3 with T = 10 and a first look at 7; futility 0.1 (a grouper option) and a 90 % subsample let this
    # pair settle (the half does not, nor a first look at 5 of 8 since the draws of the rest of the trials carry
    # the uncertainty of the first look's covariance: the rest could still move it out of the group)
    with TrAutoML(tmp_path / "ws", preset="tiny", n_trials=10, n_trials_first=7, grouper_options={"futility": 0.1},
                  executor="serial", quiet=True, tracking=False) as t:
        first, second = t.ingest(FIRST), t.ingest("builtin:digits?subsample=0.9")
        rows = {name: np.asarray(t.workspace.dataset_row(name)["profile"]["trials"]).shape[0]
                for name in (first.dataset, second.dataset)}
        assert rows == {first.dataset: 10, second.dataset: 7}  # a founder is profiled in full, a settled member stops
        assert (second.outcome, second.reason, second.group) == ("reused", "test-accepted", "g1")
        assert "first look only" in second.explanation and "7 trials" in second.explanation
        # each look's seconds were measured: the founder's are both looks, the member's its first look only
        looks = {name: t.workspace.dataset_row(name)["profile"]["checkpoints"]
                 for name in (first.dataset, second.dataset)}
        assert [k for k, _ in looks[first.dataset]] == [7, 10] and [k for k, _ in looks[second.dataset]] == [7]
        assert first.profile_seconds == looks[first.dataset][-1][1] > looks[first.dataset][0][1] > 0
        assert second.profile_seconds == looks[second.dataset][0][1] > 0


def test_the_profile_stage_takes_what_it_has_and_measures_each_look(tmp_path):
    with TrAutoML(tmp_path / "ws", preset="tiny", n_trials=8, executor="serial", quiet=True, tracking=False) as t:
        ds = t.load(FIRST)
        head = t.profiler(ds, 5, lambda trials: True)
        assert head.trials.shape == (5, 3) and not head.cached
        full = t.profiler(ds, 5, lambda trials: False)         # only trials 6-8 are made
        assert full.trials.shape == (8, 3) and not full.cached
        assert np.array_equal(full.trials[:5], head.trials)
        assert full.profile.checkpoints == [(5, head.total_seconds), (8, full.total_seconds)]
        again = t.profiler(ds, 5, lambda trials: True)          # the cache holds both looks
        assert again.cached and again.total_seconds == head.total_seconds
        assert t.profiler(ds).trials.shape == (8, 3)            # one look: the whole profile
