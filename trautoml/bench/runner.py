"""The paper's Table 2 protocol (002 §3.1–3.2), every method on the same stream in one run, each method being the
product itself: a `TrAutoML` with that method's options ingesting the stream in that order (tracking off).

Methods, each combined with each search backend ``B`` (their rules; none is a fixed cut of the search budget):

* ``standalone+B``: ``grouper="none"``, each dataset in a workspace of its own: every dataset searched from
  scratch, no backend state carried from one to the next, at K seeds (``reference_seeds``, 3 at ``ci``). The
  reference e*_i of TRE is the mean of the K seeds' test errors, and the reference cost the mean of their costs;
  the row itself reports its K seeds as its "orders" (no row's relative error is zero by construction). The
  noise band is what one seed scores against the mean of the others: the standalone row's TRE interval;
* ``oracle+B``: the true families given (grouper ``given``), profiles not charged: the best any grouping can do
  under the same decision rule. Beside ``random`` it says whether the stream can tell groupings apart at all;
* ``warmstart+B`` (Lindauer & Hutter 2018): ``grouper="none", warm_start="latest"``: every search first trains
  the models of the 3 latest earlier datasets, within its own budget;
* ``metalearn+B`` (Feurer et al. 2015): ``grouper="none", warm_start="metafeatures"``: the same with the 3 nearest
  earlier datasets by statistical meta-features;
* ``random+B``, ``kmeans+B`` (given the true number of families), ``seq-kmeans+B``, ``mh+B``: trautoml's decision
  rule over each grouping: a dataset that founds a group is searched (seeded with the nearest group's model), one
  that joins reuses the group's model, fine-tuned from a member's weights, unless the accuracy guard
  (`trautoml.decide`) refuses the reuse and escalates to a search; ``mh`` is the default pipeline;
* ``mh-cold+B``: the default pipeline with cold founders' searches (no seed from the nearest group): what the
  founders' warm start changes;
* ``mh-retrain+B``: the default pipeline with the paper's reuse (weights trained afresh for the full epochs) and
  cold founders' searches: what fine-tuning and the founders' warm start change;
* ``mh-paper+B``: the paper's MH as published: plain reuse (weights afresh, no accuracy guard, cold founders), the
  guard's unpaired test, the group covariance with the members' single-trial covariance (``trial_cov="trial"``),
  whole profiles (no first look);
* ``peer-zeroshot``, a peer from outside, once, whatever the backends: ``grouper="none"`` with the search backend
  ``synetune-zeroshot`` (syne-tune's ``ZeroShotTransfer`` fed the earlier datasets' evaluations; see
  ``search_backends.synetune_zeroshot``), the same budget, measured against the first backend's standalone. It
  runs where the ``peers`` extra is installed; elsewhere the report says it was left out and why.

Costs are measured once and charged in every row and order that meets them: all rows share one cache of profiles,
meta-features, search trials and final trainings (by dataset content, spec, budget and seed). The cost is counted
in training FLOPs (`Outcome.cost`), which the machine's load cannot move; wall seconds, charged as each cached item
took when it was measured, are kept beside it as a second ratio. Every number comes with a 95 % bootstrap interval
over datasets and orders, and a row beats another only where the paired interval of their difference says so
(`trautoml.bench.intervals`).
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

from trautoml.bench.intervals import (Interval, paired_ratio_difference, paired_tre_difference,
                                      ratio_interval, tre_interval)
from trautoml.bench.metrics import Outcome, aggregate, relative_errors, summarise_order
from trautoml.bench.report import write_report
from trautoml.decide import ReuseCheck

if TYPE_CHECKING:
    from trautoml.executor import Executor

GROUPING_METHODS = ("random", "kmeans", "seq-kmeans", "mh", "mh-cold", "mh-retrain", "mh-paper")
#: Methods that bring their own search backend (a peer from outside), run once against the first backend.
PEER_METHODS = {"peer-zeroshot": "synetune-zeroshot"}
ALL_METHODS = ("standalone", "oracle", "warmstart", "metalearn", *GROUPING_METHODS, *PEER_METHODS)
#: Methods whose datasets are each searched alone (a workspace per dataset): their outcome does not depend on order.
SOLO_METHODS = ("standalone",)
#: The product options of each method (see the module docstring).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "standalone": dict(grouper="none"),
    "oracle": dict(grouper="given"),
    "warmstart": dict(grouper="none", warm_start="latest"),
    "metalearn": dict(grouper="none", warm_start="metafeatures"),
    "random": dict(grouper="random"),
    "kmeans": dict(grouper="kmeans"),
    "seq-kmeans": dict(grouper="seq-kmeans"),
    "mh": dict(grouper="mh"),
    "mh-cold": dict(grouper="mh", founder_warm_k=0),
    "mh-retrain": dict(grouper="mh", reuse="retrain", founder_warm_k=0),
    "mh-paper": dict(grouper="mh", reuse="retrain", founder_warm_k=0, reuse_tolerance=None,
                     grouper_options={"trial_cov": "trial", "paired": False, "first_look": None}),
    "peer-zeroshot": dict(grouper="none", founder_warm_k=0),   # the peer's search as it is, no seeds of ours
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
    ``trautoml.presets``) and its field ``overrides``, how many random stream ``orders`` it averages over and how
    many standalone seeds make the reference (``reference_seeds``)."""
    name: str
    stream: str
    engine_preset: str
    orders: int
    overrides: dict = field(default_factory=dict)
    reference_seeds: int = 3


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
    every order: an ablation of the default pipeline's parts (``bench/bench_mh_ablation.py``). ``budget_scale``:
    every search's budget (the preset's ``search_trials``, full-budget-equivalent trainings) times this; profiles
    and final trainings keep theirs, so a larger scale moves the stream toward the paper's regime, where a search
    costs hundreds of profiles."""

    def __init__(self, preset: str = "ci", backends: Sequence[str] = ("hyperband",), orders: int | None = None,
                 workspace: Path | str = "bench-workspace", seed: int = 0, executor: str = "local",
                 methods: Sequence[str] = ALL_METHODS, quiet: bool = False,
                 log: Callable[[str], None] | None = None, variants: dict[str, dict] | None = None,
                 reference_seeds: int | None = None, budget_scale: float = 1.0):
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
        self.reference_seeds = reference_seeds or self.preset.reference_seeds
        if not budget_scale > 0:
            raise ValueError(f"budget_scale must be > 0, got {budget_scale}")
        self.budget_scale = float(budget_scale)
        if self.reference_seeds < 1:
            raise ValueError(f"reference_seeds must be >= 1, got {self.reference_seeds}")
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
                        **options, **self.overrides())

    def overrides(self) -> dict:
        """The preset's overrides with the search budget scaled by ``budget_scale``."""
        from trautoml.presets import get_preset

        out = dict(self.preset.overrides)
        if self.budget_scale != 1.0:
            base = out.get("search_trials") or get_preset(self.preset.engine_preset).search_trials
            out["search_trials"] = max(1, round(base * self.budget_scale))
        return out

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
        self.log(f"bench: {len(datasets)} datasets, {self.orders} orders, backends {', '.join(self.backends)}, "
                 f"{self.reference_seeds} standalone seeds")
        rng = np.random.default_rng(self.seed)
        orders = [rng.permutation(len(datasets)) for _ in range(self.orders)]

        table: dict[str, dict] = {}
        curves: dict[str, list[tuple[float, float]]] = {}
        per_dataset: dict[str, dict[str, float]] = {}
        matrices: dict[str, dict[str, np.ndarray]] = {}
        left_out: dict[str, str] = {}
        references: dict[str, Reference] = {}
        for backend in self.backends:
            ref = references[backend] = self._reference(backend, datasets, families, runs)
            for method in self.methods:
                if method in PEER_METHODS:
                    continue
                row = f"{method}+{backend}"
                table[row], curves[row], per_dataset[row], matrices[row] = self._row(
                    row, method, backend, ref, orders, datasets, families, runs)
        first = references[self.backends[0]]
        for method in [m for m in self.methods if m in PEER_METHODS]:
            why = peer_unavailable(method)
            if why:
                left_out[method] = why
                self.log(f"{method}: left out: {why}")
                continue
            table[method], curves[method], per_dataset[method], matrices[method] = self._row(
                method, method, PEER_METHODS[method], first, orders, datasets, families, runs)
        sweep = self._sweeps(self._profiles(datasets, runs), orders)
        context = {"machine": f"{platform.machine()}, {_cores()} cores, {platform.python_implementation()} "
                              f"{platform.python_version()}",
                   "date": _dt.date.today().isoformat(), "preset": self.preset.name,
                   "stream": self.preset.stream,
                   "datasets": len(datasets), "families": len(set(families)), "orders": self.orders,
                   "reference_seeds": self.reference_seeds, "budget_scale": self.budget_scale,
                   "search_trials": self.overrides().get("search_trials"),
                   "seed": self.seed, "reference_backend": self.backends[0],
                   **({"left_out": "; ".join(f"{m}: {w}" for m, w in left_out.items())} if left_out else {}),
                   "wall_seconds": time.perf_counter() - t_start}
        count_guard_misses(table, matrices, self.backends)
        verdicts = compare_rows(table, matrices, references, self.backends)
        return {"table": table, "curves": curves, "sweep": sweep, "context": context,
                "relative_errors": per_dataset, "verdicts": verdicts}

    def _reference(self, backend: str, datasets, families, runs: Path) -> Reference:
        """Standalone at ``reference_seeds`` seeds: each dataset searched alone, in a workspace of its own."""
        seeds = []
        for k in range(self.reference_seeds):
            out = []
            for i, ds in enumerate(datasets):
                self.log(f"standalone {backend} seed {self.seed + k}: {ds.name}")
                t = self.product(runs / f"standalone+{backend}" / f"seed{k}" / f"dataset{i}", backend,
                                 seed=self.seed + k, **METHOD_OPTIONS["standalone"])
                try:
                    out.append(_outcome(t.ingest(ds), ds.name, families[i], solo=True))
                finally:
                    t.close()
            seeds.append(out)
        return Reference(seeds)

    def _row(self, row: str, method: str, backend: str, ref: Reference, orders, datasets, families,
             runs: Path) -> tuple[dict, list, dict, dict]:
        """One row of the table, ``method`` with ``backend`` over every order (standalone: over its seeds): its
        aggregate with intervals, its accuracy curve over the first order, each dataset's relative error (mean over
        orders), and its orders × datasets matrices (relative error, cost, seconds) for the comparisons."""
        names = [d.name for d in datasets]
        column = {n: j for j, n in enumerate(names)}
        if method in SOLO_METHODS:
            runs_of_row = ref.seeds
        else:
            runs_of_row = []
            for k, order in enumerate(orders):
                self.log(f"{row}: order {k + 1}/{len(orders)}")
                runs_of_row.append(self._run_order(method, backend, order, datasets, families,
                                                   runs / row / f"order{k}", k))
        per_order, curve = [], []
        rel = np.zeros((len(runs_of_row), len(names)))
        cost, secs, stood = np.zeros_like(rel), np.zeros_like(rel), np.zeros_like(rel, dtype=bool)
        for k, outcomes in enumerate(runs_of_row):
            # a standalone seed is judged against the mean of the other seeds (against all of them, itself
            # included, the row's TRE would be 0 by construction); every other row against the mean of all
            reference = ref.errors_by_name(names, leave_out=k if method in SOLO_METHODS else None)
            per_order.append(summarise_order(outcomes, reference))
            for o in outcomes:
                j = column[o.dataset]
                rel[k, j] = relative_errors([o.test_error], [reference[o.dataset]])[0]
                cost[k, j], secs[k, j] = o.cost, o.search_s + o.train_s + o.overhead_s
                stood[k, j] = o.guard_stood
            if k == 0:
                curve = _curve(outcomes)
        summary = aggregate(per_order, float(ref.seconds.sum()))
        summary.update(tre_ci=tre_interval(rel).to_dict(), time_ratio_ci=ratio_interval(secs, ref.seconds).to_dict())
        if (ref.cost > 0).all():
            summary.update(cost_ratio_vs_standalone=float((cost.sum(axis=1) / ref.cost.sum()).mean()),
                           cost_ratio_ci=ratio_interval(cost, ref.cost).to_dict())
        return summary, curve, dict(zip(names, rel.mean(axis=0).tolist())), {"rel": rel, "cost": cost, "secs": secs,
                                                                             "stood": stood}

    def _run_order(self, method, backend, order, datasets, families, folder: Path, k: int) -> list[Outcome]:
        options = dict(self.variants[method] if method in self.variants else METHOD_OPTIONS[method])
        if options.get("grouper") in ("random", "mh"):  # their own randomness differs from order to order
            options["grouper_options"] = {**options.get("grouper_options", {}), "seed": self.seed + k}
        if method == "kmeans":
            options["grouper_options"] = {"k": len(set(families)), "seed": self.seed + k}
        free_profiles = options.get("grouper") == "given"   # the oracle: the true families, its profiles free
        if free_profiles:
            options["grouper_options"] = {"labels": [families[i] for i in order]}
        t = self.product(folder, backend, **options)
        try:
            return [_outcome(t.ingest(datasets[i]), datasets[i].name, families[i], free_profiles=free_profiles)
                    for i in order]
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


class Reference:
    """The standalone reference: ``seeds``, K lists of `Outcome` (one per seed, datasets in stream order). Per
    dataset its mean test error (e*), mean cost and mean seconds over the seeds."""

    def __init__(self, seeds: list[list[Outcome]]):
        self.seeds = seeds
        self.names = [o.dataset for o in seeds[0]]
        self.errors = np.array([[o.test_error for o in s] for s in seeds])          # K × datasets
        self.cost = np.array([[o.cost for o in s] for s in seeds]).mean(axis=0)
        self.seconds = np.array([[o.search_s + o.train_s + o.overhead_s for o in s] for s in seeds]).mean(axis=0)

    def errors_by_name(self, names: Sequence[str], leave_out: int | None = None) -> dict[str, float]:
        """Dataset name → e*, the mean of the seeds' test errors (without seed ``leave_out``, when there are others:
        what that seed is judged against)."""
        keep = [k for k in range(len(self.seeds)) if k != leave_out] or list(range(len(self.seeds)))
        mean = dict(zip(self.names, self.errors[keep].mean(axis=0).tolist()))
        return {n: mean[n] for n in names}


def count_guard_misses(table: dict[str, dict], matrices: dict[str, dict], backends: Sequence[str]) -> None:
    """Each row's ``guard_misses``: per order, the reuses the accuracy guard judged and let stand that ended further
    above their dataset's reference error than any standalone seed did (that dataset's own noise band: the largest
    relative error a seed scores against the mean of the others), mean over orders. What the guard should have
    caught. Not counted with fewer than 2 standalone seeds (no band) nor where the guard is off or waiting."""
    for backend in backends:
        solo = matrices.get(f"standalone+{backend}")
        if solo is None or len(solo["rel"]) < 2:
            continue
        band = solo["rel"].max(axis=0)
        for row, m in matrices.items():
            if row.endswith(f"+{backend}") or (backend == backends[0] and "+" not in row):
                table[row]["guard_misses"] = float((m["stood"] & (m["rel"] > band)).sum(axis=1).mean())


def compare_rows(table: dict[str, dict], matrices: dict[str, dict], references: dict[str, Reference],
                 backends: Sequence[str]) -> list[str]:
    """The report's verdicts, each backed by an interval: the noise band; whether the stream can tell groupings
    apart (oracle's and random's TRE intervals disjoint); each row's cost against standalone; and MH against every
    other row, on cost and on TRE, by the paired interval of the difference (`trautoml.bench.intervals`)."""
    lines = []
    for backend in backends:
        ref = references[backend]
        if len(ref.seeds) > 1 and f"standalone+{backend}" in table:
            # the standalone row judges each seed against the mean of the others: its TRE interval is the band
            solo = table[f"standalone+{backend}"]
            band = Interval(**solo["tre_ci"])
            solo["noise_band"] = band.to_dict()
            lines.append(f"noise band ({backend}): a standalone seed scores TRE {band} against the mean of the "
                         "others; a TRE inside it is what a second search of the same datasets gives")
        oracle, random = table.get(f"oracle+{backend}"), table.get(f"random+{backend}")
        if oracle and random:
            o, r = (Interval(**row["tre_ci"]) for row in (oracle, random))
            if o.disjoint(r):
                lines.append(f"the stream tells groupings apart ({backend}): oracle TRE {o} vs random {r}")
            else:
                lines.append(f"the stream CANNOT tell groupings apart ({backend}): oracle TRE {o} and random {r} "
                             "overlap: on this stream at this budget any searched model serves any dataset, so no "
                             "TRE difference between groupings means anything here")
        for row, summary in table.items():
            if not row.endswith(f"+{backend}") or "cost_ratio_ci" not in summary:
                continue
            ci = Interval(**summary["cost_ratio_ci"])
            verdict = "cheaper than" if ci.high < 1 else "dearer than" if ci.low > 1 else "no cheaper than"
            lines.append(f"{row}: cost {ci} × standalone: {verdict} standalone")
        mh = matrices.get(f"mh+{backend}")
        if mh is None:
            continue
        for row, m in matrices.items():
            if row == f"mh+{backend}" or not row.endswith(f"+{backend}"):
                continue
            said = []
            tre = paired_tre_difference(mh["rel"], m["rel"])
            if tre.high < 0:
                said.append(f"lower TRE (difference {tre})")
            elif tre.low > 0:
                said.append(f"higher TRE (difference {tre})")
            if (ref.cost > 0).all():
                cost = paired_ratio_difference(mh["cost"], m["cost"], ref.cost)
                if cost.high < 0:
                    said.append(f"cheaper (cost ratio difference {cost})")
                elif cost.low > 0:
                    said.append(f"dearer (cost ratio difference {cost})")
            lines.append(f"mh+{backend} vs {row}: " + ("; ".join(said) or "no difference the intervals support"))
    return lines


def _outcome(decision, name: str, family: str, solo: bool = False, free_profiles: bool = False) -> Outcome:
    """A row's `Outcome` for dataset ``name`` (its name in the stream; the workspace may give it a readable one),
    from the Decision the product returned, charged its FLOPs and measured seconds. ``solo``: the dataset was
    ingested into a workspace of its own (its group id means nothing across datasets); ``free_profiles``: the
    profile is not charged (the oracle's)."""
    search = float(decision.trial_seconds) + float(decision.search_own_seconds)
    profile_s = 0.0 if free_profiles else float(decision.profile_seconds)
    profile_flops = 0.0 if free_profiles else float(decision.profile_flops)
    return Outcome(name, family, None if solo else decision.group, decision.outcome,
                   1.0 - decision.test_accuracy,
                   search, float(decision.train_seconds), profile_s,
                   escalated=bool(decision.escalated),
                   cost=float(decision.search_flops) + float(decision.train_flops) + profile_flops,
                   overhead_cost=profile_flops, warm_won=bool(decision.search.get("warm_start_won")),
                   guard_stood=decision.outcome == "reused" and decision.reuse_check is not None
                   and ReuseCheck.from_dict(decision.reuse_check).verdict == "stood")


def _curve(outcomes: Sequence[Outcome]) -> list[tuple[float, float]]:
    """(cumulative cost in FLOPs, mean test accuracy so far) along the stream."""
    t, accs, pts = 0.0, [], []
    for o in outcomes:
        t += o.cost
        accs.append(1.0 - o.test_error)
        pts.append((t, float(np.mean(accs))))
    return pts


def _flat(row: dict) -> dict:
    """A table row as MLflow metrics: an interval ``KEY`` becomes ``KEY_low`` and ``KEY_high``."""
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update({f"{k}_low": v["low"], f"{k}_high": v["high"]})
        else:
            out[k] = v
    return out


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def run_bench(preset: str, backends: Sequence[str], orders: int | None, out: Path, workspace: Path, seed: int = 0,
              executor: str = "local", log: Callable[[str], None] | None = None, stream: str | None = None,
              methods: Sequence[str] = ALL_METHODS, reference_seeds: int | None = None,
              budget_scales: Sequence[float] = (1.0,)) -> dict:
    """Run the benchmark, write the report folder, return the results (``table`` keyed by method name).
    ``methods``: the rows to run (`ALL_METHODS` by default); ``reference_seeds``: standalone seeds in the reference
    (the preset's by default).

    ``budget_scales``: run the whole benchmark once per search-budget scale (`StreamBench`'s ``budget_scale``; all
    share one cache, so profiles are measured once). The first scale's report is ``out/report.md`` and its results
    are returned; with more than one, each scale's report goes to ``out/budget-xS/`` and ``out/budget.md`` with
    ``cost_vs_budget.png`` shows each row's cost ratio against the search budget (``results["budget_sweep"]``).

    ``stream``: any stream URI (``stream:NAME``, ``manifest:PATH``, ``folder-stream:DIR``) in place of the preset's
    own; the preset then only sets the budgets. Items without a family of their own count as their own family."""
    from trautoml.bench.report import write_budget_sweep
    from trautoml.data import load_stream

    scales = list(budget_scales) or [1.0]
    sweep: dict[float, dict] = {}
    main: dict | None = None
    for k, scale in enumerate(scales):
        bench = StreamBench(preset, backends, orders, workspace, seed, executor, methods=methods, log=log,
                            reference_seeds=reference_seeds, budget_scale=scale)
        items = load_stream(stream or bench.preset.stream)
        if len(items) < 2:
            raise ValueError(f"a benchmark needs a stream of at least 2 datasets; {stream} has {len(items)}")
        results = bench.run(items)
        results["context"]["stream"] = stream or bench.preset.stream
        folder = out if k == 0 else out / f"budget-x{scale:g}"
        write_report(folder, results["table"], results["context"], results["curves"], results["sweep"],
                     results["relative_errors"], results["verdicts"])
        sweep[scale] = {"search_trials": results["context"]["search_trials"], "table": results["table"],
                        "verdicts": results["verdicts"]}
        main = main or results
    assert main is not None
    if len(scales) > 1:
        write_budget_sweep(out, sweep)
        main["budget_sweep"] = sweep
    main["run_id"] = log_to_mlflow(main, out, workspace)
    return main


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
        tracker._log_metrics(child.info.run_id, _flat(row))
        tracker.end_run(child.info.run_id)
    tracker.log_artifacts_dir(pid, Path(report_folder), "report")
    tracker.end_run(pid)
    return pid

