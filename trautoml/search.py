"""The one small interface every search backend implements (paper 002 §1 i: grouping is orthogonal to search).

A backend receives a ``SearchTask`` and returns a ``SearchResult``. It never trains a model itself unless its
algorithm needs to (ENAS's shared weights): it asks ``task.run_trials`` to train candidate specs, so that the
core can cache measured results, spread trials over an executor, and log every trial to MLflow.

These types belong to the core, which plug-in packages import (never the reverse); a backend is found by name in
`trautoml.registry.BACKENDS` (entry-point group ``trautoml.search_backends``).
"""
from __future__ import annotations

import abc
import dataclasses
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Sequence

from trautoml.data.dataset import Dataset
from trautoml.models.spec import ModelSpec


@dataclass(frozen=True)
class TrialRequest:
    """Train ``spec`` for ``resource`` epochs (fractions allowed) with ``seed``."""

    spec: ModelSpec
    resource: float
    seed: int = 0


@dataclass
class Trial:
    """One measured training of a spec: accuracies, wall seconds and training FLOPs (`trautoml.models.flops`;
    ``cached``: served from the workspace's cache, its seconds and FLOPs those measured when it ran);
    ``status="failed"`` with ``error`` when the training raised (its FLOPs then 0: what it did is unknown).
    ``flops`` is None only in a record stored before FLOPs were counted, until the trial runner counts it."""

    spec: ModelSpec
    resource: float
    seed: int
    val_accuracy: float
    test_accuracy: float
    wall_seconds: float
    status: str = "ok"            # ok | failed
    error: str | None = None
    cached: bool = False
    flops: float | None = None

    def to_dict(self) -> dict:
        """Plain JSON (the workspace's trial cache)."""
        return {"spec": self.spec.to_dict(), "resource": self.resource, "seed": self.seed,
                "val_accuracy": self.val_accuracy, "test_accuracy": self.test_accuracy,
                "wall_seconds": self.wall_seconds, "status": self.status, "error": self.error,
                "cached": self.cached, "flops": self.flops}

    @classmethod
    def from_dict(cls, d: dict) -> Trial:
        """The inverse of `to_dict` (keys it does not know, as a final training's ``start``, are left out)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known} | {"spec": ModelSpec.from_dict(d["spec"])})


@dataclass
class SearchBudget:
    """``max_trials`` full-budget-equivalent trainings, ``max_epochs`` (R) per trial, optional wall clock cap."""

    max_trials: int = 20
    max_epochs: float = 3.0
    min_epochs: float = 0.1
    max_seconds: float | None = None

    def trial_count(self) -> int:
        """``max_trials`` as an int; ValueError when it is below 1 (a search must train at least one model)."""
        n = int(self.max_trials)
        if n < 1:
            raise ValueError(f"budget.max_trials must be at least 1, got {self.max_trials!r}")
        return n


class SearchBudgetSpent(RuntimeError):
    """Raised by ``SearchTask.run_trials`` when a backend asks for trials after its budget is spent;
    `run_search` turns it into the result of the trials run so far."""


RunTrials = Callable[[Sequence[TrialRequest]], list[Trial]]


@dataclass
class SearchTask:
    """What a backend searches: a dataset, a budget, and ``run_trials`` to train candidates through the core.

    The budget is enforced here, once for every backend (as syne-tune's tuner enforces its stopping criterion):

    * seconds: the clock starts when the task is made. `out_of_time` is true once ``budget.max_seconds`` have
      passed and at least one trial has run (a search always returns a model); a backend asks it before each batch
      and stops. A batch requested after the backend was told, or a second one past the deadline, raises
      `SearchBudgetSpent`.
    * trials: a batch that would take the full-budget equivalents trained (each trial's epochs / ``max_epochs``)
      past ``max_trials`` raises `SearchBudgetSpent`; `trials_left` says how many remain.

    ``run_trials`` given to the constructor is the core's runner (cache, executor, logging); after construction the
    attribute is the budgeted call backends use. ``trials`` lists every trial run through it, in order.
    """

    dataset: Dataset
    budget: SearchBudget
    run_trials: RunTrials
    seed: int = 0
    #: Earlier models to start from (the group's model, the best models of earlier datasets, ...).
    warm_start: list[ModelSpec] = field(default_factory=list)
    #: Stable id of the task for backends that learn across tasks (the transfer controller: a task is a group).
    task_id: str | None = None
    #: A folder the backend may keep state in between searches (controller weights, Q-tables).
    state_dir: Path | None = None
    #: Called with a short message as the search progresses.
    progress: Callable[[str], None] = lambda msg: None

    def __post_init__(self):
        runner = self.run_trials
        if isinstance(runner, _BudgetedTrials):  # a task derived from another (dataclasses.replace) shares its budget
            self.run_trials, self.trials = runner, runner.trials
            self._budgeted = runner
            return
        self._budgeted = _BudgetedTrials(runner, self.budget)
        self.run_trials, self.trials = self._budgeted, self._budgeted.trials

    def rng(self) -> random.Random:
        """A generator seeded with the task's seed."""
        return random.Random(self.seed)

    def elapsed(self) -> float:
        """Seconds since the task was made."""
        return self._budgeted.elapsed()

    def seconds_left(self) -> float:
        """Seconds of ``budget.max_seconds`` left (infinite without a cap; negative once past it)."""
        return self._budgeted.seconds_left()

    def out_of_time(self) -> bool:
        """True once ``budget.max_seconds`` have passed and at least one trial has run: start no new batch."""
        return self._budgeted.out_of_time(tell=True)

    def trials_left(self) -> float:
        """Full-budget-equivalent trainings left of ``budget.max_trials``."""
        return self._budgeted.trials_left()


class _BudgetedTrials:
    """``SearchTask.run_trials``: the core's runner behind the task's time and trial budget."""

    def __init__(self, runner: RunTrials, budget: SearchBudget):
        self.runner, self.budget = runner, budget
        self.trials: list[Trial] = []
        self.start = time.monotonic()
        self.fbe_used = 0.0
        self.told = False          # the backend was told the time is spent
        self.late_batches = 0      # batches started past the deadline

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def seconds_left(self) -> float:
        cap = self.budget.max_seconds
        return float("inf") if cap is None else cap - self.elapsed()

    def out_of_time(self, tell: bool = False) -> bool:
        spent = bool(self.trials) and self.seconds_left() <= 0
        self.told = self.told or (spent and tell)
        return spent

    def trials_left(self) -> float:
        return self.budget.trial_count() - self.fbe_used

    def __call__(self, requests) -> list[Trial]:
        requests = list(requests)
        if self.out_of_time():
            if self.told or self.late_batches:
                raise SearchBudgetSpent(f"the search's {self.budget.max_seconds:g} s are spent "
                                        f"({self.elapsed():.1f} s, {len(self.trials)} trials)")
            self.late_batches += 1
        fbe = sum(float(r.resource) for r in requests) / float(self.budget.max_epochs)
        if self.fbe_used + fbe > self.budget.trial_count() + 1e-6:
            raise SearchBudgetSpent(f"the search asked for {self.fbe_used + fbe:.3g} full-budget trainings, more "
                                    f"than budget.max_trials = {self.budget.max_trials}")
        got = self.runner(requests)
        self.fbe_used += fbe
        self.trials.extend(got)
        return got


@dataclass
class SearchResult:
    """The best spec a search found, with every trial it ran.

    ``best_resource``: the epochs the best spec should be trained with for the final model; ``stopped_early``: the
    time budget ended the search before its plan did; ``seconds``: the search's wall seconds (set by `run_search`);
    ``info``: what else the backend reports about itself (JSON: its schedule, its cost accounting, ...)."""

    best: ModelSpec
    best_val_accuracy: float
    trials: list[Trial]
    best_resource: float
    info: dict = field(default_factory=dict)
    stopped_early: bool = False
    seconds: float = 0.0


class SearchBackend(abc.ABC):
    """Subclass, set ``name``, implement ``search``; register via the ``trautoml.search_backends`` entry points (or
    ``trautoml.registry.BACKENDS.register``)."""

    name: str = "abstract"

    @abc.abstractmethod
    def search(self, task: SearchTask) -> SearchResult:
        """Search ``task.dataset`` within ``task.budget``: train candidates through ``task.run_trials`` (asking
        ``task.out_of_time()`` between batches) and return the best as a `SearchResult`."""


def run_search(backend: SearchBackend, task: SearchTask) -> SearchResult:
    """``backend.search(task)``, with the budget enforced: a backend stopped by `SearchBudgetSpent` returns the best
    of the trials it ran (``stopped_early``, and ``info["stopped_by_budget"]`` says why), its other state as it left
    it. The result's ``seconds`` are the task's."""
    try:
        result = backend.search(task)
    except SearchBudgetSpent as exc:
        best = best_of(task.trials)
        result = SearchResult(best=best.spec, best_val_accuracy=best.val_accuracy, trials=list(task.trials),
                              best_resource=best.resource, stopped_early=True,
                              info={"backend": getattr(backend, "name", type(backend).__name__),
                                    "stopped_by_budget": str(exc)})
    result.seconds = task.elapsed()
    return result


def best_of(trials: Sequence[Trial]) -> Trial:
    """Highest validation accuracy among successful trials, ties broken by the larger resource."""
    ok = [t for t in trials if t.status == "ok"]
    if not ok:
        raise RuntimeError("every trial of the search failed; see the trial errors in the run")
    return max(ok, key=lambda t: (t.val_accuracy, t.resource))


__all__ = ["RunTrials", "SearchBackend", "SearchBudget", "SearchBudgetSpent", "SearchResult", "SearchTask", "Trial",
           "TrialRequest", "best_of", "run_search"]
