"""Simulation: how often the MH grouper lets a dataset join a group, against the dataset's distance from it.

    .venv/bin/python bench/sim_join_rate.py [--reps 400] [--B 4] [--T 10] [--members 4] [--first-look 6]

A family of ``--members`` datasets whose means scatter around a centre c (sd ``--between`` per landmarker), each
profiled with ``--T`` trials of sd ``--trial-sd`` (correlated ``--trial-corr`` across datasets, trial by trial),
founds one group (the grouper is forced to keep them together by α → 0). A new dataset at distance d from c (a
random direction, the same trial noise) is then observed; "joined"
means the grouper put it into that group. Printed: one JSON object with, per distance, the rate at which the group
is the most probable cluster (what Σ decides) and the join rate (after the guard), for each
setting of the group covariance (``trial_cov``: ``trial`` = S + C̄, ``mean`` = S + C̄/T) and of the guard
(``paired``), at the preset's α. A family member (d ≈ between-member scatter) should join; a dataset 0.1–0.2 away
(10–20 accuracy points on every landmarker) should not. With ``--first-look N`` one more setting runs the new
dataset through the pipeline's profile in two looks (`MarkovBFGrouper.settled` on its first N trials; a settled
dataset is observed with those, any other with all T) and adds, per distance, the fraction that stopped at N.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def join_rate(distance: float, reps: int, b: int, t: int, members: int, between: float, trial_sd: float,
              trial_corr: float, alpha: float, seed: int, **options) -> tuple[float, ...]:
    """Of ``reps`` new datasets at ``distance`` from the family centre: the fraction whose most probable cluster is
    the family's group (before the guard), the fraction that join it (after the guard), and with a ``first_look``
    option the fraction whose profile stopped at the first look."""
    import numpy as np

    from trautoml.grouping import MarkovBFGrouper

    rng = np.random.default_rng(seed)
    joined = mapped = stopped = 0
    for r in range(reps):
        centre = rng.uniform(0.3, 0.7, size=b)
        shared = rng.normal(0, trial_sd, (t, b))   # trial t's seed and images are the same on every dataset

        def trials(mean):  # called within this rep only: its `shared` is meant (hence noqa: B023)
            own = rng.normal(0, trial_sd, (t, b))
            return mean + np.sqrt(trial_corr) * shared + np.sqrt(1 - trial_corr) * own  # noqa: B023

        g = MarkovBFGrouper(alpha=1e-300, seed=r, **options)
        for _ in range(members):
            g.observe(trials(centre + rng.normal(0, between, b)))
        g.alpha = alpha
        u = rng.normal(size=b)
        x = trials(centre + distance * u / np.linalg.norm(u))
        first = options.get("first_look")
        stop = first is not None and g.settled(x[:first])
        a = g.observe(x[:first] if stop else x)
        joined += a.group == "g1"
        mapped += a.map_group == "g1"
        stopped += stop
    return (mapped / reps, joined / reps) + ((stopped / reps,) if "first_look" in options else ())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--B", type=int, default=4)
    ap.add_argument("--T", type=int, default=10)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--between", type=float, default=0.01)
    ap.add_argument("--trial-sd", type=float, default=0.03)
    ap.add_argument("--trial-corr", type=float, default=0.25,
                    help="correlation of trial t's deviations across datasets (measured +0.11 to +0.46)")
    ap.add_argument("--alpha", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--first-look", type=int, default=None,
                    help="also the paired guard with a profile that may stop after this many trials")
    args = ap.parse_args(argv)
    distances = (0.0, 0.02, 0.05, 0.1, 0.2)
    settings = {"S + C̄ (trial)": {"trial_cov": "trial", "paired": False},
                "S + C̄/T (mean)": {"trial_cov": "mean", "paired": False},
                "S + C̄/T, paired": {"trial_cov": "mean", "paired": True}}
    if args.first_look is not None:
        settings[f"S + C̄/T, paired, first look {args.first_look}"] = {"trial_cov": "mean", "paired": True,
                                                                        "first_look": args.first_look}
    common = dict(reps=args.reps, b=args.B, t=args.T, members=args.members, between=args.between,
                  trial_sd=args.trial_sd, trial_corr=args.trial_corr, alpha=args.alpha, seed=args.seed)
    out = {"settings": {k: v for k, v in vars(args).items()},
           "map_and_join_rate": {name: {str(d): join_rate(d, **common, **opts) for d in distances}
                         for name, opts in settings.items()}}
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return out


if __name__ == "__main__":
    main()
