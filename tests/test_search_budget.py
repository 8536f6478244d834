"""The search budget is enforced once, by the task every backend searches (`trautoml.search.SearchTask`)."""
from __future__ import annotations

import dataclasses
import time

import pytest

from trautoml.models.spec import ModelSpec
from trautoml.registry import BACKENDS
from trautoml.search import (SearchBackend, SearchBudget, SearchBudgetSpent, SearchResult, SearchTask, TrialRequest,
                             best_of, run_search)
from trautoml.testing import FakeTrials, tiny_dataset


def spec(i: int) -> ModelSpec:
    return ModelSpec("mlp", {"hidden": [i + 1]})


class Greedy(SearchBackend):
    """A backend that never asks about its budget: it requests batches of ``size`` until stopped."""

    name = "greedy"

    def __init__(self, size: int = 1, resource: float = 1.0, pause: float = 0.0):
        self.size, self.resource, self.pause = size, resource, pause

    def search(self, task: SearchTask) -> SearchResult:
        i = 0
        while True:
            task.run_trials([TrialRequest(spec(i + j), self.resource, task.seed) for j in range(self.size)])
            i += self.size
            time.sleep(self.pause)


class Polite(Greedy):
    """Asks `out_of_time` before each batch and stops there."""

    def search(self, task: SearchTask) -> SearchResult:
        i = 0
        while not task.out_of_time() and task.trials_left() >= self.size:
            task.run_trials([TrialRequest(spec(i + j), self.resource, task.seed) for j in range(self.size)])
            i += self.size
            time.sleep(self.pause)
        best = best_of(task.trials)
        return SearchResult(best.spec, best.val_accuracy, list(task.trials), best.resource, {"polite": True})


def task(budget: SearchBudget, runner=None) -> SearchTask:
    return SearchTask(dataset=tiny_dataset(), budget=budget, run_trials=runner or FakeTrials())


def test_a_backend_that_ignores_the_trial_budget_stops_at_it():
    runner = FakeTrials()
    result = run_search(Greedy(size=2, resource=0.5), task(SearchBudget(max_trials=3, max_epochs=1.0), runner))
    assert "stopped_by_budget" in result.info and "max_trials = 3" in result.info["stopped_by_budget"]
    assert sum(r.resource for r in runner.requests) == pytest.approx(3.0)  # 6 trials of half the epochs
    assert result.best == max((t for t in result.trials), key=lambda t: t.val_accuracy).spec


def test_a_backend_that_ignores_the_clock_gets_one_batch_past_it():
    runner = FakeTrials()
    budget = SearchBudget(max_trials=1000, max_epochs=1.0, max_seconds=0.05)
    result = run_search(Greedy(pause=0.02), task(budget, runner))
    assert "s are spent" in result.info["stopped_by_budget"]
    # every batch but the last started before the deadline; at 0.02 s a batch, that is a handful, not a thousand
    assert 2 <= len(runner.requests) <= 10


def test_a_polite_backend_is_never_interrupted():
    budget = SearchBudget(max_trials=1000, max_epochs=1.0, max_seconds=0.05)
    result = run_search(Polite(pause=0.02), task(budget))
    assert result.info == {"polite": True}
    assert 1 <= len(result.trials) <= 10


def test_no_time_is_spent_before_the_first_trial():
    t = task(SearchBudget(max_trials=2, max_epochs=1.0, max_seconds=1e-9))
    time.sleep(0.01)
    assert t.seconds_left() < 0 and not t.out_of_time()  # a search always returns a model
    t.run_trials([TrialRequest(spec(0), 1.0)])
    assert t.out_of_time()
    with pytest.raises(SearchBudgetSpent):
        t.run_trials([TrialRequest(spec(1), 1.0)])


def test_a_derived_task_shares_the_budget():
    t = task(SearchBudget(max_trials=2, max_epochs=1.0))
    derived = dataclasses.replace(t, warm_start=[spec(9)])
    derived.run_trials([TrialRequest(spec(0), 1.0)])
    assert t.trials_left() == pytest.approx(1.0) and len(t.trials) == 1
    with pytest.raises(SearchBudgetSpent):
        t.run_trials([TrialRequest(spec(1), 1.0), TrialRequest(spec(2), 1.0)])


@pytest.mark.parametrize("name", ["random", "hyperband", "metaqnn"])
def test_built_in_backends_stop_when_told(name):
    runner = FakeTrials()
    budget = SearchBudget(max_trials=12, max_epochs=1.0, min_epochs=0.25, max_seconds=1e-9)
    result = run_search(BACKENDS.get(name)(), task(budget, runner))
    assert "stopped_by_budget" not in result.info
    assert 1 <= len(runner.requests) < 12
