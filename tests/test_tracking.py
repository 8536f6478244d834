"""MLflow tracking: what a user finds in the store after an ingest, read back through MlflowClient."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import SPEC, tracked_decision
from search_backends.base import Trial
from trautoml.models.spec import ModelSpec
from trautoml.tracking import Tracker, group_model_name


@dataclass
class FakeProfile:
    trials: np.ndarray
    total_seconds: float = 1.5

    @property
    def mean(self):
        return self.trials.mean(axis=0)

    def to_dict(self):
        return {"trials": self.trials.tolist()}


@dataclass
class FakeTest:
    F: float
    p_value: float


@dataclass
class FakeAssignment:
    group: str
    reason: str
    log_posterior: float
    runner_up_log_posterior: float
    test: FakeTest | None

    def explain(self):
        return f"joined {self.group}"


@pytest.fixture
def tracker(tmp_path):
    return Tracker.for_workspace(tmp_path)


def test_workspace_store_is_sqlite_with_artifacts_under_mlruns(tmp_path, tracker):
    assert tracker.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert (tmp_path / "mlflow.db").exists()
    exp = tracker.client.get_experiment(tracker.experiment_id)
    assert exp.artifact_location.startswith((tmp_path / "mlruns").as_uri())


def test_dataset_run_contents(tmp_path, tracker):
    run_id = tracker.start_dataset_run("digits", "h-digits", {"alpha": 0.005, "gamma": 0.2, "backend": "random"})
    rng = np.random.default_rng(0)
    tracker.log_profile(run_id, FakeProfile(rng.uniform(0.3, 0.9, size=(5, 3))))
    tracker.log_assignment(run_id, FakeAssignment("g1", "test-accepted", -3.0, -7.5, FakeTest(1.2, 0.4)))
    trials = [Trial(SPEC, 1.0, 0, 0.5 + i / 10, 0.5, 0.1 * i) for i in range(3)]
    trials.append(Trial(SPEC, 1.0, 1, float("nan"), float("nan"), 0.0, status="failed", error="boom"))
    tracker.log_trials(run_id, trials)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    tracker.log_decision(run_id, tracked_decision("digits", "g1", "reused", "test-accepted"), module=module,
                         input_example=np.zeros((1, 1, 8, 8), np.float32))
    tracker.log_groups_figure(run_id, ["a", "digits"], np.array([[0.1, 0.2, 0.3], [0.2, 0.2, 0.1]]),
                              ["g1", "g1"], highlight="digits")
    tracker.end_run(run_id)

    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert tags["trautoml.dataset"] == "digits"
    assert tags["trautoml.group"] == "g1"
    assert tags["trautoml.decision"] == "reused"
    assert tags["trautoml.reason"] == "test-accepted"
    assert tags["trautoml.backend"] == "random"
    assert params["alpha"] == "0.005"
    assert metrics["test.F"] == pytest.approx(1.2) and metrics["test.p_value"] == pytest.approx(0.4)
    assert metrics["grouping.posterior_margin"] == pytest.approx(4.5)
    assert {f"profile.b{i}" for i in range(3)} <= set(metrics)
    history = tracker.client.get_metric_history(run_id, "profile.trial.b0")
    assert sorted(m.step for m in history) == [0, 1, 2, 3, 4]
    assert metrics["val_accuracy"] == pytest.approx(0.8)
    artifacts = {a.path for a in tracker.client.list_artifacts(run_id)}
    assert {"profile.json", "model_spec.json", "decision.json", "groups.png"} <= artifacts
    spec = json.loads(Path(tracker.client.download_artifacts(run_id, "model_spec.json", str(tmp_path))).read_text())
    assert ModelSpec.from_dict(spec) == SPEC

    children = tracker.client.search_runs([tracker.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert len(children) == 4
    statuses = sorted(c.info.status for c in children)
    assert statuses == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    assert all(json.loads(c.data.params["spec"]) == SPEC.to_dict() for c in children)


def test_group_registry_has_a_version_per_member(tracker, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    registry_before = mlflow.get_registry_uri()
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    example = np.zeros((1, 1, 2, 2), np.float32)
    versions = []
    for name in ("a", "b"):
        run_id = tracker.start_dataset_run(name, "h-" + name, {})
        tracker.log_decision(run_id, tracked_decision(name, "g7"), module=module, input_example=example)
        versions.append(tracker.register_group_model("g7", run_id))
        tracker.end_run(run_id)
    assert versions == [1, 2]
    mv = tracker.client.search_model_versions(f"name = '{group_model_name('g7')}'")
    assert sorted(v.tags["trautoml.dataset"] for v in mv) == ["a", "b"]
    # the registry is reached through MLflow's global URIs for a moment; they, and the environment, are restored
    assert mlflow.get_registry_uri() == registry_before and "MLFLOW_REGISTRY_URI" not in os.environ


def test_stale_run_of_a_dead_process_is_closed_and_replaced(tmp_path, tracker):
    # A child process opens a run and dies without closing it (as under SIGKILL).
    code = ("from trautoml.tracking import Tracker; import sys; "
            f"t = Tracker.for_workspace({str(tmp_path)!r}); print(t.start_dataset_run('d', 'h-d', {{}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dead_run = out.stdout.strip().splitlines()[-1]
    assert tracker.client.get_run(dead_run).info.status == "RUNNING"
    live = tracker.start_dataset_run("other", "h-other", {})  # our own, alive: must not be touched
    assert tracker.close_stale_runs() == [dead_run]
    assert tracker.client.get_run(dead_run).info.status == "KILLED"
    assert tracker.client.get_run(live).info.status == "RUNNING"
    # Re-ingesting the same content replaces the killed run: one visible run per dataset.
    new = tracker.start_dataset_run("d", "h-d", {})
    visible = tracker.client.search_runs([tracker.experiment_id], "tags.`trautoml.content_hash` = 'h-d'")
    assert [r.info.run_id for r in visible] == [new]
    assert tracker.finished_run_for("h-d") is None
    tracker.end_run(new)
    assert tracker.finished_run_for("h-d") == new


def test_env_tracking_uri_wins_over_workspace(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    t = Tracker.for_workspace(tmp_path / "ws")
    assert t.tracking_uri == f"sqlite:///{other}"
    assert other.exists() and not (tmp_path / "ws" / "mlflow.db").exists()


def _small_module():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 10))


def test_models_are_exported_outside_the_driver_and_load_back(tmp_path):
    """torch.export (MLflow's pt2 format) leaves symbolic-shape state behind in the process that runs it; the
    driver logs its models through the model-logging process, so none of it accumulates in the driver."""
    import gc

    def shape_envs() -> int:
        gc.collect()
        return sum(type(o).__name__ == "ShapeEnv" for o in gc.get_objects())

    tracker = Tracker.for_workspace(tmp_path / "ws")
    before = shape_envs()  # other tests may have exported or loaded pt2 models in this process
    runs = []
    for _ in range(3):
        run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
        runs.append((run_id, tracker.log_model(run_id, _small_module(), np.zeros((2, 1, 8, 8), np.float32))))
    assert shape_envs() == before
    for run_id, uri in runs:
        run = tracker.client.get_run(run_id)
        assert run.info.status == "RUNNING" and run.data.tags["trautoml.model_uri"] == uri
    import mlflow

    mlflow.set_tracking_uri(tracker.tracking_uri)
    try:
        out = mlflow.pytorch.load_model(runs[-1][1])(torch.zeros(5, 1, 8, 8))
    finally:
        mlflow.set_tracking_uri(None)
    assert tuple(out.shape) == (5, 10)


def test_a_killed_model_logging_process_is_replaced(tmp_path):
    import os
    import signal

    from trautoml import tracking

    tracker = Tracker.for_workspace(tmp_path / "ws")
    first = tracker.client.create_run(tracker.experiment_id).info.run_id
    tracker.log_model(first, _small_module(), np.zeros((2, 1, 8, 8), np.float32))
    for pid in list(tracking._model_logger()._processes):
        os.kill(pid, signal.SIGKILL)
    second = tracker.client.create_run(tracker.experiment_id).info.run_id
    uri = tracker.log_model(second, _small_module(), np.zeros((2, 1, 8, 8), np.float32))
    assert tracker.client.get_run(second).data.tags["trautoml.model_uri"] == uri
