"""Benchmark: 10,000 datasets through ``MarkovBFGrouper.observe`` with B = 6, T = 8, K = 1000 on one core.

    .venv/bin/python bench/bench_grouping.py [--n 10000] [--groups 50] [--K 1000] [--seed 0]

The stream is synthetic landmarker-like data: ``--groups`` group means uniform in [0.1, 0.9]^B, trial noise sd
0.015, datasets in random group order. BLAS is limited to one thread. Prints one JSON object: wall and CPU seconds
for the observes, µs per observe, the groups found, the adjusted Rand index against the true groups, the
decision reasons, and the machine's core count and load average (timings on a busy machine are inflated).
Target: under 10 s for 10,000 observes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--B", type=int, default=6)
    ap.add_argument("--T", type=int, default=8)
    ap.add_argument("--K", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np
    from sklearn.metrics import adjusted_rand_score
    from threadpoolctl import threadpool_limits

    from trautoml.grouping import MarkovBFGrouper

    rng = np.random.default_rng(args.seed)
    means = rng.uniform(0.1, 0.9, size=(args.groups, args.B))
    labels = rng.integers(args.groups, size=args.n)
    data = means[labels][:, None, :] + rng.normal(0.0, 0.015, size=(args.n, args.T, args.B))
    g = MarkovBFGrouper(K=args.K, seed=args.seed)
    with threadpool_limits(1):
        wall, cpu = time.perf_counter(), time.process_time()
        reasons = Counter(g.observe(X).reason for X in data)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {"n": args.n, "B": args.B, "T": args.T, "K": args.K, "true_groups": args.groups,
           "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "us_per_observe": round(1e6 * wall / args.n, 1),
           "groups_found": g.n_groups, "adjusted_rand_index": round(adjusted_rand_score(labels, g.labels()), 4),
           "reasons": dict(reasons), "cpu_count": os.cpu_count(), "load_average": os.getloadavg()}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
