"""What the MLflow UI shows of trautoml: the experiment's kind, the runs view, dataset lineage, the stream summary
and the group models' alias, read back through MlflowClient."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fakes import tracked_decision
from helpers import new_workspace
from trautoml.data import load_dataset
from trautoml.summary import summarize
from trautoml.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, Tracker, group_model_name


@pytest.fixture
def tracker(tmp_path, template):
    return Tracker.for_workspace(new_workspace(tmp_path, template))


def _tags(tracker) -> dict:
    return tracker.client.get_experiment(tracker.experiment_id).tags


def test_new_and_existing_experiments_are_marked_as_model_development(tmp_path, tracker):
    assert _tags(tracker)[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    # an experiment made before this version (no kind, or another one) is marked when a Tracker opens it
    tracker.client.set_experiment_tag(tracker.experiment_id, EXPERIMENT_KIND_TAG, "genai_development")
    again = Tracker.for_workspace(tmp_path)
    assert again.experiment_id == tracker.experiment_id
    assert _tags(again)[EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_runs_url_opens_a_saved_view_with_trautoml_columns(tracker):
    url = tracker.runs_url("http://127.0.0.1:5123/")
    assert url.startswith(f"http://127.0.0.1:5123/#/experiments/{tracker.experiment_id}/runs?viewStateShareKey=")
    assert url.endswith("&workflowType=machine_learning")  # MLflow 3.1x's GenAI / model-training switch
    key = url.split("viewStateShareKey=")[1].split("&")[0]
    view = json.loads(_tags(tracker)[f"mlflow.sharedViewState.{key}"])
    assert {"tags.`group`", "tags.`decision`", "tags.`reason`", "metrics.`val_accuracy`",
            "metrics.`test_accuracy`", "attributes.`Dataset`"} <= set(view["selectedColumns"])


def test_dataset_input_digest_is_the_content_hash_and_source_the_uri(tracker):
    ds = load_dataset("builtin:digits?subsample=0.5")
    run_id = tracker.start_dataset_run("digits·half", ds.content_hash(), {})
    tracker.log_dataset_input(run_id, name="digits·half", content_hash=ds.content_hash(), uri=ds.uri,
                              input_shape=ds.input_shape, num_classes=ds.num_classes,
                              sizes={"train": len(ds.y_train), "val": len(ds.y_val), "test": len(ds.y_test)})
    run = tracker.client.get_run(run_id)
    (inp,) = run.inputs.dataset_inputs
    entity = inp.dataset
    # MLflow caps a digest at 36 characters: the digest is the content hash's prefix, the profile holds it whole
    assert ds.content_hash().startswith(entity.digest) and len(entity.digest) == 36
    profile = json.loads(entity.profile)
    assert profile["content_hash"] == ds.content_hash()
    assert profile["input_shape"] == [1, 8, 8] and profile["num_classes"] == 10
    assert profile["train_size"] == len(ds.y_train)
    assert entity.name == "digits·half" and json.loads(entity.source) == {"uri": "builtin:digits?subsample=0.5"}
    assert run.data.tags["trautoml.uri"] == ds.uri and run.data.params["uri"] == ds.uri
    assert {t.key: t.value for t in inp.tags}["mlflow.data.context"] == "train"


def test_stream_summary_is_the_experiments_description(tracker):
    s = summarize([tracked_decision("a", "g1"), tracked_decision("b", "g1", "reused", "test-accepted")])
    tracker.log_stream_summary(s)
    tags = _tags(tracker)
    assert "searching all 2 would have cost" in tags["mlflow.note.content"]
    numbers = json.loads(tags["trautoml.summary"])
    assert numbers["datasets"] == 2 and numbers["reused"] == 1 and numbers["estimated_all_search_seconds"] == 4.0


def test_group_alias_champion_loads_the_groups_latest_model(tracker, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    example = np.zeros((2, 1, 2, 2), np.float32)  # a batch of 2: torch.export keeps the batch size free
    modules = {}
    for i, name in enumerate(("a", "b")):
        torch.manual_seed(i)
        modules[name] = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        run_id = tracker.start_dataset_run(name, "h-" + name, {})
        tracker.log_decision(run_id, tracked_decision(name, "g3"), module=modules[name], input_example=example)
        tracker.register_group_model("g3", run_id)
        tracker.end_run(run_id)
    mv = tracker.client.get_model_version_by_alias(group_model_name("g3"), "champion")
    assert int(mv.version) == 2 and mv.tags["trautoml.dataset"] == "b"
    x = torch.arange(12, dtype=torch.float32).reshape(3, 1, 2, 2)
    mlflow.set_tracking_uri(tracker.tracking_uri)
    mlflow.set_registry_uri(tracker.tracking_uri)
    try:
        loaded = mlflow.pytorch.load_model(f"models:/{group_model_name('g3')}@champion")
        pyfunc = mlflow.pyfunc.load_model(f"models:/{group_model_name('g3')}@champion")
        predicted = pyfunc.predict(x.numpy())
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    expected = modules["b"](x).detach()
    assert torch.allclose(loaded(x), expected, atol=1e-6)
    assert np.allclose(np.asarray(predicted), expected.numpy(), atol=1e-6)
