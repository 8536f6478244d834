"""Choosing the landmarkers: a construction rule beyond plain Monte Carlo.

Paper 002 §2.1 draws the landmarkers by Monte Carlo over the feasible region and §4 leaves "a more effective
construction" of them to future work. Measured with Monte Carlo draws, two of the four `small` landmarkers stay near
chance on every dataset (they add trial noise, not separation) and are the most expensive ones (stride 1 at full
resolution). The rule here keeps Monte Carlo as the source of candidates and adds a selection on data no benchmark
stream uses (`landmarkers.reference`):

1. Candidates: the first `CANDIDATES` draws of ``sample_landmarkers(·, LANDMARKER_SEED)`` (paper 002 §2.1).
2. Each candidate is profiled on every reference dataset (4 families, 2 members each: a dataset and its 50 %
   subsample) with the `small` preset's budget and T = `TRIALS` trials.
3. A candidate must *learn within the budget*: its mean chance-corrected accuracy over the reference datasets,
   (acc − 1/C) / (1 − 1/C), is at least `MIN_SKILL`.
4. It must *spread families apart relative to trial noise*: its Fisher ratio, the one-way ANOVA F of its trial
   accuracies grouped by family (variance between the family means over the variance within a family, members
   and trials together), is what it is ranked by, per second of its training, since a profile's seconds are pure
   overhead in the stream's total (paper 002 §3.1). The first `KEEP` are the set.

A redundancy filter (skip a candidate whose mean accuracies over the reference datasets correlate above 0.95 with
one already chosen) was tried and dropped: over 8 reference datasets every pair of candidates correlates at
0.85–1.00 (datasets differ in difficulty for every network alike), so it left 3 landmarkers, fewer than the
`paper` preset's 6.

The outcome, ranked (B landmarkers = the first B), is written to ``selected.json`` beside this module with its
version (`SET_VERSION`), the reference datasets, the scores and the build's machine, date and seconds; `profile`
uses it. A workspace records the version and refuses profiles made with another set.

    python -m landmarkers.selection --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from .landmarker_set import SELECTED_PATH
from .sampling import sample_landmarkers

__all__ = ["CANDIDATES", "KEEP", "MIN_SKILL", "SET_VERSION", "TRIALS", "build", "fisher_ratio", "score", "select"]

CANDIDATES = 24
TRIALS = 10
MIN_SKILL = 0.15
KEEP = 8
#: The version of the rule and its reference data; a new selection with other settings gets a new version.
SET_VERSION = "ref-v1"


def fisher_ratio(values_by_family: list[np.ndarray]) -> float:
    """One-way ANOVA F of the values grouped by family: mean square between the families over mean square within
    them (∞ when there is no spread within)."""
    groups = [np.asarray(v, dtype=float).ravel() for v in values_by_family]
    n, k = sum(len(g) for g in groups), len(groups)
    grand = np.concatenate(groups).mean()
    between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (k - 1)
    within = sum(((g - g.mean()) ** 2).sum() for g in groups) / (n - k)
    return float(between / within) if within > 0 else float("inf")


def score(families: dict[str, list], candidates: list, budget, n_trials: int = TRIALS, seed: int = 0,
          executor=None) -> dict:
    """Steps 2–4 (module docstring) for ``candidates`` on ``families`` (family → member datasets): per candidate
    its skill, Fisher ratio, mean trial seconds and mean accuracy on each dataset."""
    from trautoml.decide import skill as skill_above_chance

    from .profile import profile

    acc, skill, seconds, names = [], [], [], []
    by_family: dict[str, list[np.ndarray]] = {}
    for family, members in families.items():
        for ds in members:
            p = profile(ds, specs=candidates, n_trials=n_trials, seed=seed, budget=budget, executor=executor)
            mean = p.trials.mean(axis=0)
            acc.append(mean)
            skill.append(skill_above_chance(mean, ds.num_classes))
            seconds.append(p.wall_seconds.mean(axis=0))
            by_family.setdefault(family, []).append(p.trials)
            names.append(ds.name)
    fam = {f: np.concatenate(ts) for f, ts in by_family.items()}
    return {"datasets": names,
            "accuracy": np.array(acc).T.round(4).tolist(),          # candidate × dataset
            "skill": np.mean(skill, axis=0).round(4).tolist(),
            "fisher": [round(fisher_ratio([fam[f][:, c] for f in fam]), 3) for c in range(len(candidates))],
            "seconds": np.mean(seconds, axis=0).round(4).tolist()}


def select(scores: dict, keep: int = KEEP) -> list[int]:
    """Steps 3–4 (module docstring): the chosen candidates' indices, best first."""
    eff = [f / s for f, s in zip(scores["fisher"], scores["seconds"])]
    return sorted((c for c, s in enumerate(scores["skill"]) if s >= MIN_SKILL), key=lambda c: -eff[c])[:keep]


def build(out: str | os.PathLike = SELECTED_PATH, workers: int | None = None) -> dict:
    """Run the whole rule (module docstring) and write its outcome to ``out``; returns what it wrote."""
    from trautoml.executor import LocalExecutor
    from trautoml.presets import get_preset

    from .profile import LANDMARKER_SEED, ProfileBudget
    from .reference import REFERENCE_URIS, reference_families

    t0 = time.perf_counter()
    p = get_preset("small")
    budget = ProfileBudget(p.profile_epochs, p.profile_max_train, p.profile_max_eval)
    candidates = sample_landmarkers(CANDIDATES, LANDMARKER_SEED)
    executor = LocalExecutor(workers or os.cpu_count() or 1)
    try:
        scores = score(reference_families(), candidates, budget, executor=executor)
    finally:
        executor.close()
    chosen = select(scores)
    record = {"version": SET_VERSION, "specs": [candidates[c].to_dict() for c in chosen], "candidate_index": chosen,
              "rule": {"candidates": CANDIDATES, "landmarker_seed": LANDMARKER_SEED, "trials": TRIALS,
                       "min_skill": MIN_SKILL, "keep": KEEP, "budget": budget.to_dict(),
                       "rank": "fisher ratio per trial second"},
              "reference": REFERENCE_URIS, "scores": scores, "seconds": round(time.perf_counter() - t0, 1),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": date.today().isoformat()}
    Path(out).write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m landmarkers.selection``: select the landmarkers and write ``selected.json``."""
    ap = argparse.ArgumentParser(prog="python -m landmarkers.selection", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(SELECTED_PATH))
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args(argv)
    rec = build(a.out, a.workers)
    print(json.dumps({k: rec[k] for k in ("version", "candidate_index", "seconds")}))
    print(json.dumps(rec["scores"]["fisher"]), json.dumps(rec["scores"]["skill"]), json.dumps(rec["scores"]["seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
