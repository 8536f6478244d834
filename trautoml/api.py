"""``trautoml.TrAutoML``: the orchestration a user touches (paper 002, Algorithm 1, over a durable workspace).

One ingest is one call per arrow of the pipeline (see `TrAutoML.ingest`)::

    load → profile → group → decide → search/train → track

* load: ``trautoml.data`` (a URI, a StreamItem or a Dataset); any input it refuses raises ``DatasetError`` before
  anything is written;
* profile: the landmarkers' T×B accuracy matrix (``landmarkers.profile``), cached in the workspace; the
  ``metafeatures`` grouper uses the statistical meta-features instead (no landmarkers);
* group: the workspace's grouper (restored from its JSON state) observes the profile;
* decide: ``trautoml.decide`` (Algorithm 1 and our feedback check after a reuse);
* search/train: the search backend over the executor, every trial cached in the workspace by (content hash,
  spec, resource, seed, data caps); then the chosen model is trained afresh on the dataset;
* track: the decision, its metrics and the trained model in MLflow (``trautoml.tracking``); then the workspace
  commits grouper state + dataset + group in one transaction, and the MLflow run is finished.

Durability (``trautoml.workspace``): ingests hold the workspace lock; a dataset whose content is already in the
workspace returns its earlier Decision at once. After a crash, the next ingest first *recovers*: MLflow runs of
datasets the workspace committed are finished (and their model registered, if that had not happened), runs of
dead processes that never committed are marked KILLED, and the rerun ingest starts a fresh run for its dataset
(``Tracker.start_dataset_run`` deletes the killed one).

Timing: ``Decision.profile_seconds`` / ``search_seconds`` / ``train_seconds`` are wall clock measured in this
process. A profile or trial taken from the workspace cache reports the seconds measured when it was computed
(``extra["profile_cached"]``, ``extra["cached_trials"]``, ``extra["trial_seconds"]`` the sum of all trials'
measured seconds).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trautoml import decide
from trautoml.decision import Decision
from trautoml.mechanisms import accepted_kwargs
from trautoml.models.spec import adapt_spec
from trautoml.presets import Preset, get_preset
from trautoml.progress import Progress
from trautoml.workspace import Workspace, WorkspaceError, state_dir

if TYPE_CHECKING:
    from trautoml.summary import StreamSummary

__all__ = ["TrAutoML", "Features"]


# ---------------------------------------------------------------------------------------------- helpers
@dataclass
class Features:
    """What the grouper observes for one dataset: the landmarker profile (T × B trials) or, for the
    ``metafeatures`` grouper, the statistical meta-features (1 × D). Duck-types ``Profile`` for tracking."""

    kind: str
    trials: np.ndarray
    total_seconds: float
    profile: Any = None
    names: list[str] | None = None
    cached: bool = False

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.trials, dtype=float).mean(axis=0)

    def to_dict(self) -> dict:
        if self.profile is not None:
            return {"kind": self.kind, **self.profile.to_dict()}
        return {"kind": self.kind, "names": self.names, "trials": np.asarray(self.trials).tolist(),
                "mean": self.mean.tolist(), "total_seconds": self.total_seconds}


@dataclass
class Outcome:
    """What the search/train step produced for one dataset."""

    outcome: str                 # "searched" | "reused"
    spec: Any                    # ModelSpec of the dataset's model
    final: Any                   # TrainResult of the final training (module kept)
    search_seconds: float
    train_seconds: float
    final_epochs: float
    trials: list
    search_info: dict
    check: decide.ReuseCheck | None = None
    escalated: bool = False
    search_own_seconds: float = 0.0  # the backend's compute outside its trials (what a cache cannot replay)


def lost_trial(request, exc: BaseException):
    """``on_error`` for the executor: a trial whose worker died (after retries) is a failed trial."""
    from trautoml.search import Trial

    return Trial(spec=request.spec, resource=request.resource, seed=request.seed, val_accuracy=0.0,
                 test_accuracy=0.0, wall_seconds=0.0, status="failed", error=f"worker lost: {exc}")


def _grouper_class(name: str):
    """The grouper class registered under ``name`` (``trautoml.grouping.GROUPERS``; ValueError naming them)."""
    from trautoml.grouping import GROUPERS

    return GROUPERS.get(name)


def _caps(max_train: int | None, max_eval: int | None) -> str:
    """The trial cache's key for the images a training uses."""
    return json.dumps({"max_train": max_train, "max_eval": max_eval}, sort_keys=True)


def _features_kind(grouper: str, warm_start: str | None) -> str:
    """What is measured of each dataset: ``landmarkers`` (profile), ``metafeatures`` or ``none``."""
    if warm_start == "metafeatures" and grouper not in ("metafeatures", "none"):
        raise ValueError(f"warm_start='metafeatures' goes with grouper 'none' or 'metafeatures', not {grouper!r}: "
                         "the neighbours are chosen in the space the datasets are grouped in")
    if grouper == "metafeatures" or warm_start == "metafeatures":
        return "metafeatures"
    if grouper == "none" and warm_start in (None, "latest"):
        return "none"
    return "landmarkers"


def _is_stream_uri(x: Any) -> bool:
    from trautoml.data.loaders import STREAM_SCHEMES, split_scheme

    return isinstance(x, str) and split_scheme(x.strip())[0] in STREAM_SCHEMES


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
        self._fresh_grouper()  # validates the name and the grouping parameters
        from trautoml.warmstart import WARM_START_MODES

        if warm_start is not None and warm_start not in WARM_START_MODES:
            raise ValueError(f"unknown warm start {warm_start!r}; available: {', '.join(WARM_START_MODES)}")
        if isinstance(warm_k, bool) or int(warm_k) != warm_k or warm_k < 1:
            raise ValueError(f"warm_k must be a positive integer, got {warm_k!r}")
        self.warm_start, self.warm_k = warm_start, int(warm_k)
        self.features_kind = _features_kind(grouper, warm_start)
        self.tracking = bool(tracking)
        self.cache = None if cache is None else Path(cache).expanduser().resolve()

        if isinstance(executor, str):
            from trautoml.executor import executor_names

            if executor not in executor_names():
                raise ValueError(f"unknown executor {executor!r}; available: {', '.join(executor_names())}")
        self._executor_spec = executor
        self._executor = None
        self._ws: Workspace | None = None
        self._tracker = None
        self._recovered = False
        self._committed_grouper = None  # (state version, grouper): see `_grouper`

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._executor is not None and isinstance(self._executor_spec, str):
            self._executor.close()
        self._executor = None
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def __enter__(self) -> "TrAutoML":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def executor(self):
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
        if self._tracker is None:
            from trautoml.tracking import Tracker

            self._tracker = Tracker.for_workspace(self.root, self.tracking_uri)
        return self._tracker

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict:
        """What fixes how profiles are made and grouped: a workspace keeps one set of these for good."""
        p = self.preset
        s = {"grouper": self.grouper_name, "alpha": p.alpha, "gamma": p.gamma, "K": p.K, "sigma0_sq": p.sigma0_sq}
        if self.grouper_options:
            s["grouper_options"] = self.grouper_options
        if self.features_kind == "landmarkers":
            from trautoml.registry import PROFILERS

            LANDMARKER_SEED = PROFILERS.get("landmarkers").LANDMARKER_SEED
            s |= {"n_models": p.n_models, "n_trials": p.n_trials, "profile_epochs": p.profile_epochs,
                  "profile_max_train": p.profile_max_train, "profile_max_eval": p.profile_max_eval,
                  "landmarker_seed": LANDMARKER_SEED}
        return s

    def check_workspace(self) -> None:
        """Raise ``WorkspaceError`` if the workspace exists and was set up with other settings (read-only)."""
        ws = self._existing_workspace()
        if ws is not None:
            ws.check_settings(self.settings())

    def _run_params(self) -> dict:
        return {"preset": self.preset.name, "backend": self.backend_name, "grouper": self.grouper_name,
                "seed": self.seed, "executor": getattr(self._executor_spec, "name", self._executor_spec),
                **{k: v for k, v in self.preset.to_dict().items() if k not in ("name", "description")}}

    def _grouper_kwargs(self) -> dict:
        p = self.preset
        return {"alpha": p.alpha, "gamma": p.gamma, "K": p.K, "sigma0_sq": p.sigma0_sq, "seed": self.seed,
                **self.grouper_options}

    def _fresh_grouper(self):
        cls = _grouper_class(self.grouper_name)  # ValueError naming the known groupers
        return cls(**accepted_kwargs(cls, self._grouper_kwargs()))

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
            self._ensure_finished(earlier)
            return earlier
        self.workspace.check_settings(self.settings())
        with self.workspace.lock():
            earlier = self._earlier(dataset)  # another process may have ingested it while we waited
            if earlier is not None:
                return earlier
            self.workspace.check_settings(self.settings())
            dataset = self._named(dataset)
            run_id = None
            if self.tracking:
                self.recover()
                run_id = self.tracker.start_dataset_run(dataset.name, dataset.content_hash(), self._run_params())
            try:
                if run_id is not None:
                    self._log_input(run_id, dataset)
                features = self.profile(dataset, run_id)
                grouper, version, assignment = self.group(features, run_id)
                plan = self.decide(assignment, features)
                outcome = self.search_and_train(dataset, plan, run_id)
                decision = self._decision(dataset, features, assignment, plan, outcome, run_id)
                if run_id is not None:
                    self.track(run_id, decision, outcome, dataset)
                committed = self.workspace.commit_ingest(
                    grouper_name=self.grouper_name, grouper_state=grouper.to_dict(), expected_version=version,
                    settings=self.settings(), decision=decision, name=dataset.name, uri=dataset.uri,
                    family=dataset.family, profile=features.to_dict(), assignment=assignment.to_dict(),
                    founds_group=plan.founds_group,
                    group_spec=outcome.spec.to_dict() if plan.founds_group else None)
                self._committed_grouper = (committed, grouper)
            except BaseException as exc:
                if run_id is not None:
                    self._abort_run(run_id, exc)
                raise
            if run_id is not None:
                self._finish_run(run_id, decision)
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

    def _ensure_finished(self, decision: Decision) -> None:
        """A committed ingest whose MLflow run a crash left open (killed after the commit): finish it now, so
        rerunning the same command leaves no run RUNNING."""
        if decision.run_id is None:
            return
        try:
            status = self.tracker.client.get_run(decision.run_id).info.status
        except Exception:  # noqa: BLE001 - store unreachable or run gone: nothing of ours to finish
            return
        if status != "FINISHED":
            with self.workspace.lock():
                self._recovered = False
                self.recover()

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

    # ---- profile
    def profile(self, dataset, run_id: str | None = None) -> Features:
        """The features the grouper observes (cached in the workspace by content hash and profile settings)."""
        p = self.preset
        if self.features_kind == "none":  # nothing to measure: the grouper (none) needs no features
            return Features("none", np.zeros((1, 1)), 0.0)
        if self.features_kind == "metafeatures":
            from trautoml.data import METAFEATURE_NAMES, statistical_metafeatures

            h, key = dataset.content_hash(), json.dumps({"kind": "metafeatures"})
            cached = self.workspace.cached_profile(h, key)
            hit = cached is not None
            if not hit:
                t0 = time.perf_counter()
                mf = statistical_metafeatures(dataset)
                names = [n for n in METAFEATURE_NAMES if n in mf]
                cached = {"names": names, "trials": [[float(mf[n]) for n in names]],
                          "total_seconds": time.perf_counter() - t0}
                self.workspace.store_profile(h, key, cached)
            features = Features("metafeatures", np.array(cached["trials"]), cached["total_seconds"],
                                names=cached["names"], cached=hit)
        else:
            from trautoml.registry import PROFILERS

            lm = PROFILERS.get("landmarkers")  # the landmarkers package (paper 002 §2.1)
            LANDMARKER_SEED, Profile, ProfileBudget, landmarker_profile = \
                lm.LANDMARKER_SEED, lm.Profile, lm.ProfileBudget, lm.profile

            key = json.dumps({"n_models": p.n_models, "n_trials": p.n_trials, "epochs": p.profile_epochs,
                              "max_train": p.profile_max_train, "max_eval": p.profile_max_eval, "seed": self.seed,
                              "landmarker_seed": LANDMARKER_SEED}, sort_keys=True)
            h = dataset.content_hash()
            cached = self.workspace.cached_profile(h, key)
            if cached is not None:
                prof = Profile.from_dict(cached)
                self.progress.message(f"  profile: from the workspace cache ({prof.total_seconds:.1f}s measured)")
            else:
                prof = landmarker_profile(
                    dataset, n_models=p.n_models, n_trials=p.n_trials, seed=self.seed, executor=self.executor,
                    budget=ProfileBudget(epochs=p.profile_epochs, max_train=p.profile_max_train,
                                         max_eval=p.profile_max_eval),
                    progress=self.progress.bar(f"  profile {p.n_trials}x{p.n_models}"))
                self.workspace.store_profile(h, key, prof.to_dict())
            features = Features("landmarkers", prof.trials, prof.total_seconds, profile=prof,
                                cached=cached is not None)
        if run_id is not None:
            self.tracker.log_profile(run_id, features)
        return features

    # ---- group
    def _grouper(self):
        """The workspace's grouper (a fresh one before the first dataset) and the state version it stands for.

        Restoring replays every dataset grouped so far (``from_dict``), work that grows with the stream; so the
        grouper this instance committed last is used as it is while the workspace still holds that very version
        (nobody else committed since). It is handed out once: whoever observes with it must commit again."""
        committed, self._committed_grouper = self._committed_grouper, None
        head = self.workspace.grouper_version()
        if head is None:
            return self._fresh_grouper(), None
        name, version = head
        if name != self.grouper_name:
            raise WorkspaceError(f"workspace {self.root} groups with {name!r}, not {self.grouper_name!r}")
        if committed is not None and committed[0] == version:
            return committed[1], version
        _, d, version = self.workspace.grouper_state()
        return _grouper_class(name).from_dict(d), version

    def group(self, features: Features, run_id: str | None = None):
        grouper, version = self._grouper()
        assignment = grouper.observe(features.trials)
        self.progress.message("  group: " + assignment.explain().replace("\n", "\n         "))
        if run_id is not None:
            self.tracker.log_assignment(run_id, assignment)
        return grouper, version, assignment

    # ---- decide
    def decide(self, assignment, features: Features | None = None) -> decide.Plan:
        """Algorithm 1's decision; a search also gets the warm-start models, when ``warm_start`` is set."""
        from trautoml.models.spec import ModelSpec

        spec = self.workspace.group_spec(assignment.group)
        plan = decide.plan(assignment, None if spec is None else ModelSpec.from_dict(spec))
        if plan.action == decide.SEARCH and self.warm_start is not None:
            from trautoml.warmstart import neighbour_specs

            point = None if features is None else features.mean
            specs = neighbour_specs(self.workspace.datasets(), point, self.warm_start, self.warm_k)
            plan = dataclasses.replace(plan, warm_start=tuple(plan.warm_start) +
                                       tuple(ModelSpec.from_dict(s) for s in specs))
        self.progress.message(f"  decide: {plan.describe()}")
        return plan

    # ---- search / train
    def search_and_train(self, dataset, plan: decide.Plan, run_id: str | None = None) -> Outcome:
        p = self.preset
        if plan.action == decide.SEARCH:
            result, search_s, own_s = self._search(dataset, plan, run_id)
            epochs = p.final_epochs or result.best_resource
            final, train_s = self._train(result.best, dataset, epochs)
            return Outcome("searched", result.best, final, search_s, train_s, epochs, result.trials, result.info,
                           search_own_seconds=own_s)

        epochs = p.final_epochs or p.search_epochs
        plan = dataclasses.replace(plan, spec=adapt_spec(plan.spec, dataset.input_shape, dataset.num_classes))
        final, train_s = self._train(plan.spec, dataset, epochs)
        members = self.workspace.member_val_accuracies(plan.group, plan.spec.to_dict())
        check = decide.check_reuse(final.val_accuracy, members, p.reuse_tolerance)
        if not check.escalate:
            return Outcome("reused", plan.spec, final, 0.0, train_s, epochs, [], {}, check)
        self.progress.message(f"  check: reused val {check.reused_val:.3f} < group's {check.reference:.3f} - "
                              f"{check.tolerance}: escalating to a search")
        result, search_s, own_s = self._search(dataset, decide.escalation(plan), run_id)
        epochs2 = p.final_epochs or result.best_resource
        final2, train2_s = self._train(result.best, dataset, epochs2)
        if final2.val_accuracy > final.val_accuracy:
            return Outcome("searched", result.best, final2, search_s, train_s + train2_s, epochs2, result.trials,
                           result.info, check, escalated=True, search_own_seconds=own_s)
        return Outcome("reused", plan.spec, final, search_s, train_s + train2_s, epochs, result.trials,
                       result.info, check, escalated=True, search_own_seconds=own_s)

    def _search(self, dataset, plan: decide.Plan, run_id: str | None):
        from trautoml.search import SearchTask, run_search

        folder = state_dir(self.root) / "backends" / self.backend_name
        folder.mkdir(parents=True, exist_ok=True)
        runner = self._trial_runner(dataset, run_id)
        in_trials = [0.0]

        def run_trials(requests):
            t = time.perf_counter()
            try:
                return runner(requests)
            finally:
                in_trials[0] += time.perf_counter() - t

        warm = [adapt_spec(s, dataset.input_shape, dataset.num_classes) for s in plan.warm_start]
        task = SearchTask(dataset=dataset, budget=self.search_budget(), run_trials=run_trials,
                          seed=self.search_seed(dataset), warm_start=warm, task_id=plan.group,
                          state_dir=folder,
                          progress=lambda msg: self.progress.message("  search: " + msg))
        t0 = time.perf_counter()
        result = run_search(self.backend, task)
        seconds = time.perf_counter() - t0
        if run_id is not None:  # what the backend learnt (Q-table, controller weights), as the run's artifacts
            self.tracker.log_artifacts_dir(run_id, folder, "backend_state")
        return result, seconds, max(0.0, seconds - in_trials[0])

    def search_budget(self, scale: float = 1.0):
        """The preset's search budget; ``scale`` multiplies its trials (the benchmark's warm-start runs on half)."""
        from trautoml.search import SearchBudget

        p = self.preset
        return SearchBudget(max_trials=max(1, round(p.search_trials * scale)), max_epochs=p.search_epochs,
                            min_epochs=p.search_min_epochs, max_seconds=p.search_seconds)

    def search_seed(self, dataset) -> int:
        """The seed of a search on ``dataset``: fixed by the workspace seed and the dataset's content, so each
        dataset explores its own candidates, and a rerun (or the benchmark's standalone search) repeats it."""
        digest = hashlib.sha256(f"{self.seed}:{dataset.content_hash()}".encode()).hexdigest()
        return int(digest[:8], 16)

    def _trial_runner(self, dataset, run_id: str | None, limits: tuple[int | None, int | None] | None = None):
        """``task.run_trials``: the workspace's trial cache first, the rest through the executor with a picklable
        top-level trial function; measured results go into the cache and, as child runs, into MLflow.
        ``limits``: (max_train, max_eval) images a trial uses; default: the preset's search caps."""
        from trautoml.search import Trial
        from trautoml.models.trials import run_trial

        p = self.preset
        max_train, max_eval = limits if limits is not None else (p.search_max_train, p.search_max_eval)
        h = dataset.content_hash()
        caps = _caps(max_train, max_eval)
        fn = functools.partial(run_trial, dataset=dataset, max_train=max_train, max_eval=max_eval)
        logged = [0]

        def run_trials(requests) -> list:
            requests = list(requests)
            out: list = [None] * len(requests)
            misses = []
            for i, r in enumerate(requests):
                hit = self.workspace.cached_trial(h, r.spec.key(), r.resource, r.seed, caps)
                if hit is None:
                    misses.append(i)
                else:
                    out[i] = Trial.from_dict({**hit, "cached": True})
            if misses:
                results = self.executor.map(fn, [requests[i] for i in misses], on_error=lost_trial)
                for i, t in zip(misses, results):
                    out[i] = t
                self.workspace.store_trials(h, caps, [
                    {"spec_key": t.spec.key(), "resource": t.resource, "seed": t.seed, "trial": t.to_dict()}
                    for t in (out[i] for i in misses) if t.status == "ok"])
            if run_id is not None:
                self.tracker.log_trials(run_id, out, first_index=logged[0])
            logged[0] += len(out)
            return out

        return run_trials

    def _train(self, spec, dataset, epochs: float):
        """The final training of the dataset's model: weights trained afresh on its full train split. Returns the
        result and the seconds it is charged (measured; a cached one's measured when it ran).

        With tracking the module is kept and logged, and the measurement goes into the trial cache; without, no
        module is needed, so a training measured before (same dataset, spec, epochs, seed, image cap) is not run
        again: it is the same call either way (`run_trial` wraps `train_and_evaluate`)."""
        from trautoml.search import Trial, TrialRequest
        from trautoml.models.train import TrainResult, train_and_evaluate

        self.progress.message(f"  train: {spec.space} {spec.key()} for {epochs:g} epochs")
        limits = (self.preset.final_max_train, None)
        if not self.tracking:
            trial = self._trial_runner(dataset, None, limits=limits)([TrialRequest(spec, epochs, self.seed)])[0]
            if trial.status != "ok":
                raise RuntimeError(f"the final training of {spec.key()} failed: {trial.error}")
            return TrainResult(trial.val_accuracy, trial.test_accuracy, trial.wall_seconds, epochs, 0,
                               float("nan")), trial.wall_seconds
        t0 = time.perf_counter()
        res = train_and_evaluate(spec, dataset, epochs, self.seed, max_train=limits[0], keep_module=True)
        seconds = time.perf_counter() - t0
        trial = Trial(spec=spec, resource=epochs, seed=self.seed, val_accuracy=res.val_accuracy,
                      test_accuracy=res.test_accuracy, wall_seconds=res.wall_seconds)
        self.workspace.store_trials(dataset.content_hash(), _caps(*limits), [
            {"spec_key": spec.key(), "resource": epochs, "seed": self.seed, "trial": trial.to_dict()}])
        return res, seconds

    # ---- the decision record
    def _decision(self, dataset, features: Features, assignment, plan: decide.Plan, out: Outcome,
                  run_id: str) -> Decision:
        test = assignment.test
        trials = out.trials
        extra = {"uri": dataset.uri, "family": dataset.family, "preset": self.preset.name,
                 "grouper": self.grouper_name, "final_epochs": out.final_epochs,
                 "profile_cached": features.cached, "trials": len(trials),
                 "cached_trials": sum(1 for t in trials if t.cached),
                 "failed_trials": sum(1 for t in trials if t.status != "ok"),
                 "trial_seconds": float(sum(t.wall_seconds for t in trials)),
                 "search_own_seconds": float(out.search_own_seconds),
                 "founded": plan.founds_group, "search": out.search_info}
        if out.check is not None:
            extra["reuse_check"] = out.check.to_dict()
        if out.escalated:
            extra["escalated"] = {"kept": out.outcome, "group_model": plan.spec.to_dict()}
        how = plan.describe()
        if out.escalated:
            how += ("; " + decide.escalation(plan).describe() +
                    (" — kept the searched model" if out.outcome == "searched" else " — the search did not beat "
                     "the reused model, kept it"))
        return Decision(
            dataset=dataset.name, content_hash=dataset.content_hash(), group=plan.group, outcome=out.outcome,
            reason=assignment.reason, spec=out.spec, backend=self.backend_name,
            val_accuracy=float(out.final.val_accuracy), test_accuracy=float(out.final.test_accuracy),
            profile_seconds=float(features.total_seconds), search_seconds=float(out.search_seconds),
            train_seconds=float(out.train_seconds), explanation=f"{assignment.explain()}\n→ {how}",
            F=getattr(test, "F", None), p_value=getattr(test, "p_value", None),
            log_posterior=assignment.log_posterior, runner_up_log_posterior=assignment.runner_up_log_posterior,
            run_id=run_id, extra=extra)

    # ---- track
    def track(self, run_id: str, decision: Decision, outcome: Outcome, dataset) -> None:
        self.tracker.log_decision(run_id, decision, module=outcome.final.module,
                                  input_example=np.ascontiguousarray(dataset.x_val[:2]))
        self.tracker.log_display_tags(run_id, decision)

    def _log_input(self, run_id: str, dataset) -> None:
        """The run's dataset lineage (`Tracker.log_dataset_input`)."""
        self.tracker.log_dataset_input(
            run_id, name=dataset.name, content_hash=dataset.content_hash(), uri=dataset.uri,
            input_shape=dataset.input_shape, num_classes=dataset.num_classes,
            sizes={split: len(dataset.split(split)[1]) for split in ("train", "val", "test")})

    def _finish_run(self, run_id: str, decision: Decision) -> None:
        """After the commit: the group's registered model gets this member's version, the groups picture, and the
        run is finished. A failure here loses nothing: `recover` completes it next time."""
        try:
            self._register(decision.group, run_id)
            names, means, groups = self.workspace.profile_points()
            self.tracker.log_groups_figure(run_id, names, np.array(means, dtype=float), groups,
                                           highlight=decision.dataset)
            self.tracker.end_run(run_id, "FINISHED")
        except Exception as exc:  # noqa: BLE001 - the ingest is committed; recovery finishes the run later
            self.progress.message(f"warning: finishing MLflow run {run_id} failed ({exc}); the next ingest "
                                  "finishes it")

    def _register(self, group: str, run_id: str) -> None:
        client = self.tracker.client
        if not client.search_model_versions(f"run_id = '{run_id}'"):
            self.tracker.register_group_model(group, run_id)

    def _abort_run(self, run_id: str, exc: BaseException) -> None:
        """Mark the dataset's run KILLED (interrupted) or FAILED. An interrupt that landed inside an MLflow call can
        leave that call's database session open, held by the traceback's frames, and with it SQLite's lock: the
        frames are cleared first so the session closes. MLflow's own error log stays quiet here; a run that still
        cannot be closed is closed by `recover` on the next ingest."""
        import gc
        import logging
        import traceback

        status = "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED"
        traceback.clear_frames(exc.__traceback__)
        gc.collect()
        previous = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        try:
            self.tracker.end_run(run_id, status)
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        finally:
            logging.disable(previous)

    def recover(self) -> list[str]:
        """Bring MLflow in line with the workspace after a crash (once per instance, under the lock): runs of
        committed datasets are finished (their model registered if it was not), RUNNING runs of dead processes
        that never committed are marked KILLED, and so are their RUNNING trial runs. Returns the runs touched."""
        if self._recovered:
            return []
        tracker, ws = self.tracker, self.workspace
        committed = {r["run_id"]: r for r in ws.datasets() if r["run_id"]}
        touched = []
        unfinished = tracker.client.search_runs([tracker.experiment_id], "attributes.status != 'FINISHED'",
                                                max_results=10_000)
        for run in unfinished:
            rid = run.info.run_id
            if rid in committed:
                self._register(committed[rid]["group_id"], rid)
                tracker.end_run(rid, "FINISHED")
                touched.append(rid)
        touched += tracker.close_stale_runs()
        for run in tracker.client.search_runs([tracker.experiment_id], "attributes.status = 'RUNNING'",
                                              max_results=10_000):
            parent = run.data.tags.get("mlflow.parentRunId")
            if parent and tracker.client.get_run(parent).info.status != "RUNNING":
                tracker.end_run(run.info.run_id, "KILLED")
                touched.append(run.info.run_id)
        self._recovered = True
        return touched

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
