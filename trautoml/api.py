"""``trautoml.TrAutoML``: the pipeline a user drives (paper 002, Algorithm 1, over a durable workspace).

One ingest is one call per arrow, each a stage object (`trautoml.stages`)::

    load → profile → group → decide → search/train → track
    load()  profiler   grouping  decider  searcher      observer (at every boundary)

* load: ``trautoml.data`` (a URI, a StreamItem or a Dataset); any input it refuses raises ``DatasetError`` before
  anything is written;
* profile: the landmarkers' T×B accuracy matrix, or the statistical meta-features, cached in the workspace;
* group: the workspace's grouper (restored from its JSON state) observes the profile;
* decide: Algorithm 1 (``trautoml.decide``), plus warm-start models for a search;
* search/train: the search backend through the trial runner (every trial cached in the workspace by content hash,
  spec, resource, seed and image caps; the budget enforced by the task), then the chosen model trained afresh;
* track: an observer records each boundary in MLflow; the workspace commits grouper state + dataset + group in
  one transaction, and then the run is finished.

Durability (``trautoml.workspace``, ``trautoml.stages.recovery``): ingests hold the workspace lock; a dataset whose
content is already in the workspace returns its earlier Decision at once. After a crash, the next ingest first
recovers: MLflow runs of datasets the workspace committed are finished (and their model registered), runs of dead
processes that never committed are marked KILLED, and the rerun ingest starts a fresh run for its dataset.

Timing: ``Decision.profile_seconds`` / ``search_seconds`` / ``train_seconds`` are wall clock measured in this
process. A profile or trial taken from the workspace cache reports the seconds measured when it was computed
(``Decision.profile_cached``, ``Decision.cached_trials``, ``Decision.trial_seconds`` the sum of all trials'
measured seconds).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trautoml.decision import Decision
from trautoml.presets import Preset, get_preset
from trautoml.progress import Progress
from trautoml.stages import (DecideStage, Features, GroupStage, IngestObserver, MLflowObserver, ProfileStage,
                             Recovery, SearchTrainStage, decision_record, features_kind)
from trautoml.workspace import Workspace, WorkspaceError

if TYPE_CHECKING:
    from trautoml.executor import Executor
    from trautoml.summary import StreamSummary
    from trautoml.tracking import Tracker

__all__ = ["TrAutoML", "Features"]


def _is_stream_uri(x: Any) -> bool:
    from trautoml.data.loaders import is_stream_scheme, split_scheme

    return isinstance(x, str) and is_stream_scheme(split_scheme(x.strip())[0])


# ---------------------------------------------------------------------------------------------- the API
class TrAutoML:
    """Ingest datasets one at a time; each either reuses its group's model (trained afresh) or gets a searched one.

    ``workspace``: the folder holding the state (``.trautoml/state.db``) and, by default, the MLflow store
    (``mlflow.db``, ``mlruns/``). ``backend``: a search backend name (``search_backends``, entry points included).
    ``grouper``: ``mh`` (the paper's), ``random``, ``kmeans``, ``seq-kmeans``, ``metafeatures``. ``preset``: ``tiny``,
    ``small``, ``paper`` or a `Preset`; keyword ``overrides`` replace its fields (see ``trautoml.presets``).
    ``executor``: ``local`` (process pool), ``serial``, ``ray``, or an executor object. ``backend_options``: extra
    keyword arguments for the backend's constructor. ``mechanism``: ``scratch``, ``cells`` (ENAS cells, restacked
    for joining datasets) or ``predefined`` (a ``backbone`` reused, ``freeze``-d or fine-tuned, a head searched);
    see ``trautoml.mechanisms``.

    ``warm_start``: every search first trains the models of ``warm_k`` earlier datasets, the ``"latest"`` ones, or
    the nearest by ``"profile"`` or by ``"metafeatures"`` (see ``trautoml.warmstart``); with ``grouper="none"``
    (every dataset searched) this is warm-starting and meta-learning as a user can run them.
    ``grouper_options``: keyword arguments for the grouper (e.g. ``{"k": 4}`` for ``kmeans``).
    ``tracking=False``: no MLflow at all; the final training is then a cached trial like the search's (the same
    training, charged its measured seconds), since no model is logged. ``cache``: a SQLite file for the measured
    profiles and trials, shared by every workspace that names it (default: the workspace's own state).

    Nothing is written until the first ingest has loaded and validated its dataset; a bad name or option raises
    ``ValueError`` here.
    """

    def __init__(self, workspace: str | os.PathLike = ".", backend: str = "hyperband", grouper: str = "mh",
                 preset: str | Preset = "small", tracking_uri: str | None = None, executor: Any = "local",
                 seed: int = 0, quiet: bool = False, backend_options: dict | None = None,
                 mechanism: str = "scratch", backbone: dict | None = None, freeze: bool = True,
                 warm_start: str | None = None, warm_k: int = 3, grouper_options: dict | None = None,
                 tracking: bool = True, cache: str | os.PathLike | None = None, **overrides):
        self.preset = get_preset(preset, **overrides)
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.root = Path(workspace).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"workspace {self.root} exists and is not a folder")
        self.tracking_uri = tracking_uri
        self.progress = Progress(quiet=quiet)
        self.quiet = quiet

        from trautoml.mechanisms import make_search_backend

        self.backend_name = backend
        self.mechanism = mechanism
        self.backend = make_search_backend(backend, mechanism, backend_options, defaults={"eta": self.preset.eta},
                                           backbone=backbone, freeze=freeze)

        self.grouper_name = grouper
        self.grouper_options = dict(grouper_options or {})
        from trautoml.warmstart import WARM_START_MODES

        if warm_start is not None and warm_start not in WARM_START_MODES:
            raise ValueError(f"unknown warm start {warm_start!r}; available: {', '.join(WARM_START_MODES)}")
        if isinstance(warm_k, bool) or int(warm_k) != warm_k or warm_k < 1:
            raise ValueError(f"warm_k must be a positive integer, got {warm_k!r}")
        self.warm_start, self.warm_k = warm_start, int(warm_k)
        self.features_kind = features_kind(grouper, warm_start)
        self.tracking = bool(tracking)
        self.cache = None if cache is None else Path(cache).expanduser().resolve()

        if isinstance(executor, str):
            from trautoml.executor import executor_names

            if executor not in executor_names():
                raise ValueError(f"unknown executor {executor!r}; available: {', '.join(executor_names())}")
        self._executor_spec = executor
        self._executor: Executor | None = None
        self._ws: Workspace | None = None
        self._tracker: Tracker | None = None
        self._recovery: Recovery | None = None

        # one object per arrow of the pipeline (`trautoml.stages`); building them validates their settings
        self.profiler = ProfileStage(self, self.features_kind)
        self.grouping = GroupStage(self, grouper, self.grouper_options)
        self.decider = DecideStage(self, self.warm_start, self.warm_k)
        self.searcher = SearchTrainStage(self, self.backend, backend, self.tracking)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the executor this instance made and the workspace (an instance is usable again afterwards)."""
        if self._executor is not None and isinstance(self._executor_spec, str):
            self._executor.close()
        self._executor = None
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def __enter__(self) -> TrAutoML:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def executor(self):
        """The executor trials and profiles run on, made on first use from the ``executor`` argument."""
        if self._executor is None:
            if isinstance(self._executor_spec, str):
                from trautoml.executor import make_executor

                self._executor = make_executor(self._executor_spec)
            else:
                self._executor = self._executor_spec
        return self._executor

    @property
    def workspace(self) -> Workspace:
        """The workspace state, created on first use (only ingests create it)."""
        if self._ws is None:
            self._ws = Workspace(self.root, cache=self.cache)
        return self._ws

    def _existing_workspace(self) -> Workspace | None:
        if self._ws is None and Workspace.exists(self.root):
            self._ws = Workspace(self.root, create=False, cache=self.cache)
        return self._ws

    @property
    def tracker(self):
        """The MLflow `trautoml.tracking.Tracker` of the workspace (its store made on first use)."""
        if self._tracker is None:
            from trautoml.tracking import Tracker

            self._tracker = Tracker.for_workspace(self.root, self.tracking_uri)
        return self._tracker

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict:
        """What fixes how profiles are made and grouped: a workspace keeps one set of these for good."""
        return self.grouping.settings() | self.profiler.settings()

    def check_workspace(self) -> None:
        """Raise ``WorkspaceError`` if the workspace exists and was set up with other settings (read-only)."""
        ws = self._existing_workspace()
        if ws is not None:
            ws.check_settings(self.settings())

    def _run_params(self) -> dict:
        return {"preset": self.preset.name, "backend": self.backend_name, "grouper": self.grouper_name,
                "seed": self.seed, "executor": getattr(self._executor_spec, "name", self._executor_spec),
                **{k: v for k, v in self.preset.to_dict().items() if k not in ("name", "description")}}

    @property
    def recovery(self) -> Recovery:
        """MLflow's side of the workspace's durability (`trautoml.stages.recovery`)."""
        if self._recovery is None:
            self._recovery = Recovery(self.tracker, lambda: self.workspace, self.progress)
        return self._recovery

    # ------------------------------------------------------------------ the pipeline
    def load(self, dataset_or_uri):
        """A Dataset from a Dataset, a StreamItem, a dataset URI or a path (``DatasetError`` if refused)."""
        from trautoml.data import Dataset, DatasetError, StreamItem, load_dataset

        if isinstance(dataset_or_uri, Dataset):
            return dataset_or_uri
        if isinstance(dataset_or_uri, StreamItem):
            return dataset_or_uri.load()
        if isinstance(dataset_or_uri, os.PathLike):
            dataset_or_uri = os.fspath(dataset_or_uri)
        if not isinstance(dataset_or_uri, str):
            raise DatasetError(f"cannot ingest a {type(dataset_or_uri).__name__}; give a dataset URI or a Dataset")
        if _is_stream_uri(dataset_or_uri):
            raise DatasetError(f"{dataset_or_uri!r} is a stream of datasets; use ingest_stream")
        return load_dataset(dataset_or_uri)

    def ingest(self, dataset_or_uri) -> Decision:
        """Load → profile → group → decide → search/train → track, for one dataset; returns its Decision.

        Content already in the workspace returns the earlier Decision without recomputing anything."""
        dataset = self.load(dataset_or_uri)
        earlier = self._earlier(dataset)
        if earlier is not None:
            self.recovery.ensure_finished(earlier)
            return earlier
        self.workspace.check_settings(self.settings())
        with self.workspace.lock():
            earlier = self._earlier(dataset)  # another process may have ingested it while we waited
            if earlier is not None:
                return earlier
            self.workspace.check_settings(self.settings())
            dataset = self._named(dataset)
            observer = self._observer()
            observer.start(dataset, self._run_params())
            try:
                observer.loaded(dataset)
                features = self.profiler(dataset, self.grouping.first_look(), self.grouping.settled)
                observer.profiled(features)
                grouper, version, assignment = self.grouping(features)
                observer.grouped(assignment)
                plan = self.decider(assignment, features, dataset)
                outcome = self.searcher(dataset, plan, observer)
                decision = decision_record(dataset, features, assignment, plan, outcome, run_id=observer.run_id,
                                           preset=self.preset.name, grouper=self.grouper_name,
                                           backend=self.backend_name)
                observer.decided(decision, outcome, dataset)
                committed = self.workspace.commit_ingest(
                    grouper_name=self.grouper_name, grouper_state=grouper.to_dict(), expected_version=version,
                    settings=self.settings(), decision=decision, name=dataset.name, uri=dataset.uri,
                    family=dataset.family, profile=features.to_dict(), assignment=assignment.to_dict(),
                    founds_group=plan.founds_group,
                    group_spec=outcome.spec.to_dict() if plan.founds_group else None)
                self.grouping.committed(committed, grouper)
            except BaseException as exc:
                observer.aborted(exc)
                raise
            observer.committed(decision)
        self.progress.message(f"{dataset.name}: {decision.outcome} → group {decision.group} "
                              f"(val {decision.val_accuracy:.3f}, test {decision.test_accuracy:.3f}, "
                              f"{decision.total_seconds:.1f}s)")
        return decision

    def ingest_stream(self, stream) -> list[Decision]:
        """Ingest datasets in order: a stream URI (``stream:demo``, ``manifest:PATH``, ``folder-stream:DIR``) or an
        iterable of URIs (stream URIs are expanded), StreamItems and Datasets. Items load one at a time."""
        from trautoml.naming import item_name

        items = self.expand(stream)
        decisions = []
        for i, item in enumerate(items, 1):
            label = item_name(item)
            self.progress.message(f"[{i}/{len(items)}] {label}")
            decisions.append(self.ingest(item))
        if decisions:
            self.progress.message(self.log_summary().text())
        return decisions

    @staticmethod
    def expand(stream) -> list:
        """The items of a stream URI or of an iterable (stream URIs inside it expanded), nothing loaded yet."""
        from trautoml.data import load_stream

        if isinstance(stream, (str, os.PathLike)) and not _is_stream_uri(os.fspath(stream)):
            return [os.fspath(stream)]
        if isinstance(stream, str):
            return list(load_stream(stream))
        items: list = []
        for x in stream:
            items.extend(load_stream(x) if _is_stream_uri(x) else [x])
        return items

    def _named(self, dataset):
        """The dataset under its short readable name, unique in the workspace (`trautoml.naming`); called under
        the workspace lock, so two ingests cannot both take one name."""
        from trautoml.naming import readable_name, unique_name

        name = unique_name(readable_name(dataset.uri, dataset.name) or dataset.name, self.workspace.name_taken)
        return dataset if name == dataset.name else dataclasses.replace(dataset, name=name)

    # ---- load → (already there?)
    def _earlier(self, dataset) -> Decision | None:
        ws = self._existing_workspace()
        if ws is None:
            return None
        earlier = ws.decision_by_hash(dataset.content_hash())
        if earlier is not None:
            self.progress.message(f"{dataset.name}: already in the workspace ({earlier.outcome}, group "
                                  f"{earlier.group}); returning the earlier decision")
        return earlier

    # ---- the stages, one call each (see `trautoml.stages`)
    def profile(self, dataset) -> Features:
        """The features the grouper observes, the whole profile (cached in the workspace by content hash and profile
        settings; made in the looks the grouper takes, so that an ingest finds each look's seconds)."""
        try:
            first_look = self.grouping.first_look()
        except WorkspaceError:  # the workspace groups with another grouper: profile in one look, as before
            first_look = None
        return self.profiler(dataset, first_look)

    def recover(self) -> list[str]:
        """Bring MLflow in line with the workspace after a crash (`trautoml.stages.recovery.Recovery.recover`,
        once per instance, under the lock). Returns the runs touched."""
        return self.recovery.recover()

    def _observer(self) -> IngestObserver:
        return MLflowObserver(self.tracker, self.recovery) if self.tracking else IngestObserver()

    # ------------------------------------------------------------------ reading the workspace
    def groups(self) -> list[dict]:
        """Groups in founding order: ``{"id", "members": [dataset names in arrival order], "model": spec dict}``."""
        ws = self._existing_workspace()
        return [] if ws is None else ws.groups()

    def decision_for(self, name: str) -> Decision:
        """The Decision of the latest dataset of that name (its short name, URI, long name, or content hash /
        unique hash prefix; see `trautoml.naming.find_dataset`)."""
        from trautoml.naming import find_dataset

        ws = self._existing_workspace()
        row = None if ws is None else find_dataset(ws, name)
        if row is None:
            raise WorkspaceError(f"no dataset {name!r} in workspace {self.root}")
        return Decision.from_dict(row["decision"])

    def decisions(self) -> list[Decision]:
        """Every dataset's Decision, in arrival order."""
        ws = self._existing_workspace()
        return [] if ws is None else [Decision.from_dict(r["decision"]) for r in ws.datasets()]

    def summary(self) -> StreamSummary:
        """What grouping did for the workspace's stream so far: a `trautoml.summary.StreamSummary` (searches run,
        models reused, search seconds spent beside an estimate of searching every dataset, accuracies side by
        side, escalations)."""
        from trautoml.summary import summarize

        return summarize(self.decisions())

    def log_summary(self) -> StreamSummary:
        """`summary`, also written to MLflow as the experiment's description and tag ``trautoml.summary``."""
        summary = self.summary()
        if summary.datasets and self.tracking:
            self.tracker.log_stream_summary(summary)
        return summary
