"""The one small interface every search backend implements (paper 002 §1 i: grouping is orthogonal to search).

A backend receives a ``SearchTask`` and returns a ``SearchResult``. It never trains a model itself unless its
algorithm needs to (ENAS's shared weights): it asks ``task.run_trials`` to train candidate specs, so that the
core can cache measured results, spread trials over an executor, and log every trial to MLflow.

These types belong to the core, which plug-in packages import (never the reverse); a backend is found by name in
`trautoml.registry.BACKENDS` (entry-point group ``trautoml.search_backends``).
"""
from __future__ import annotations

import abc
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

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
    """One measured training of a spec: accuracies and wall seconds (``cached``: served from the workspace's
    cache, its seconds those measured when it ran); ``status="failed"`` with ``error`` when the training raised."""

    spec: ModelSpec
    resource: float
    seed: int
    val_accuracy: float
    test_accuracy: float
    wall_seconds: float
    status: str = "ok"            # ok | failed
    error: str | None = None
    cached: bool = False

    def to_dict(self) -> dict:
        """Plain JSON (the workspace's trial cache)."""
        return {"spec": self.spec.to_dict(), "resource": self.resource, "seed": self.seed,
                "val_accuracy": self.val_accuracy, "test_accuracy": self.test_accuracy,
                "wall_seconds": self.wall_seconds, "status": self.status, "error": self.error,
                "cached": self.cached}

    @classmethod
    def from_dict(cls, d: dict) -> "Trial":
        """The inverse of `to_dict`."""
        return cls(**{**d, "spec": ModelSpec.from_dict(d["spec"])})


@dataclass
class SearchBudget:
    """``max_trials`` full-budget-equivalent trainings, ``max_epochs`` (R) per trial, optional wall clock cap."""

    max_trials: int = 20
    max_epochs: float = 3.0
    min_epochs: float = 0.1
    max_seconds: float | None = None


RunTrials = Callable[[Sequence[TrialRequest]], list[Trial]]


@dataclass
class SearchTask:
    """What a backend searches: a dataset, a budget, and ``run_trials`` to train candidates through the core."""

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

    def rng(self) -> random.Random:
        """A generator seeded with the task's seed."""
        return random.Random(self.seed)


@dataclass
class SearchResult:
    """The best spec a search found, with every trial it ran."""

    best: ModelSpec
    best_val_accuracy: float
    trials: list[Trial]
    #: The resource (epochs) the best spec should be trained with for the final model.
    best_resource: float
    info: dict = field(default_factory=dict)


class SearchBackend(abc.ABC):
    """Subclass, set ``name``, implement ``search``; register via the ``trautoml.search_backends`` entry points (or
    ``trautoml.registry.BACKENDS.register``)."""

    name: str = "abstract"

    @abc.abstractmethod
    def search(self, task: SearchTask) -> SearchResult: ...


def best_of(trials: Sequence[Trial]) -> Trial:
    """Highest validation accuracy among successful trials, ties broken by the larger resource."""
    ok = [t for t in trials if t.status == "ok"]
    if not ok:
        raise RuntimeError("every trial of the search failed; see the trial errors in the run")
    return max(ok, key=lambda t: (t.val_accuracy, t.resource))


__all__ = ["RunTrials", "SearchBackend", "SearchBudget", "SearchResult", "SearchTask", "Trial", "TrialRequest",
           "best_of"]
