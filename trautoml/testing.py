"""Conformance checks every plug-in passes, after scikit-learn's ``check_estimator``: `check_backend`,
`check_grouper` and `check_model_space`. trautoml's tests run them over every built-in plug-in; a third party runs
them over its own (``from trautoml.testing import check_backend``). Each raises ``AssertionError`` naming the broken
rule, and returns what it measured so a caller can go on checking.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path
from collections.abc import Callable

import numpy as np

from trautoml.data.dataset import Dataset
from trautoml.grouping.base import Assignment, Grouper
from trautoml.models.spec import ModelSpec, build_module
from trautoml.search import (SearchBackend, SearchBudget, SearchBudgetSpent, SearchResult, SearchTask, Trial,
                             TrialRequest)

__all__ = ["check_backend", "check_grouper", "check_model_space", "FakeTrials", "tiny_dataset"]


def tiny_dataset(n: int = 60, shape: tuple[int, int, int] = (1, 8, 8), classes: int = 3, seed: int = 0) -> Dataset:
    """A small dataset whose classes differ in mean brightness (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) % classes
    x = np.clip(rng.normal(0.2 + 0.6 * y[:, None, None, None] / max(1, classes - 1), 0.1, (n, *shape)), 0, 1)
    x = x.astype(np.float32)
    return Dataset("tiny", x, y, x, y, x, y, num_classes=classes)


class FakeTrials:
    """``task.run_trials`` without training: each spec's validation accuracy is a fixed function of its key (and
    of the resource, a little), so searches are deterministic and instant. ``fail_every``: every n-th request
    fails, as a diverging model does. ``requests`` records every request."""

    def __init__(self, fail_every: int | None = None):
        self.fail_every = fail_every
        self.requests: list[TrialRequest] = []
        self.returned: list[Trial] = []

    def __call__(self, requests) -> list[Trial]:
        out = []
        for r in requests:
            self.requests.append(r)
            digest = int(hashlib.sha256(r.spec.key().encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            if self.fail_every and len(self.requests) % self.fail_every == 0:
                t = Trial(r.spec, r.resource, r.seed, 0.0, 0.0, 0.0, status="failed", error="fake divergence")
            else:
                acc = 0.5 * digest + 0.05 * min(1.0, float(r.resource))
                t = Trial(r.spec, r.resource, r.seed, acc, acc, 0.01)
            out.append(t)
        self.returned += out
        return out


def _search(make: Callable[[], SearchBackend], runner: FakeTrials, dataset: Dataset, budget: SearchBudget,
            seed: int, warm_start=()) -> SearchResult:
    with tempfile.TemporaryDirectory() as state:
        task = SearchTask(dataset=dataset, budget=budget, run_trials=runner, seed=seed, warm_start=list(warm_start),
                          task_id="conformance", state_dir=Path(state))
        return make().search(task)


def check_backend(make: Callable[[], SearchBackend], dataset: Dataset | None = None,
                  budget: SearchBudget | None = None, warm_start_trained: bool = True) -> SearchResult:
    """A search backend keeps the interface's promises. ``make``: a fresh backend each call (no state carried).

    1. It returns a `SearchResult` whose best spec is one it trained, at that spec's best validation accuracy;
    2. every trial it reports came from ``task.run_trials`` and no request exceeds ``budget.max_epochs``;
    3. the same seed gives the same search (same requests, same best);
    4. a warm-start spec is trained (``warm_start_trained=False`` for a backend that ranks warm starts among its
       candidates without training each, as ENAS ranks children on its shared weights, ENAS §2.2: then a warm
       search must only succeed);
    5. failed trials do not end the search;
    6. it stays within the budget the task enforces: the full-budget trainings it asks for fit ``max_trials``, and
       once ``task.out_of_time()`` says the seconds are spent it starts no new batch (the task would raise
       `SearchBudgetSpent` out of ``search``).
    Returns the first search's result."""
    dataset = dataset or tiny_dataset()
    budget = budget or SearchBudget(max_trials=4, max_epochs=1.0, min_epochs=0.25)
    runner = FakeTrials()
    result = _search(make, runner, dataset, budget, seed=3)
    name = type(make()).__name__
    assert isinstance(result, SearchResult), f"{name}: search returned {type(result).__name__}, not SearchResult"
    assert isinstance(result.best, ModelSpec), f"{name}: best is {type(result.best).__name__}, not a ModelSpec"
    assert result.best_resource > 0, f"{name}: best_resource must be positive, got {result.best_resource}"
    assert runner.requests, f"{name}: trained nothing through task.run_trials"
    returned = {id(t) for t in runner.returned}
    assert all(id(t) in returned for t in result.trials), f"{name}: reports trials run_trials did not return"
    too_long = [r.resource for r in runner.requests if r.resource > budget.max_epochs + 1e-9]
    assert not too_long, f"{name}: requested {too_long} epochs, above budget.max_epochs = {budget.max_epochs}"
    of_best = [t.val_accuracy for t in runner.returned if t.status == "ok" and t.spec == result.best]
    assert of_best, f"{name}: the best spec was never trained successfully"
    assert np.isclose(result.best_val_accuracy, max(of_best)), \
        f"{name}: best_val_accuracy {result.best_val_accuracy} is not what its best spec reached ({max(of_best)})"

    again = FakeTrials()
    repeat = _search(make, again, dataset, budget, seed=3)
    assert [r.spec.key() for r in again.requests] == [r.spec.key() for r in runner.requests], \
        f"{name}: the same seed requested other trials"
    assert repeat.best == result.best, f"{name}: the same seed found another best"

    warm = FakeTrials()
    warm_result = _search(make, warm, dataset, budget, seed=4, warm_start=[result.best])
    assert isinstance(warm_result, SearchResult), f"{name}: a warm-started search returned no SearchResult"
    if warm_start_trained:
        assert result.best.key() in {r.spec.key() for r in warm.requests}, \
            f"{name}: the warm-start spec was not trained"

    failing = FakeTrials(fail_every=2)
    survived = _search(make, failing, dataset, budget, seed=5)
    assert any(t.status == "ok" and t.spec == survived.best for t in failing.returned), \
        f"{name}: with failed trials its best is not a successful trial"

    no_time = dataclasses.replace(budget, max_seconds=1e-9)
    try:
        stopped = _search(make, FakeTrials(), dataset, no_time, seed=6)
    except SearchBudgetSpent as exc:
        raise AssertionError(f"{name}: went on searching after task.out_of_time() said stop ({exc})") from exc
    assert stopped.trials, f"{name}: with its seconds spent it must still return the model it trained first"
    return result


def check_grouper(make: Callable[[], Grouper], dims: int = 3, trials: int = 10, seed: int = 0) -> list:
    """A grouper keeps the interface's promises. ``make``: a fresh grouper each call.

    1. Datasets are numbered in arrival order; the first founds ``g1``; ids are ``g1, g2, …`` in founding order;
       ``founded`` is true exactly when a new id appears, with reason ``empty-cluster`` (or ``test-rejected``);
    2. ``labels()`` and ``groups()`` agree with the assignments;
    3. ``to_dict()`` is plain JSON, and ``from_dict`` restores a grouper that makes the same next decision;
    4. NaN input is refused with ValueError.
    Returns the assignments."""
    rng = np.random.default_rng(seed)
    centres = [np.full(dims, c) for c in (0.2, 0.5, 0.8)]
    stream = [np.clip(centres[i % 3] + rng.normal(0, 0.01, (trials, dims)), 0, 1) for i in range(6)]
    g = make()
    name = type(g).__name__
    out: list[Assignment] = []
    seen: list[str] = []
    for i, x in enumerate(stream):
        a = g.observe(x)
        assert a.index == i, f"{name}: dataset #{i} got index {a.index}"
        new = a.group not in seen
        assert a.founded == new, f"{name}: founded={a.founded} for {'a new' if new else 'an existing'} group"
        if new:
            assert a.group == f"g{len(seen) + 1}", f"{name}: new group {a.group}, expected g{len(seen) + 1}"
            assert a.reason in ("empty-cluster", "test-rejected"), f"{name}: a founding with reason {a.reason}"
            seen.append(a.group)
        else:
            assert a.reason == "test-accepted", f"{name}: a join with reason {a.reason}"
        out.append(a)
    assert g.labels() == [a.group for a in out], f"{name}: labels() disagrees with the assignments"
    assert {k: v for k, v in g.groups().items()} == {gid: [a.index for a in out if a.group == gid] for gid in seen}, \
        f"{name}: groups() disagrees with the assignments"
    state = json.loads(json.dumps(g.to_dict()))
    restored = type(g).from_dict(state)
    nxt = np.clip(centres[1] + rng.normal(0, 0.01, (trials, dims)), 0, 1)
    a1, a2 = g.observe(nxt), restored.observe(nxt)
    assert (a1.group, a1.founded, a1.reason) == (a2.group, a2.founded, a2.reason), \
        f"{name}: the restored grouper decided otherwise ({a2.group}) than the original ({a1.group})"
    try:
        make().observe(np.full((trials, dims), np.nan))
    except ValueError:
        pass
    else:
        raise AssertionError(f"{name}: NaN input was accepted")
    return out


def check_model_space(spec: ModelSpec) -> None:
    """A model space builds ``spec`` for grey 8×8 and colour 32×32 inputs with any class count, and the module maps
    a batch to one logit per class; the spec survives a JSON round trip."""
    import torch

    assert ModelSpec.from_dict(json.loads(spec.to_json())) == spec, f"{spec.space}: the spec's JSON round trip"
    for shape, classes in (((1, 8, 8), 3), ((3, 32, 32), 7)):
        module = build_module(spec, shape, classes).eval()
        with torch.no_grad():
            logits = module(torch.zeros((2, *shape)))
        assert tuple(logits.shape) == (2, classes), \
            f"{spec.space}: {shape} with {classes} classes gave logits of shape {tuple(logits.shape)}"
