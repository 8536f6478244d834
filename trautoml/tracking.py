"""MLflow, the user's window: one parent run per ingested dataset, a child run per search trial, a registered
model per group with a version per member.

Store: MLflow 3.x refuses the ``./mlruns`` file store, so a workspace keeps tracking and registry in SQLite
(``<workspace>/mlflow.db``) and artifacts under ``<workspace>/mlruns/``, unless a tracking URI (argument or
``MLFLOW_TRACKING_URI``) points elsewhere, e.g. a remote ``mlflow server``.

Names users see in the UI (MLflow conventions: dotted tag namespaces, metrics as numbers, files as artifacts):
tags ``trautoml.dataset``, ``trautoml.content_hash``, ``trautoml.group``, ``trautoml.decision``,
``trautoml.reason``, ``trautoml.backend``, ``trautoml.init_from`` (the member whose weights a reuse fine-tuned, or
``scratch``), ``trautoml.accuracy_guard`` on a reuse (`ReuseCheck.verdict`, with the metric
``guard_predicted_val``); registered models ``trautoml-group-<id>``.

What the UI shows (see "what the UI shows" below): the experiment tagged as model development, short tags
``group``, ``decision``, ``reason`` for the runs table's columns, a saved runs view that `runs_url` opens, each
run's dataset as an MLflow dataset input, the stream summary as the experiment's description, and the alias
``champion`` on every group model's latest version.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import tempfile
from pathlib import Path
from typing import Any
from collections.abc import Iterator, Sequence

import numpy as np

from trautoml.workers import pid_alive
from trautoml.workspace_store import ensure_store

EXPERIMENT = "trautoml"
TAG = "trautoml."
_MAX_PARAM = 6000

#: MLflow 3's UI reads this experiment tag to choose the experiment's landing tab; model development lands on runs.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
DESCRIPTION_TAG = "mlflow.note.content"  # an experiment's description in the UI
MAX_EXPERIMENT_TAG = 20_000  # MLflow's limit on an experiment tag's value
#: The runs table trautoml opens on (an MLflow "shared view": experiment tag SHARED_VIEW_PREFIX + key, loaded by
#: ``#/experiments/<id>/runs?viewStateShareKey=<key>``): the short tags and metrics users ask for, arrival order.
SHARED_VIEW_PREFIX, RUNS_VIEW_KEY = "mlflow.sharedViewState.", "trautoml-runs"
RUNS_VIEW = {"selectedColumns": ["attributes.`Dataset`", "tags.`group`", "tags.`decision`", "tags.`reason`",
                                 "metrics.`val_accuracy`", "metrics.`test_accuracy`"],
             "columnOrder": ["tags.`group`", "tags.`decision`", "tags.`reason`", "metrics.`val_accuracy`",
                             "metrics.`test_accuracy`", "attributes.`Dataset`"],
             "orderByKey": "attributes.start_time", "orderByAsc": True}
GROUP_ALIAS = "champion"  # every group's registered model points this alias at its latest version
DATASET_SOURCE_TYPE = "trautoml"


def workspace_tracking_uri(workspace: Path) -> str:
    """The MLflow tracking URI of the workspace at ``workspace``: its ``mlflow.db``."""
    return f"sqlite:///{Path(workspace).resolve() / 'mlflow.db'}"


def group_model_name(group_id: str) -> str:
    """The registered model name of group ``group_id`` (``trautoml-group-g1``, …)."""
    return f"trautoml-group-{group_id}"


def dataset_digest(content_hash: str) -> str:
    """The MLflow dataset digest of a dataset: its content hash, cut to MLflow's 36-character limit."""
    return content_hash[:36]


def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(float(x))


#: Models one logging process exports before a fresh one replaces it: torch.export's leftovers are freed with the
#: process, so its memory stays bounded, and the ~3 s start of a process with torch and MLflow is paid rarely.
MODELS_PER_LOGGING_PROCESS = 25
_logger_pool = None
_logger_uses = 0


def _model_logger():
    """The process, shared by every Tracker of this one, that exports and logs models (started on first use, and
    replaced after ``MODELS_PER_LOGGING_PROCESS`` models)."""
    global _logger_pool, _logger_uses
    if _logger_pool is not None and _logger_uses >= MODELS_PER_LOGGING_PROCESS:
        shutdown_model_logger()
    if _logger_pool is None:
        from trautoml.workers import WorkerPool

        _logger_pool = WorkerPool(1, one_thread=False)
        _logger_uses = 0
    _logger_uses += 1
    return _logger_pool


def _model_logger_death() -> str:
    """Why the model-logging process died (see `WorkerPool.death_report`); it is replaced on next use."""
    why = _logger_pool.death_report() if _logger_pool is not None else "unknown"
    shutdown_model_logger()
    return why


def shutdown_model_logger() -> None:
    """End the model-logging process (the next model logged starts a new one)."""
    global _logger_pool
    if _logger_pool is not None:
        _logger_pool.close()
    _logger_pool = None


_trackers: dict[tuple[str, str], Tracker] = {}


def _log_model_in_this_process(tracking_uri: str, experiment: str, run_id: str, module, input_example) -> str:
    """Runs in the model-logging process: Tracker.log_model's export and upload."""
    key = (tracking_uri, experiment)
    if key not in _trackers:
        _trackers[key] = Tracker(tracking_uri, experiment=experiment)
    return _trackers[key]._log_model_here(run_id, module, input_example)



@contextlib.contextmanager
def mlflow_store(uri: str | None) -> Iterator[None]:
    """Point MLflow's process-global tracking/registry URIs at ``uri`` for a moment (the fluent API, and the
    registry resolving a ``runs:/`` or ``models:/m-...`` URI, read only those), then restore them exactly: the raw
    module values, not ``get_tracking_uri()``'s default, since ``set_tracking_uri`` and ``set_registry_uri`` also
    write ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` into the environment, where the next
    ``Tracker.for_workspace``, a client without a registry URI, or a child process would read them. ``uri=None``:
    MLflow's current store, nothing changed."""
    if uri is None:
        yield
        return
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    old_uri, old_reg = tracking_utils._tracking_uri, registry_utils._registry_uri
    old_reg_env = os.environ.get("MLFLOW_REGISTRY_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_uri)  # type: ignore[arg-type]  # None (MLflow handles it) unsets the variable
        registry_utils._registry_uri = old_reg
        if old_reg_env is None:
            os.environ.pop("MLFLOW_REGISTRY_URI", None)
        else:
            os.environ["MLFLOW_REGISTRY_URI"] = old_reg_env

class Tracker:
    """Writes what trautoml does into MLflow; every method takes the parent run id it writes to."""

    def __init__(self, tracking_uri: str, artifact_location: str | None = None, experiment: str = EXPERIMENT):
        # MLflow prints "View run … at: URL" on stdout for every run finished on a tracking server; trautoml's
        # stdout is its tables and JSON, and its own output says where the runs are.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        import mlflow  # deferred: importing mlflow costs about a second
        from mlflow import MlflowClient

        self._mlflow = mlflow
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_location)
        else:
            self.experiment_id = exp.experiment_id
        self.experiment = experiment
        self.mark_experiment_kind(exp)

    @classmethod
    def for_workspace(cls, workspace: Path, tracking_uri: str | None = None) -> Tracker:
        """The workspace's own SQLite store, unless ``tracking_uri`` or ``MLFLOW_TRACKING_URI`` names another."""
        workspace = Path(workspace).resolve()
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            return cls(uri)
        workspace.mkdir(parents=True, exist_ok=True)
        artifacts = (workspace / "mlruns").as_uri()
        ensure_store(workspace, artifacts, EXPERIMENT)  # StoreError for a broken store that holds runs
        return cls(workspace_tracking_uri(workspace), artifact_location=artifacts)

    # ---------------------------------------------------------------- runs
    def _runs(self, filter_string: str, deleted: bool = False) -> list:
        from mlflow.entities import ViewType

        return self.client.search_runs([self.experiment_id], filter_string=filter_string,
                                       run_view_type=ViewType.ALL if deleted else ViewType.ACTIVE_ONLY,
                                       max_results=10_000)

    def start_dataset_run(self, dataset_name: str, content_hash: str, settings: dict) -> str:
        """Open the parent run of one ingest. Runs of the same content left unfinished by a killed process are
        deleted first, so the UI shows one run per dataset."""
        for run in self._runs(f"tags.`{TAG}content_hash` = '{content_hash}' and attributes.status != 'FINISHED'"):
            if run.info.status != "RUNNING" or not self._owner_alive(run):
                self._delete_with_children(run.info.run_id)
        run = self.client.create_run(
            self.experiment_id, run_name=dataset_name,
            tags={f"{TAG}dataset": dataset_name, f"{TAG}content_hash": content_hash,
                  f"{TAG}host": socket.gethostname(), f"{TAG}pid": str(os.getpid())})
        run_id = run.info.run_id
        self._log_params(run_id, settings)
        return run_id

    def _delete_with_children(self, run_id: str) -> None:
        for child in self._runs(f"tags.mlflow.parentRunId = '{run_id}'"):
            self.client.delete_run(child.info.run_id)
        self.client.delete_run(run_id)

    def _owner_alive(self, run) -> bool:
        tags = run.data.tags
        if tags.get(f"{TAG}host") != socket.gethostname():
            return True  # another machine's process: we cannot tell, so leave it alone
        try:
            return pid_alive(int(tags.get(f"{TAG}pid", "-1")))
        except ValueError:
            return False

    def close_stale_runs(self) -> list[str]:
        """Mark RUNNING runs whose process on this host is gone as KILLED (after a crash). Returns their ids."""
        closed = []
        for run in self._runs("attributes.status = 'RUNNING'"):
            if not self._owner_alive(run):
                self.client.set_terminated(run.info.run_id, status="KILLED")
                closed.append(run.info.run_id)
        return closed

    def finished_run_for(self, content_hash: str) -> str | None:
        """The id of the latest finished run of the dataset with ``content_hash``, or None."""
        runs = self._runs(f"tags.`{TAG}content_hash` = '{content_hash}' and attributes.status = 'FINISHED'")
        return runs[0].info.run_id if runs else None

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Terminate run ``run_id`` with ``status`` (FINISHED, FAILED or KILLED)."""
        self.client.set_terminated(run_id, status=status)

    # ---------------------------------------------------------------- logging
    def _log_params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param

        flat = {k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, tuple)) else str(v))
                for k, v in params.items()}
        self.client.log_batch(run_id, params=[Param(k, v[:_MAX_PARAM]) for k, v in sorted(flat.items())])

    def _log_metrics(self, run_id: str, metrics: dict, step: int = 0) -> None:
        from mlflow.entities import Metric

        import time

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if _finite(v)]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def _log_tags(self, run_id: str, tags: dict) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items() if v is not None])

    def _log_json(self, run_id: str, name: str, obj: Any) -> None:
        self.client.log_text(run_id, json.dumps(obj, indent=2, sort_keys=True, default=_json_default), name)

    def log_profile(self, run_id: str, profile) -> None:
        """Profile = landmarker validation accuracies: metrics ``profile.b<i>`` (the mean vector), ``profile.trials``
        (T, fewer when the profile stopped at its first look), per-trial values as steps of ``profile.trial.b<i>``,
        and ``profile.json``."""
        self._log_metrics(run_id, {f"profile.b{i}": v for i, v in enumerate(profile.mean)} |
                          {"profile.seconds": profile.total_seconds, "profile.trials": len(profile.trials)})
        for t, row in enumerate(np.asarray(profile.trials)):
            self._log_metrics(run_id, {f"profile.trial.b{i}": v for i, v in enumerate(row)}, step=t)
        self._log_json(run_id, "profile.json", profile.to_dict())

    def log_assignment(self, run_id: str, assignment) -> None:
        """The grouping step: posterior of the chosen cluster vs the runner-up and the Behrens–Fisher test."""
        test = assignment.test
        self._log_metrics(run_id, {
            "grouping.log_posterior": assignment.log_posterior,
            "grouping.runner_up_log_posterior": assignment.runner_up_log_posterior,
            "grouping.posterior_margin": (assignment.log_posterior - assignment.runner_up_log_posterior
                                          if _finite(assignment.log_posterior)
                                          and _finite(assignment.runner_up_log_posterior) else None),
            "test.F": getattr(test, "F", None), "test.p_value": getattr(test, "p_value", None),
        })
        self._log_tags(run_id, {f"{TAG}group": assignment.group, f"{TAG}reason": assignment.reason,
                                "mlflow.note.content": assignment.explain()})

    def log_trials(self, run_id: str, trials: Sequence, first_index: int = 0) -> None:
        """One child run per search trial (nested under the dataset's run in the UI)."""
        for i, trial in enumerate(trials, start=first_index):
            child = self.client.create_run(
                self.experiment_id, run_name=f"trial-{i:03d}",
                tags={"mlflow.parentRunId": run_id, f"{TAG}trial": str(i), f"{TAG}status": trial.status,
                      f"{TAG}space": trial.spec.space, f"{TAG}cached": str(trial.cached).lower()})
            cid = child.info.run_id
            self._log_params(cid, {"spec": trial.spec.to_json(), "spec_key": trial.spec.key(),
                                   "resource": trial.resource, "seed": trial.seed})
            self._log_metrics(cid, {"val_accuracy": trial.val_accuracy, "test_accuracy": trial.test_accuracy,
                                    "wall_seconds": trial.wall_seconds, "resource": trial.resource,
                                    "flops": trial.flops})
            if trial.error:
                self._log_tags(cid, {f"{TAG}error": trial.error[:5000]})
            self.client.set_terminated(cid, status="FINISHED" if trial.status == "ok" else "FAILED")

    def log_decision(self, run_id: str, decision, module=None, input_example: np.ndarray | None = None) -> None:
        """Tags, metrics and artifacts of the decision; the trained model through mlflow.pytorch."""
        self._log_tags(run_id, {f"{TAG}group": decision.group, f"{TAG}decision": decision.outcome,
                                f"{TAG}reason": decision.reason, f"{TAG}backend": decision.backend,
                                f"{TAG}spec_key": decision.spec.key(),
                                f"{TAG}init_from": (decision.init_from or {}).get("dataset", "scratch")})
        self._log_metrics(run_id, {
            "val_accuracy": decision.val_accuracy, "test_accuracy": decision.test_accuracy,
            "profile_seconds": decision.profile_seconds, "search_seconds": decision.search_seconds,
            "train_seconds": decision.train_seconds, "total_seconds": decision.total_seconds,
            "profile_flops": decision.profile_flops, "search_flops": decision.search_flops,
            "train_flops": decision.train_flops, "total_flops": decision.total_flops})
        check = decision.reuse_check
        if check is not None:   # a reuse: what the accuracy guard said, and what it predicted
            from trautoml.decide import ReuseCheck

            self._log_tags(run_id, {f"{TAG}accuracy_guard": ReuseCheck.from_dict(check).verdict})
            if check.get("reference") is not None:
                self._log_metrics(run_id, {"guard_predicted_val": check["reference"]})
        self._log_json(run_id, "model_spec.json", decision.spec.to_dict())
        self._log_json(run_id, "decision.json", decision.to_dict())
        if module is not None:
            self.log_model(run_id, module, input_example)

    def log_model(self, run_id: str, module, input_example: np.ndarray | None) -> str:
        """Log a torch module in MLflow's safe ``pt2`` format (it needs an input example) with fixed pip
        requirements (inferring them costs seconds per call). Returns the model URI.

        The export runs in the model-logging process (see ``_model_logger``), not here: ``pt2`` goes through
        torch.export, whose symbolic-shape state (ShapeEnv, fake tensors) stays reachable from process-global
        caches after every export, about 0.5 MiB per model, so a watcher that logged in process grew without end
        (bench/bench_soak.py measured it)."""
        from concurrent.futures.process import BrokenProcessPool

        module = module.cpu().eval()
        for attempt in range(2):
            try:
                uri = _model_logger().submit(_log_model_in_this_process, self.tracking_uri, self.experiment,
                                             run_id, module, input_example).result()
                break
            except BrokenProcessPool:  # the logging process died (killed, out of memory): a new one, once
                why = _model_logger_death()
                if attempt:
                    raise RuntimeError(f"the model-logging process died twice while logging the model of run "
                                       f"{run_id} ({why}); the run keeps everything else") from None
        self.client.set_tag(run_id, f"{TAG}model_uri", uri)
        return uri

    def _log_model_here(self, run_id: str, module, input_example: np.ndarray | None) -> str:
        import torch

        reqs = [f"torch=={torch.__version__.split('+')[0]}"]
        with self._active(run_id):
            info = self._mlflow.pytorch.log_model(module, name="model", input_example=input_example,
                                                  pip_requirements=reqs)
        return info.model_uri

    def _global_store(self):
        """MLflow's process-global URIs on this tracker's store for a moment (`mlflow_store`)."""
        return mlflow_store(self.tracking_uri)

    @contextlib.contextmanager
    def _active(self, run_id: str) -> Iterator[None]:
        """The fluent API (needed by log_model) on this tracker's store, without leaking global state."""
        mlflow = self._mlflow
        with self._global_store():
            try:
                with mlflow.start_run(run_id=run_id, experiment_id=self.experiment_id):
                    yield
            finally:
                # start_run's exit marks the run FINISHED; the orchestrator decides when it really ends.
                self.client.update_run(run_id, status="RUNNING")

    def register_group_model(self, group_id: str, run_id: str) -> int | None:
        """A registered model per group, a version per member (the member's own trained weights)."""
        run = self.client.get_run(run_id)
        model_uri = run.data.tags.get(f"{TAG}model_uri")
        if not model_uri:
            return None
        name = group_model_name(group_id)
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(
                name, tags={f"{TAG}group": group_id},
                description=f"Model shared by trautoml group {group_id}: same architecture and "
                            "hyper-parameters, weights trained per member dataset.")
        except MlflowException as err:
            if "already exists" not in str(err).lower() and "RESOURCE_ALREADY_EXISTS" not in str(err):
                raise
        dataset = run.data.tags.get(f"{TAG}dataset", "")
        # A ``models:/m-…`` source names a logged model: a tracking server accepts it only with that model's id,
        # and a SQLite registry looks the logged model up in the process-global store.
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        with self._global_store():
            version = self.client.create_model_version(name, model_uri, run_id=run_id, model_id=model_id,
                                                       tags={f"{TAG}dataset": dataset},
                                                       description=f"weights trained on {dataset}")
        self.set_group_alias(name, int(version.version))
        return int(version.version)

    def log_groups_figure(self, run_id: str, names: Sequence[str], means: np.ndarray,
                          groups: Sequence[str], highlight: str | None = None) -> None:
        """Profiles projected to 2-D (PCA), coloured by group, the new dataset marked: ``groups.png``."""
        from trautoml.plots import groups_figure

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "groups.png"
            groups_figure(names, np.asarray(means, dtype=float), groups, highlight, path)
            self.client.log_artifact(run_id, str(path))

    def log_artifacts_dir(self, run_id: str, folder: Path, artifact_path: str) -> None:
        """Log the files under ``folder`` as artifacts of ``run_id`` under ``artifact_path``; nothing when the folder is
        missing or empty."""
        if Path(folder).is_dir() and any(Path(folder).iterdir()):
            self.client.log_artifacts(run_id, str(folder), artifact_path)

    # ---------------------------------------------------------------- what the UI shows (issue 17)
    def mark_experiment_kind(self, experiment=None) -> None:
        """Tag the experiment as model development (``mlflow.experimentKind``), so MLflow 3's UI opens it on its
        runs rather than on the GenAI overview (traces, tokens); a no-op when the tag is already there."""
        exp = experiment if experiment is not None else self.client.get_experiment(self.experiment_id)
        if exp is None or (exp.tags or {}).get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)

    def save_runs_view(self) -> str:
        """Store the runs table's view (columns group, decision, reason, dataset, accuracies; arrival order) as an
        MLflow shared view on the experiment; returns its key for ``?viewStateShareKey=``."""
        state = json.dumps(RUNS_VIEW, sort_keys=True)
        tags = self.client.get_experiment(self.experiment_id).tags or {}
        if tags.get(SHARED_VIEW_PREFIX + RUNS_VIEW_KEY) != state:
            self.client.set_experiment_tag(self.experiment_id, SHARED_VIEW_PREFIX + RUNS_VIEW_KEY, state)
        return RUNS_VIEW_KEY

    def runs_url(self, base_url: str) -> str:
        """The direct URL of the experiment's runs table, with trautoml's columns, on a UI served at base_url."""
        key = self.save_runs_view()
        # workflowType: MLflow 3.1x's UI takes the experiment's kind from a GenAI / model-training switch (default
        # GenAI) rather than from the tag; the URL sets the switch
        return (f"{base_url.rstrip('/')}/#/experiments/{self.experiment_id}/runs?viewStateShareKey={key}"
                "&workflowType=machine_learning")

    def log_dataset_input(self, run_id: str, *, name: str, content_hash: str, uri: str | None,
                          input_shape: Sequence[int], num_classes: int, sizes: dict) -> None:
        """Dataset lineage: the run's input is an MLflow dataset named ``name`` whose digest is the content hash
        (its first 36 hex digits: MLflow caps digests at 36 characters; the profile holds the whole hash), source
        the URI, with its image shape, class count and split sizes. Fills the runs table's Dataset column and
        the dataset's "runs that used it". The URI is also the tag ``trautoml.uri`` and the parameter ``uri``."""
        from mlflow.data.schema import TensorDatasetSchema
        from mlflow.entities import Dataset as MlflowDataset
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.types.schema import Schema, TensorSpec

        schema = TensorDatasetSchema(
            features=Schema([TensorSpec(np.dtype("float32"), (-1, *map(int, input_shape)), name="images")]),
            targets=Schema([TensorSpec(np.dtype("int64"), (-1,), name="labels")]))
        profile = {"content_hash": content_hash, "input_shape": [int(s) for s in input_shape],
                   "num_classes": int(num_classes), **{f"{k}_size": int(v) for k, v in sizes.items()}}
        entity = MlflowDataset(name=name, digest=dataset_digest(content_hash), source_type=DATASET_SOURCE_TYPE,
                               source=json.dumps({"uri": uri or ""}), schema=json.dumps(schema.to_dict()),
                               profile=json.dumps(profile))
        self.client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context",
                                                                                     "train")])])
        if uri:
            self._log_tags(run_id, {f"{TAG}uri": uri})
            self._log_params(run_id, {"uri": uri})

    def log_display_tags(self, run_id: str, decision) -> None:
        """Short tags the runs table shows as columns (``group``, ``decision``, ``reason``), beside the
        ``trautoml.*`` ones scripts read."""
        self._log_tags(run_id, {"group": decision.group, "decision": decision.outcome, "reason": decision.reason})

    def log_stream_summary(self, summary) -> None:
        """The stream-level record the UI shows: the experiment's description (``mlflow.note.content``, Markdown)
        holds `trautoml.summary.StreamSummary.markdown`, and the tag ``trautoml.summary`` its numbers as JSON."""
        numbers = {k: v for k, v in summary.to_dict().items() if k not in ("per_group", "estimate_method")}
        for key, value in ((DESCRIPTION_TAG, summary.markdown()),
                           (f"{TAG}summary", json.dumps(numbers, sort_keys=True, default=_json_default))):
            self.client.set_experiment_tag(self.experiment_id, key, value[:MAX_EXPERIMENT_TAG])

    def set_group_alias(self, model_name: str, version: int) -> None:
        """Point the group's alias (``champion``) at ``version``: ``models:/trautoml-group-<id>@champion`` loads the
        group's latest model."""
        self.client.set_registered_model_alias(model_name, GROUP_ALIAS, str(version))


def runs_url_for_store(tracking_uri: str, base_url: str, experiment: str = EXPERIMENT) -> str | None:
    """The direct URL of trautoml's runs table on the UI at ``base_url`` over the store ``tracking_uri`` (the
    experiment marked as model development and its runs view saved on the way), or None before any ingest."""
    from mlflow import MlflowClient

    if MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(experiment) is None:
        return None
    return Tracker(tracking_uri, experiment=experiment).runs_url(base_url)


def _json_default(o: Any):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
