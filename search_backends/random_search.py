"""Random search, the baseline every other backend is compared against (paper 002 §3.2 compares the searches against
it).

``RandomSearch(space="cnn")`` trains ``budget.max_trials`` distinct specs, each for ``budget.max_epochs``: the
task's warm-start specs first, then specs drawn from the space with the task's seeded RNG. Without a wall-clock
cap all trials go to ``task.run_trials`` in one batch (the core spreads them over its executor); with
``budget.max_seconds`` they go in chunks of ``chunk_size`` (default: the machine's core count) and no new chunk
starts once the cap is reached. The first chunk always runs, so a search always has a result.
"""
from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable

from trautoml.models.cnn import sample_cnn_spec
from trautoml.models.mlp import sample_mlp_spec
from trautoml.models.spec import ModelSpec

from .base import SearchBackend, SearchResult, SearchTask, Trial, TrialRequest, best_of

Sampler = Callable[[random.Random], ModelSpec]

#: Spaces a backend can sample from by name. A callable ``rng -> ModelSpec`` works wherever a name does.
SPACE_SAMPLERS: dict[str, Sampler] = {"cnn": sample_cnn_spec, "mlp": sample_mlp_spec}


def space_sampler(space: str | Sampler) -> Sampler:
    """The sampler for ``space``: a callable is returned as it is, a name is looked up in ``SPACE_SAMPLERS`` (ValueError
    for an unknown one)."""
    if callable(space):
        return space
    if space not in SPACE_SAMPLERS:
        raise ValueError(f"no sampler for model space {space!r}; known: {', '.join(sorted(SPACE_SAMPLERS))}")
    return SPACE_SAMPLERS[space]


class SpecStream:
    """Distinct specs to try, in order: the warm-start specs, then fresh samples of the space.

    A spec is never handed out twice. A space too small to give ``k`` more distinct specs (after
    ``50 * k`` draws) gives fewer; callers treat the shortfall as an exhausted space.
    """

    def __init__(self, sample: Sampler, rng: random.Random, warm_start: Iterable[ModelSpec] = ()):
        self._sample, self._rng = sample, rng
        self._warm = list(dict.fromkeys(warm_start))
        self._seen: set[ModelSpec] = set()

    def take(self, k: int) -> list[ModelSpec]:
        """Up to ``k`` specs not handed out before: warm-start specs first, then samples (fewer when ``50 * k`` draws
        find no more)."""
        out: list[ModelSpec] = []
        while self._warm and len(out) < k:
            spec = self._warm.pop(0)
            if spec not in self._seen:
                self._seen.add(spec)
                out.append(spec)
        for _ in range(50 * k):
            if len(out) >= k:
                break
            spec = self._sample(self._rng)
            if spec not in self._seen:
                self._seen.add(spec)
                out.append(spec)
        return out


class RandomSearch(SearchBackend):
    """Random search (the baseline of Li et al.'s Hyperband paper): ``budget.max_trials`` specs drawn from
    ``space`` (a model-space name or a sampler ``rng -> ModelSpec``), warm starts first, each trained at
    ``budget.max_epochs``; ``chunk_size``: specs per batch when a time budget needs checking between batches."""

    name = "random"
    #: Searches any sampler given as ``space`` (the predefined mechanism wraps it around a head sampler).
    samples_any_space = True

    def __init__(self, space: str | Sampler = "cnn", chunk_size: int | None = None):
        self.sample = space_sampler(space)
        self.space = space if isinstance(space, str) else getattr(space, "__name__", "custom")
        self.chunk_size = max(1, chunk_size or os.cpu_count() or 1)

    def search(self, task: SearchTask) -> SearchResult:
        budget = task.budget
        n = budget.trial_count()
        specs = SpecStream(self.sample, task.rng(), task.warm_start).take(n)
        chunk = len(specs) if budget.max_seconds is None else self.chunk_size
        trials: list[Trial] = []
        stopped_early = False
        for i in range(0, len(specs), chunk):
            if task.out_of_time():
                stopped_early = True
                break
            trials += task.run_trials([TrialRequest(s, budget.max_epochs, task.seed) for s in specs[i:i + chunk]])
            ok = [t.val_accuracy for t in trials if t.status == "ok"]
            task.progress(f"random: {len(trials)}/{len(specs)} trials, best val "
                          + (f"{max(ok):.4f}" if ok else "n/a"))
        best = best_of(trials)
        return SearchResult(best=best.spec, best_val_accuracy=best.val_accuracy, trials=trials,
                            best_resource=budget.max_epochs, stopped_early=stopped_early,
                            info={"backend": self.name, "space": self.space, "configs": len(trials)})
