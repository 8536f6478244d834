"""Profile: what the grouper observes of a dataset (paper 002 §2.1), cached in the workspace by content hash."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Features", "ProfileStage", "features_kind"]


@dataclass
class Features:
    """What the grouper observes for one dataset: the landmarker profile (T × B trials) or, for the
    ``metafeatures`` grouper, the statistical meta-features (1 × D). Duck-types ``Profile`` for tracking.

    ``kind``: ``landmarkers``, ``metafeatures`` or ``none``; ``total_seconds``: measured when computed (a cached
    profile keeps its measured seconds); ``profile``: the landmarkers' `Profile`; ``names``: meta-feature names;
    ``cached``: taken from the workspace cache; ``flops``: the landmarker trials' training FLOPs (a cached profile
    keeps its counted FLOPs; meta-features train nothing and cost 0)."""

    kind: str
    trials: np.ndarray
    total_seconds: float
    profile: Any = None
    names: list[str] | None = None
    cached: bool = False
    flops: float = 0.0

    @property
    def mean(self) -> np.ndarray:
        """The meta-feature vector: the mean over trials."""
        return np.asarray(self.trials, dtype=float).mean(axis=0)

    def to_dict(self) -> dict:
        """Plain JSON (the workspace's record of the dataset)."""
        if self.profile is not None:
            return {"kind": self.kind, **self.profile.to_dict()}
        return {"kind": self.kind, "names": self.names, "trials": np.asarray(self.trials).tolist(),
                "mean": self.mean.tolist(), "total_seconds": self.total_seconds}


def features_kind(grouper: str, warm_start: str | None) -> str:
    """What is measured of each dataset for this ``grouper`` and ``warm_start`` mode: ``landmarkers`` (profile),
    ``metafeatures`` or ``none``; ValueError for a combination that mixes two spaces."""
    if warm_start == "metafeatures" and grouper not in ("metafeatures", "none"):
        raise ValueError(f"warm_start='metafeatures' goes with grouper 'none' or 'metafeatures', not {grouper!r}: "
                         "the neighbours are chosen in the space the datasets are grouped in")
    if grouper == "metafeatures" or warm_start == "metafeatures":
        return "metafeatures"
    if grouper == "none" and warm_start in (None, "latest"):
        return "none"
    return "landmarkers"


class ProfileStage:
    """load → **profile**: ``stage(dataset, first_look=None, settled=None) -> Features``.

    ``ctx``: the pipeline's context (``preset``, ``seed``, ``workspace``, ``executor``, ``progress``; a
    `trautoml.TrAutoML`). ``kind``: see `features_kind`. Landmarker profiles come from the ``landmarkers``
    profiler (`trautoml.registry.PROFILERS`): B landmarkers trained T times each, their validation accuracies the
    T × B matrix (paper 002 §2.1, eq. 1).

    With ``first_look`` (< T) the profile is made in two looks: the first ``first_look`` trials, then the rest, and
    it stops after the first when ``settled(trials)`` says the rest cannot change the grouping
    (`trautoml.grouping.Grouper.settled`). Each look's seconds are measured and kept (`Profile.checkpoints`); the
    workspace caches the trials made so far, so a later look only adds trials."""

    def __init__(self, ctx, kind: str):
        self.ctx, self.kind = ctx, kind

    def settings(self) -> dict:
        """The profile settings a workspace keeps for good (empty when no landmarkers are trained)."""
        if self.kind != "landmarkers":
            return {}
        from trautoml.registry import PROFILERS

        p = self.ctx.preset
        return {"n_models": p.n_models, "n_trials": p.n_trials, "profile_epochs": p.profile_epochs,
                "profile_max_train": p.profile_max_train, "profile_max_eval": p.profile_max_eval,
                "landmarker_set": PROFILERS.get("landmarkers").LANDMARKER_SET}

    def __call__(self, dataset, first_look: int | None = None, settled=None) -> Features:
        if self.kind == "none":  # nothing to measure: the grouper (none) needs no features
            return Features("none", np.zeros((1, 1)), 0.0)
        if self.kind == "metafeatures":
            return self._metafeatures(dataset)
        return self._landmarkers(dataset, first_look, settled)

    def _metafeatures(self, dataset) -> Features:
        from trautoml.data import METAFEATURE_NAMES, statistical_metafeatures

        ws = self.ctx.workspace
        h, key = dataset.content_hash(), json.dumps({"kind": "metafeatures"})
        cached = ws.cached_profile(h, key)
        hit = cached is not None
        if not hit:
            t0 = time.perf_counter()
            mf = statistical_metafeatures(dataset)
            names = [n for n in METAFEATURE_NAMES if n in mf]
            cached = {"names": names, "trials": [[float(mf[n]) for n in names]],
                      "total_seconds": time.perf_counter() - t0}
            ws.store_profile(h, key, cached)
        return Features("metafeatures", np.array(cached["trials"]), cached["total_seconds"], names=cached["names"],
                        cached=hit)

    def _landmarkers(self, dataset, first_look: int | None, settled) -> Features:
        from trautoml.registry import PROFILERS

        lm = PROFILERS.get("landmarkers")  # the landmarkers package (paper 002 §2.1)
        ctx, p = self.ctx, self.ctx.preset
        key = json.dumps({"n_models": p.n_models, "n_trials": p.n_trials, "epochs": p.profile_epochs,
                          "max_train": p.profile_max_train, "max_eval": p.profile_max_eval, "seed": ctx.seed,
                          "landmarker_set": lm.LANDMARKER_SET}, sort_keys=True)
        h = dataset.content_hash()
        cached = ctx.workspace.cached_profile(h, key)
        prof = None if cached is None else lm.Profile.from_dict(cached)
        looks = [first_look, p.n_trials] if first_look is not None and first_look < p.n_trials else [p.n_trials]
        made = False
        for n in looks:
            if prof is None or prof.n_trials < n:
                have = 0 if prof is None else prof.n_trials
                more = lm.profile(
                    dataset, n_models=p.n_models, n_trials=n, first_trial=have, seed=ctx.seed, executor=ctx.executor,
                    budget=lm.ProfileBudget(epochs=p.profile_epochs, max_train=p.profile_max_train,
                                            max_eval=p.profile_max_eval),
                    progress=ctx.progress.bar(f"  profile {n - have}x{p.n_models}" + (f" (trials {have + 1}-{n})"
                                                                                       if have else "")))
                prof = more if prof is None else prof.extend(more)
                ctx.workspace.store_profile(h, key, prof.to_dict())
                made = True
            if n < p.n_trials and settled is not None and settled(prof.trials[:n]):
                ctx.progress.message(f"  profile: stopped at the first look, {n} of {p.n_trials} trials (the grouping "
                                     "is settled)")
                break
        assert prof is not None  # found in the cache or made by the loop
        prof = lm.with_flops(prof.head(n), dataset)  # a profile cached before FLOPs were counted: counted now
        if not made:
            ctx.progress.message(f"  profile: from the workspace cache ({prof.total_seconds:.1f}s measured)")
        return Features("landmarkers", prof.trials, prof.total_seconds, profile=prof, cached=not made,
                        flops=prof.total_flops or 0.0)
