"""Run one search trial: a top-level, picklable function an `trautoml.executor.Executor` can map.

``executor.map(functools.partial(run_trial, dataset=ds, max_train=...), requests)`` returns one
`search_backends.base.Trial` per `TrialRequest`, in order, with its training FLOPs. A trial that raises is reported,
not propagated: ``status="failed"``, accuracies and FLOPs 0.0, and ``error`` naming the exception, so one bad spec
cannot end a search.
"""
from __future__ import annotations

import time

from trautoml.search import Trial, TrialRequest
from trautoml.data.dataset import Dataset

from .train import train_and_evaluate


def run_trial(request: TrialRequest, dataset: Dataset, *, max_train: int | None = None,
              max_eval: int | None = None, device: str | None = None) -> Trial:
    """Train ``request.spec`` for ``request.resource`` epochs with ``request.seed`` and report it as a Trial."""
    t0 = time.perf_counter()
    try:
        res = train_and_evaluate(request.spec, dataset, request.resource, request.seed,
                                 max_train=max_train, max_eval=max_eval, device=device)
    except Exception as exc:  # noqa: BLE001 - any failure of one trial is data, not a crash of the search
        return Trial(spec=request.spec, resource=request.resource, seed=request.seed, val_accuracy=0.0,
                     test_accuracy=0.0, wall_seconds=time.perf_counter() - t0, status="failed",
                     error=f"{type(exc).__name__}: {exc}", flops=0.0)
    return Trial(spec=request.spec, resource=request.resource, seed=request.seed, val_accuracy=res.val_accuracy,
                 test_accuracy=res.test_accuracy, wall_seconds=res.wall_seconds, flops=res.flops)
