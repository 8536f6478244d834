"""Hyperband (Li et al. 2017, JMLR; paper 002 §3.2): successive halving over brackets of decreasing exploration.

Schedule (`brackets`): s_max is the largest integer s with eta**s <= R, found with integer arithmetic
(``floor(log(R) / log(eta))`` in floating point drops a bracket for R = 243, eta = 3). Bracket s starts
n = ceil((s_max + 1) * eta**s / (s + 1)) configurations at r = R * eta**-s; each rung keeps the best
floor(n_i / eta) and multiplies the resource by eta, up to R. R = 81, eta = 3 gives 81@1, 34@3, 15@9, 8@27, 5@81.

In trautoml (`Hyperband.search`):

- Resource unit: epochs. R = round(budget.max_epochs / budget.min_epochs) unless given, and a resource of r units
  trains r * budget.max_epochs / R epochs, so the top rung is exactly ``max_epochs`` (≈ r * min_epochs), the
  same full training random search gives a trial. Promoted configurations are retrained from scratch at the
  larger resource (one ``task.run_trials`` batch per rung).
- Trial budget: ``budget.max_trials`` counts full-budget-equivalent trainings (SearchBudget's contract), i.e. the
  epochs of all trials together stay within max_trials * max_epochs. Brackets run from the most exploratory one
  down (and round again from s_max while budget remains, as in the paper's repeated outer loop). A bracket that
  does not fit the remaining budget is shrunk: its n becomes the largest count that fits and still leaves one
  configuration at the top rung (n >= eta**s); where none does, the next, less exploratory bracket is tried. Planning
  stops when less than one full training is left. So a small budget runs fewer, smaller brackets: max_trials=1
  is a single configuration trained at R, max_trials=3 with eta=3 is 9 configurations at R/9 → 3 at R/3 → 1 at
  R. The number of configurations can therefore exceed max_trials; `plan_brackets` gives the exact plan.
- Warm-start specs are the first configurations drawn, so they fill the first bracket's initial rung (and spill
  into the following brackets if there are more of them than it holds).
- ``budget.max_seconds``: no new rung starts once it is exceeded (the first rung always runs).
- Ranking: validation accuracy; failed trials rank last; ties keep the earlier configuration.
- Result: the best trial at the largest resource any trial reached (normally the top rung, R), not a possibly
  higher score at a smaller, incomparable resource. ``best_resource`` is ``budget.max_epochs``.
"""
from __future__ import annotations


from .base import SearchBackend, SearchResult, SearchTask, Trial, TrialRequest, best_of
from .random_search import Sampler, SpecStream, space_sampler

Rungs = list[tuple[int, float]]


def s_max_of(R: int, eta: int) -> int:
    """Largest integer s with eta**s <= R, in exact integer arithmetic."""
    s = 0
    while eta ** (s + 1) <= R:
        s += 1
    return s


def _check(R: int, eta: int) -> tuple[int, int]:
    if isinstance(R, bool) or int(R) != R or R < 1:
        raise ValueError(f"R must be a positive integer, got {R!r}")
    if isinstance(eta, bool) or int(eta) != eta or eta < 2:
        raise ValueError(f"eta must be an integer >= 2, got {eta!r}")
    return int(R), int(eta)


def bracket_rungs(n: int, s: int, R: int, eta: int) -> Rungs:
    """Successive halving from n configurations at R * eta**-s: rung i has floor(n / eta**i) at R * eta**(i-s)."""
    return [(n // eta ** i, R * eta ** i / eta ** s) for i in range(s + 1)]


def bracket_n(s: int, s_max: int, eta: int) -> int:
    """Configurations bracket ``s`` starts with: ceil((s_max + 1) * eta**s / (s + 1))."""
    return -(-(s_max + 1) * eta ** s // (s + 1))  # ceil in integers


def brackets(R: int, eta: int = 3) -> list[Rungs]:
    """Hyperband's full schedule, most exploratory bracket first: each a list of (n_configs, resource) rungs."""
    R, eta = _check(R, eta)
    s_max = s_max_of(R, eta)
    return [bracket_rungs(bracket_n(s, s_max, eta), s, R, eta) for s in range(s_max, -1, -1)]


def bracket_cost(rungs: Rungs, R: int) -> float:
    """Resource of a bracket in full-budget equivalents (trainings at R)."""
    return sum(n * r for n, r in rungs) / R


def plan_brackets(R: int, eta: int, max_fbe: float) -> list[Rungs]:
    """The brackets `Hyperband.search` runs for a budget of ``max_fbe`` full-budget-equivalent trainings."""
    R, eta = _check(R, eta)
    s_max = s_max_of(R, eta)
    plan: list[Rungs] = []
    left, s = float(max_fbe), s_max
    while left >= 1 - 1e-9:
        fits = [n for n in range(bracket_n(s, s_max, eta), eta ** s - 1, -1)
                if bracket_cost(bracket_rungs(n, s, R, eta), R) <= left + 1e-9]
        if not fits:  # not even eta**s configurations fit: try a less exploratory bracket (s = 0 always fits)
            s -= 1
            continue
        plan.append(bracket_rungs(fits[0], s, R, eta))
        left -= bracket_cost(plan[-1], R)
        s = s - 1 if s > 0 else s_max
    return plan


def _ranked(trials: list[Trial]) -> list[Trial]:
    return sorted(trials, key=lambda t: (t.status != "ok", -t.val_accuracy))  # stable: ties keep order


class Hyperband(SearchBackend):
    """Hyperband (module docstring) over ``space`` (a model-space name or a sampler ``rng -> ModelSpec``), keeping the
    best 1/``eta`` of each rung; ``R``: resource levels in a full training (default: ``budget.max_epochs /
    budget.min_epochs``, rounded)."""

    name = "hyperband"

    #: Searches any sampler given as ``space`` (the predefined mechanism wraps it around a head sampler).
    samples_any_space = True

    def __init__(self, eta: int = 3, space: str | Sampler = "cnn", R: int | None = None):
        _check(R if R is not None else 1, eta)
        self.eta, self.R = int(eta), R
        self.sample = space_sampler(space)
        self.space = space if isinstance(space, str) else getattr(space, "__name__", "custom")

    def resource_levels(self, max_epochs: float, min_epochs: float) -> int:
        """R: the number of smallest resource units in a full training."""
        if self.R is not None:
            return int(self.R)
        if min_epochs <= 0 or max_epochs <= 0:
            raise ValueError(f"budget epochs must be positive, got max={max_epochs}, min={min_epochs}")
        return max(1, round(max_epochs / min_epochs))

    def search(self, task: SearchTask) -> SearchResult:
        budget = task.budget
        max_fbe = budget.trial_count()
        R = self.resource_levels(budget.max_epochs, budget.min_epochs)
        unit = budget.max_epochs / R
        plan = plan_brackets(R, self.eta, max_fbe)
        stream = SpecStream(self.sample, task.rng(), task.warm_start)
        trials: list[Trial] = []
        brackets_run, stopped_early = 0, False
        for b, rungs in enumerate(plan):
            configs = stream.take(rungs[0][0])
            if not configs:
                break  # the space is exhausted
            results: list[Trial] = []  # the previous rung's trials
            for i, (n_i, r_i) in enumerate(rungs):
                if task.out_of_time():
                    stopped_early = True
                    break
                if i > 0:
                    # the plan's n_i, or floor(n/eta) of what ran when the space gave fewer configurations
                    keep = min(n_i, max(1, len(results) // self.eta))
                    configs = [t.spec for t in _ranked(results)[:keep]]
                results = task.run_trials([TrialRequest(spec, r_i * unit, task.seed) for spec in configs])
                trials += results
                top = _ranked(results)[0]
                task.progress(f"hyperband: bracket {b + 1}/{len(plan)} rung {i + 1}/{len(rungs)}: "
                              f"{len(configs)} configs at {r_i * unit:.3g} epochs, best val {top.val_accuracy:.4f}")
            if stopped_early:
                break
            brackets_run += 1
        ok = [t for t in trials if t.status == "ok"]
        top_resource = max((t.resource for t in ok), default=0.0)
        best = best_of([t for t in ok if t.resource >= top_resource * (1 - 1e-9)] or trials)
        return SearchResult(best=best.spec, best_val_accuracy=best.val_accuracy, trials=trials,
                            best_resource=budget.max_epochs, stopped_early=stopped_early,
                            info={"backend": self.name, "space": self.space, "R": R, "eta": self.eta,
                                  "unit_epochs": unit, "brackets_planned": len(plan), "brackets_run": brackets_run,
                                  "configs": len({t.spec for t in trials}),
                                  "fbe_used": sum(t.resource for t in trials) / budget.max_epochs,
                                  "best_resource_reached": top_resource})
