"""The trial runner: what ``SearchTask.run_trials`` calls, for every backend, the benchmark and the final training.

A batch of `TrialRequest`s is answered from the trial cache where it can (same dataset content, spec, epochs, seed
and image caps: the same training), and the rest is trained through the executor with the picklable top-level
`trautoml.models.trials.run_trial`. Measured trials go into the cache with their measured seconds and FLOPs, so a
cached trial is charged what it cost when it ran; a record stored before FLOPs were counted is charged the FLOPs
its training counts (`trautoml.models.train.planned_flops`: from the spec and the image counts, nothing trained).
Each batch is handed to ``on_trials`` (the tracking observer logs it).
"""
from __future__ import annotations

import functools
import json
from typing import Any
from collections.abc import Callable, Sequence

from trautoml.search import Trial, TrialRequest

__all__ = ["TrialRunner", "caps_key", "lost_trial"]


def caps_key(max_train: int | None, max_eval: int | None) -> str:
    """The cache's key for the images a training uses (``max_train`` / ``max_eval``: caps, None for all)."""
    return json.dumps({"max_train": max_train, "max_eval": max_eval}, sort_keys=True)


def lost_trial(request: TrialRequest, exc: BaseException) -> Trial:
    """``on_error`` for the executor: a trial whose worker died (after retries) is a failed trial."""
    return Trial(spec=request.spec, resource=request.resource, seed=request.seed, val_accuracy=0.0,
                 test_accuracy=0.0, wall_seconds=0.0, status="failed", error=f"worker lost: {exc}", flops=0.0)


class TrialRunner:
    """Run trial requests on one dataset: the cache first, the rest through the executor.

    ``dataset``: a `trautoml.data.Dataset`. ``cache``: an object with ``cached_trial(hash, spec_key, resource, seed,
    caps)`` and ``store_trials(hash, caps, rows)`` (a `trautoml.workspace.Workspace`). ``executor``: an executor
    (``map(fn, items, on_error)``) or a zero-argument callable returning one, called on the first cache miss.
    ``max_train`` / ``max_eval``: the images a trial trains and is evaluated on (None: all). ``on_trials``: called
    with each answered batch and the index of its first trial in this runner's sequence.
    """

    def __init__(self, dataset, cache, executor: Any, max_train: int | None = None, max_eval: int | None = None,
                 on_trials: Callable[[list[Trial], int], None] | None = None):
        from trautoml.models.trials import run_trial

        self.dataset, self.cache, self._executor = dataset, cache, executor
        self.caps = caps_key(max_train, max_eval)
        self.hash = dataset.content_hash()
        self.on_trials = on_trials
        self.limits = (max_train, max_eval)
        self.count = 0
        self._fn = functools.partial(run_trial, dataset=dataset, max_train=max_train, max_eval=max_eval)

    def _executor_now(self):
        if not hasattr(self._executor, "map"):
            self._executor = self._executor()
        return self._executor

    def __call__(self, requests: Sequence[TrialRequest]) -> list[Trial]:
        """One Trial per request, in order (``cached`` set on those the cache answered)."""
        requests = list(requests)
        out: list = [None] * len(requests)
        misses = []
        for i, r in enumerate(requests):
            hit = self.cache.cached_trial(self.hash, r.spec.key(), r.resource, r.seed, self.caps)
            if hit is None:
                misses.append(i)
            else:
                out[i] = self.charged(Trial.from_dict({**hit, "cached": True}))
        if misses:
            results = self._executor_now().map(self._fn, [requests[i] for i in misses], on_error=lost_trial)
            for i, t in zip(misses, results):
                out[i] = t
            self.store([out[i] for i in misses])
        if self.on_trials is not None:
            self.on_trials(out, self.count)
        self.count += len(out)
        return out

    def charged(self, trial: Trial) -> Trial:
        """A cached trial with its FLOPs: as stored, or counted for a record stored before FLOPs were counted."""
        if trial.flops is not None:
            return trial
        from trautoml.models.train import planned_flops

        max_train, max_eval = self.limits
        trial.flops = planned_flops(trial.spec, self.dataset, trial.resource, max_train=max_train, max_eval=max_eval)
        return trial

    def store(self, trials: Sequence[Trial]) -> None:
        """Put measured trials into the cache (failed ones are not: a rerun tries them again)."""
        self.cache.store_trials(self.hash, self.caps, [
            {"spec_key": t.spec.key(), "resource": t.resource, "seed": t.seed, "trial": t.to_dict()}
            for t in trials if t.status == "ok"])
