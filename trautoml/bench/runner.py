"""The paper's Table 2 protocol (002 §3.1–3.2), every method on the same stream in one run, each method being the
product itself: a `TrAutoML` with that method's options ingesting the stream in that order (tracking off).

Methods, each combined with each search backend ``B`` (their rules; none is a fixed cut of the search budget):

* ``standalone+B``: ``grouper="none"``, each dataset in a workspace of its own: every dataset searched from
  scratch, no backend state carried from one to the next; the reference e* of TRE;
* ``standalone-seed2+B``: the same with the next seed (another search seed and final-training seed): its TRE
  against ``standalone`` is the noise floor, what a second search of the same dataset differs by;
* ``warmstart+B`` (Lindauer & Hutter 2018): ``grouper="none", warm_start="latest"``: every search first trains
  the models of the 3 latest earlier datasets, within its own budget;
* ``metalearn+B`` (Feurer et al. 2015): ``grouper="none", warm_start="metafeatures"``: the same with the 3 nearest
  earlier datasets by statistical meta-features;
* ``random+B``, ``kmeans+B`` (given the true number of families), ``seq-kmeans+B``, ``mh+B``: trautoml's decision
  rule over each grouping: a dataset that founds a group is searched, one that joins reuses the group's model,
  trained afresh, unless the accuracy guard (`trautoml.decide`) refuses the reuse and escalates to a search; ``mh``
  is the default pipeline;
* ``mh-paper+B``: the paper's MH as published: plain reuse (no accuracy guard), the guard's unpaired test, the
  group covariance with the members' single-trial covariance (``trial_cov="trial"``), whole profiles (no first look);
* ``peer-zeroshot``, a peer from outside, once, whatever the backends: ``grouper="none"`` with the search backend
  ``synetune-zeroshot`` (syne-tune's ``ZeroShotTransfer`` fed the earlier datasets' evaluations; see
  ``search_backends.synetune_zeroshot``), the same budget, measured against the first backend's standalone. It
  runs where the ``peers`` extra is installed; elsewhere the report says it was left out and why.

Costs are measured once and charged in every row and order that meets them: all rows share one cache of profiles,
meta-features, search trials and final trainings (by dataset content, spec, budget and seed), and each cached item
is charged the seconds it took when it was measured. A dataset's search is charged its trials' measured seconds
plus the backend's own compute outside them; its final training its measured seconds; its profile (or
meta-features) its measured seconds, as overhead.
"""
from __future__ import annotations

import datetime as _dt
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trautoml.bench.metrics import ERROR_FLOOR, Outcome, aggregate, summarise_order
from trautoml.bench.report import write_report

if TYPE_CHECKING:
    from trautoml.executor import Executor

GROUPING_METHODS = ("random", "kmeans", "seq-kmeans", "mh", "mh-paper")
#: Methods that bring their own search backend (a peer from outside), run once against the first backend.
PEER_METHODS = {"peer-zeroshot": "synetune-zeroshot"}
ALL_METHODS = ("standalone", "standalone-seed2", "warmstart", "metalearn", *GROUPING_METHODS, *PEER_METHODS)
#: Methods whose datasets are each searched alone (a workspace per dataset): their outcome does not depend on order.
SOLO_METHODS = ("standalone", "standalone-seed2")
#: The product options of each method (see the module docstring).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "standalone": dict(grouper="none"),
    "standalone-seed2": dict(grouper="none"),
    "warmstart": dict(grouper="none", warm_start="latest"),
    "metalearn": dict(grouper="none", warm_start="metafeatures"),
    "random": dict(grouper="random"),
    "kmeans": dict(grouper="kmeans"),
    "seq-kmeans": dict(grouper="seq-kmeans"),
    "mh": dict(grouper="mh"),
    "mh-paper": dict(grouper="mh", reuse_tolerance=None, grouper_options={"trial_cov": "trial", "paired": False,
                                                                        "first_look": None}),
    "peer-zeroshot": dict(grouper="none"),
}


def peer_unavailable(method: str) -> str | None:
    """Why a peer method cannot run here (None when it can)."""
    from trautoml.registry import BACKENDS

    backend = PEER_METHODS[method]
    if backend not in BACKENDS:
        return f"its backend {backend} is not registered (reinstall trautoml)"
    try:
        BACKENDS.get(backend)()
    except ImportError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class BenchPreset:
    """A benchmark preset (``BENCH_PRESETS``): the ``stream`` it runs, the engine preset (``engine_preset``, see
    ``trautoml.presets``) and its field ``overrides``, and how many random stream ``orders`` it averages over."""
    name: str
    stream: str
    engine_preset: str
    orders: int
    overrides: dict = field(default_factory=dict)


#: ``ci``: six small datasets of three families, tiny budgets (under 5 minutes on 2 cores);
#: ``small``: ``stream:paper-small`` (under an hour on 2 cores): the ``small`` preset's profile, with a search of
#: 18 full-budget equivalents (Hyperband R = 9: 3 epochs down to 1/3) on all of a dataset's (<= 5,000) images.
#: Why larger than the demo's 3 on 1,000: in the paper a search costs hours and a profile minutes, and the benchmark
#: asks what grouping saves in that regime. At the demo's budget a search (≈ 8 s with its final training) cost
#: about as much as the landmarker profile (≈ 4 s per dataset), and no grouping could save time (measured: MH 1.07
#: × standalone); at 9 equivalents on <= 2,500 images (≈ 29 s per search) the run took 12.5 minutes and the profile
#: was still 24 % of MH's total. Doubled from there, the run still stays well inside its hour (measured: 20
#: minutes); the measured figures for each budget are in the README;
#: ``paper``: the same protocol at the paper's budgets, for a GPU.
BENCH_PRESETS = {
    "ci": BenchPreset("ci", "stream:ci", "tiny", orders=3, overrides=dict(
        n_models=4, n_trials=10, n_trials_first=6, profile_max_train=512, profile_max_eval=300, search_trials=6,
        search_epochs=2.0, search_min_epochs=2 / 9, search_max_train=600, final_epochs=3.0)),
    "small": BenchPreset("small", "stream:paper-small", "small", orders=5, overrides=dict(
        search_trials=18, search_epochs=3.0, search_min_epochs=1 / 3, search_max_train=None)),
    "paper": BenchPreset("paper", "stream:paper-small", "paper", orders=30),
}


class StreamBench:
    """Runs the methods over random orders of one stream; every row is `TrAutoML` ingesting the stream.

    ``variants``: extra rows, name → `TrAutoML` options (as in ``METHOD_OPTIONS``), run like the groupings over
    every order: an ablation of the default pipeline's parts (``bench/bench_mh_ablation.py``)."""

    def __init__(self, preset: str = "ci", backends: Sequence[str] = ("hyperband",), orders: int | None = None,
                 workspace: Path | str = "bench-workspace", seed: int = 0, executor: str = "local",
                 methods: Sequence[str] = ALL_METHODS, quiet: bool = False,
                 log: Callable[[str], None] | None = None, variants: dict[str, dict] | None = None):
        if preset not in BENCH_PRESETS:
            raise ValueError(f"unknown bench preset {preset!r}; available: {', '.join(BENCH_PRESETS)}")
        self.variants = dict(variants or {})
        clash = sorted(set(self.variants) & set(ALL_METHODS))
        if clash:
            raise ValueError(f"variant name(s) {', '.join(clash)} are method names; choose others")
        methods = [*methods, *self.variants]
        unknown = sorted(set(methods) - set(ALL_METHODS) - set(self.variants))
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(unknown)}; available: {', '.join(ALL_METHODS)}")
        self.preset = BENCH_PRESETS[preset]
        self.orders = orders or self.preset.orders
        self.backends = list(backends)
        if not self.backends:
            raise ValueError("no backend to benchmark: name at least one")
        self.methods = list(methods)
        self.seed = seed
        self.workspace = Path(workspace)
        self.executor_name = executor
        self.quiet = quiet
        self.log = log or (lambda msg: None)
        self._executor: Executor | None = None

    @property
    def cache(self) -> Path:
        """The measurements every row shares (profiles, meta-features, trials, final trainings)."""
        return self.workspace / "cache.db"

    def product(self, folder: Path, backend: str, seed: int | None = None, **options):
        """The `TrAutoML` a row runs: tracking off, the shared cache and executor, the preset's budgets."""
        from trautoml.api import TrAutoML

        if self._executor is None:
            from trautoml.executor import make_executor

            self._executor = make_executor(self.executor_name)
        return TrAutoML(folder, backend=backend, preset=self.preset.engine_preset, executor=self._executor,
                        seed=self.seed if seed is None else seed, quiet=True, tracking=False, cache=self.cache,
                        **options, **self.preset.overrides)

    # ----------------------------------------------------------------- the protocol
    def run(self, items) -> dict:
        """Run every method over every order of ``items`` (the stream's items, loaded here), in fresh workspaces under
        ``workspace/runs`` that share the cache, then close the executor. Returns ``table`` (row → metrics), ``curves``,
        ``sweep``, ``context`` and ``relative_errors``, as ``write_report`` takes them."""
        t_start = time.perf_counter()
        runs = self.workspace / "runs"
        shutil.rmtree(runs, ignore_errors=True)  # the rows' own workspaces; the cache is kept
        try:
            return self._run(items, runs, t_start)
        finally:
            if self._executor is not None:
                self._executor.close()
                self._executor = None

    def _run(self, items, runs: Path, t_start: float) -> dict:
        datasets = [it.load() for it in items]
        families = [d.family or d.name for d in datasets]
        self.log(f"bench: {len(datasets)} datasets, {self.orders} orders, backends {', '.join(self.backends)}")
        rng = np.random.default_rng(self.seed)
        orders = [rng.permutation(len(datasets)) for _ in range(self.orders)]

        table: dict[str, dict] = {}
        curves: dict[str, list[tuple[float, float]]] = {}
        per_dataset: dict[str, dict[str, float]] = {}
        left_out: dict[str, str] = {}
        first_reference: tuple[str, dict[str, float], float] | None = None
        for backend in self.backends:
            solo = {m: self._solo(m, backend, datasets, families, runs) for m in SOLO_METHODS
                    if m in self.methods or m == "standalone"}
            reference = {o.dataset: o.test_error for o in solo["standalone"]}
            stand_total = sum(o.search_s + o.train_s + o.overhead_s for o in solo["standalone"])
            first_reference = first_reference or (backend, reference, stand_total)
            for method in self.methods:
                if method in PEER_METHODS:
                    continue
                row = f"{method}+{backend}"
                table[row], curves[row], per_dataset[row] = self._row(
                    row, method, backend, solo, orders, datasets, families, runs, reference, stand_total)
        assert first_reference is not None  # __init__ refuses an empty list of backends
        for method in [m for m in self.methods if m in PEER_METHODS]:
            why = peer_unavailable(method)
            if why:
                left_out[method] = why
                self.log(f"{method}: left out: {why}")
                continue
            backend, reference, stand_total = first_reference
            table[method], curves[method], per_dataset[method] = self._row(
                method, method, PEER_METHODS[method], {}, orders, datasets, families, runs, reference, stand_total)
        sweep = self._sweeps(self._profiles(datasets, runs), orders)
        context = {"machine": f"{platform.machine()}, {_cores()} cores, {platform.python_implementation()} "
                              f"{platform.python_version()}",
                   "date": _dt.date.today().isoformat(), "preset": self.preset.name,
                   "stream": self.preset.stream,
                   "datasets": len(datasets), "families": len(set(families)), "orders": self.orders,
                   "seed": self.seed, "reference_backend": first_reference[0],
                   **({"left_out": "; ".join(f"{m}: {w}" for m, w in left_out.items())} if left_out else {}),
                   "wall_seconds": time.perf_counter() - t_start}
        return {"table": table, "curves": curves, "sweep": sweep, "context": context,
                "relative_errors": per_dataset}

    def _row(self, row: str, method: str, backend: str, solo, orders, datasets, families, runs: Path,
             reference: dict, stand_total: float) -> tuple[dict, list, dict]:
        """One row of the table, ``method`` with ``backend`` over every order: its aggregate, its accuracy curve
        over the first order, and each dataset's relative error (mean over orders)."""
        names = [d.name for d in datasets]
        per_order, rel, curve = [], [], []
        for k, order in enumerate(orders):
            self.log(f"{row}: order {k + 1}/{len(orders)}")
            if method in SOLO_METHODS:
                by_name = {o.dataset: o for o in solo[method]}
                outcomes = [by_name[names[i]] for i in order]
            else:
                outcomes = self._run_order(method, backend, order, datasets, families, runs / row / f"order{k}", k)
            per_order.append(summarise_order(outcomes, reference))
            rel.append({o.dataset: (o.test_error - max(reference[o.dataset], ERROR_FLOOR)) /
                        max(reference[o.dataset], ERROR_FLOOR) for o in outcomes})
            if k == 0:
                curve = _curve(outcomes)
        return aggregate(per_order, stand_total), curve, {n: float(np.mean([r[n] for r in rel])) for n in names}

    def _solo(self, method: str, backend: str, datasets, families, runs: Path) -> list[Outcome]:
        """Each dataset searched alone, in a workspace of its own (``standalone``; ``-seed2``: the next seed)."""
        seed = self.seed + (1 if method == "standalone-seed2" else 0)
        out = []
        for i, ds in enumerate(datasets):
            self.log(f"{method} {backend}: {ds.name}")
            t = self.product(runs / f"{method}+{backend}" / f"dataset{i}", backend, seed=seed,
                             **METHOD_OPTIONS[method])
            try:
                out.append(_outcome(t.ingest(ds), ds.name, families[i], solo=True))
            finally:
                t.close()
        return out

    def _run_order(self, method, backend, order, datasets, families, folder: Path, k: int) -> list[Outcome]:
        options = dict(self.variants[method] if method in self.variants else METHOD_OPTIONS[method])
        if options.get("grouper") in ("random", "mh"):  # their own randomness differs from order to order
            options["grouper_options"] = {**options.get("grouper_options", {}), "seed": self.seed + k}
        if method == "kmeans":
            options["grouper_options"] = {"k": len(set(families)), "seed": self.seed + k}
        t = self.product(folder, backend, **options)
        try:
            return [_outcome(t.ingest(datasets[i]), datasets[i].name, families[i]) for i in order]
        finally:
            t.close()

    def _profiles(self, datasets, runs: Path) -> list:
        """The landmarker profiles (from the shared cache) for the sweeps."""
        t = self.product(runs / "profiles", self.backends[0], grouper="mh")
        try:
            return [t.profile(ds) for ds in datasets]
        finally:
            t.close()

    def _sweeps(self, profiles, orders) -> dict:
        """Groups found by MH against α and against the number of landmarkers B (T > B kept), mean over orders."""
        from trautoml.grouping import make_grouper
        from trautoml.presets import get_preset

        p = get_preset(self.preset.engine_preset, **self.preset.overrides)

        def groups_for(alpha: float, b: int) -> float:
            counts = []
            for k, order in enumerate(orders):
                g = make_grouper("mh", alpha=alpha, gamma=p.gamma, K=p.K, sigma0_sq=p.sigma0_sq, seed=self.seed + k)
                labels = {g.observe(np.asarray(profiles[i].trials)[:, :b]).group for i in order}
                counts.append(len(labels))
            return float(np.mean(counts))

        n_models = np.asarray(profiles[0].trials).shape[1]
        n_trials = np.asarray(profiles[0].trials).shape[0]
        alphas = (0.001, 0.005, 0.01, 0.05, 0.1, 0.2)
        bs = [b for b in range(1, n_models + 1) if b < n_trials]
        return {"alpha": [(a, groups_for(a, n_models)) for a in alphas],
                "landmarkers": [(b, groups_for(p.alpha, b)) for b in bs]}


def _outcome(decision, name: str, family: str, solo: bool = False) -> Outcome:
    """A row's `Outcome` for dataset ``name`` (its name in the stream; the workspace may give it a readable one),
    from the Decision the product returned, charged measured seconds. ``solo``: the dataset was ingested into a
    workspace of its own (its group id means nothing across datasets)."""
    search = float(decision.trial_seconds) + float(decision.search_own_seconds)
    return Outcome(name, family, None if solo else decision.group, decision.outcome,
                   1.0 - decision.test_accuracy,
                   search, float(decision.train_seconds), float(decision.profile_seconds),
                   escalated=bool(decision.escalated))


def _curve(outcomes: Sequence[Outcome]) -> list[tuple[float, float]]:
    t, accs, pts = 0.0, [], []
    for o in outcomes:
        t += o.search_s + o.train_s + o.overhead_s
        accs.append(1.0 - o.test_error)
        pts.append((t, float(np.mean(accs))))
    return pts


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def run_bench(preset: str, backends: Sequence[str], orders: int | None, out: Path, workspace: Path, seed: int = 0,
              executor: str = "local", log: Callable[[str], None] | None = None, stream: str | None = None,
              methods: Sequence[str] = ALL_METHODS) -> dict:
    """Run the benchmark, write the report folder, return the results (``table`` keyed by method name).
    ``methods``: the rows to run (`ALL_METHODS` by default).

    ``stream``: any stream URI (``stream:NAME``, ``manifest:PATH``, ``folder-stream:DIR``) in place of the preset's
    own; the preset then only sets the budgets. Items without a family of their own count as their own family."""
    from trautoml.data import load_stream

    bench = StreamBench(preset, backends, orders, workspace, seed, executor, methods=methods, log=log)
    items = load_stream(stream or bench.preset.stream)
    if len(items) < 2:
        raise ValueError(f"a benchmark needs a stream of at least 2 datasets; {stream} has {len(items)}")
    results = bench.run(items)
    results["context"]["stream"] = stream or bench.preset.stream
    write_report(out, results["table"], results["context"], results["curves"], results["sweep"],
                 results["relative_errors"])
    results["run_id"] = log_to_mlflow(results, out, workspace)
    return results


def log_to_mlflow(results: dict, report_folder: Path, workspace: Path, tracking_uri: str | None = None) -> str:
    """One parent run (the report as artifacts, the context as params) with a child run per method (its metrics),
    in the experiment ``trautoml-bench`` of the workspace's store (or ``tracking_uri``)."""
    import os

    from trautoml.tracking import Tracker, workspace_tracking_uri
    from trautoml.workspace_store import ensure_store

    workspace = Path(workspace).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    artifacts = None
    if not uri:
        uri, artifacts = workspace_tracking_uri(workspace), (workspace / "mlruns").as_uri()
        ensure_store(workspace, artifacts, "trautoml-bench")
    tracker = Tracker(uri, artifact_location=artifacts, experiment="trautoml-bench")
    ctx = results["context"]
    parent = tracker.client.create_run(tracker.experiment_id, run_name=f"bench-{ctx['preset']}",
                                       tags={"trautoml.bench.preset": str(ctx["preset"])})
    pid = parent.info.run_id
    tracker._log_params(pid, ctx)
    for method, row in results["table"].items():
        child = tracker.client.create_run(tracker.experiment_id, run_name=method,
                                          tags={"mlflow.parentRunId": pid, "trautoml.bench.method": method})
        tracker._log_metrics(child.info.run_id, row)
        tracker.end_run(child.info.run_id)
    tracker.log_artifacts_dir(pid, Path(report_folder), "report")
    tracker.end_run(pid)
    return pid

