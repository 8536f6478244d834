"""Benchmark: profile builtin:fashion-mnist (60,000 images) with B = 6 landmarkers × T = 8 trials.

    .venv/bin/python bench/bench_profile.py [--uri builtin:fashion-mnist] [--models 6] [--trials 8] [--workers N]
    .venv/bin/python bench/bench_profile.py --preset small [--landmarker-seed 0] [--repeat 4]

``--preset`` takes B, T and the trial budget from an engine preset (``small``: B = 4, T = 10, 1 epoch on 512
images, 500 validation images); the landmarkers are the installation's set (``landmarkers.LANDMARKER_SET``), or
with ``--landmarker-seed`` the paper's plain Monte Carlo draws of that seed (the set before the selection).

``--repeat N`` profiles N times on one worker pool: a stream's first dataset pays for starting the pool (and each
worker's first torch call), its later datasets do not (``profile_wall_seconds_each``).

Prints one JSON object: the load and profile wall seconds, the mean / max seconds of one trial (measured in the
worker), the profile's mean vector, and peak memory: ``peak_rss_mib`` is resource.getrusage ru_maxrss of this
process (``self``) and of the largest reaped child (``children``). Linux carries a forked child's pre-exec peak
over into ru_maxrss, so ``children`` can read as the parent's size; ``worker_peak_mib`` is the workers' own peak
(VmHWM, read inside them) and ``parent_peak_mib`` / ``parent_rss_after_load_mib`` separate the dataset from the
profile in the parent. Also the machine's core count and load average: other work on the machine slows every
trial, and ``worker_cpu_seconds`` / ``workers`` (+ the parent's few seconds) is what the profile would take on an
idle machine. Exit status 0 when the profile took at most 90 s (the target on a 2-core machine), else 1.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def _status_mib(field: str) -> float:
    """VmHWM (peak) or VmRSS (current) of this process from /proc, in MiB; unlike ru_maxrss, VmHWM starts afresh at
    exec, so a spawned worker does not inherit the peak of the process it was forked from. 0 where /proc is absent."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _worker_peak(_: int) -> tuple[int, float]:
    time.sleep(0.1)  # long enough that every worker takes some of the items
    return os.getpid(), _status_mib("VmHWM")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", default="builtin:fashion-mnist")
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None, help="default: os.cpu_count()")
    ap.add_argument("--preset", default=None, help="B, T and the trial budget of this engine preset")
    ap.add_argument("--repeat", type=int, default=1,
                    help="profile again on the same worker pool (a stream's later datasets): each wall in "
                         "profile_wall_seconds_each; the first includes starting the pool")
    ap.add_argument("--landmarker-seed", type=int, default=None,
                    help="Monte Carlo landmarkers of this seed instead of the installation's set")
    args = ap.parse_args(argv)

    from landmarkers import LANDMARKER_SET, ProfileBudget, profile
    from trautoml.data import load_dataset
    from trautoml.executor import LocalExecutor

    load_avg_before = os.getloadavg()
    t0 = time.perf_counter()
    ds = load_dataset(args.uri)
    load_s = time.perf_counter() - t0
    rss_after_load = _status_mib("VmRSS")

    executor = LocalExecutor(args.workers or os.cpu_count())
    try:
        t0 = time.perf_counter()
        budget = None
        if args.preset:
            from trautoml.presets import get_preset

            pre = get_preset(args.preset)
            args.models, args.trials = pre.n_models, pre.n_trials
            budget = ProfileBudget(pre.profile_epochs, pre.profile_max_train, pre.profile_max_eval)
        prof = profile(ds, n_models=args.models, n_trials=args.trials, seed=args.seed, executor=executor,
                       budget=budget, landmarker_seed=args.landmarker_seed)
        profile_s = time.perf_counter() - t0  # includes starting the worker processes
        each = [profile_s]
        for _ in range(args.repeat - 1):   # the pool is warm now, as for a stream's later datasets
            t1 = time.perf_counter()
            profile(ds, n_models=args.models, n_trials=args.trials, seed=args.seed, executor=executor,
                    budget=budget, landmarker_seed=args.landmarker_seed)
            each.append(time.perf_counter() - t1)
        worker_peaks = dict(executor.map(_worker_peak, range(executor.workers * 8)))  # pid -> peak
        pids = executor.worker_pids()
    finally:
        executor.close()
    # Let the pool reap its workers so RUSAGE_CHILDREN holds their CPU time (a reaped pid leaves /proc).
    deadline = time.monotonic() + 15
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = children.ru_utime + children.ru_stime

    mib = 1024.0  # ru_maxrss is in KiB on Linux
    out = {
        "uri": args.uri,
        "dataset": repr(ds),
        "preset": args.preset,
        "landmarkers": LANDMARKER_SET if args.landmarker_seed is None else f"monte-carlo-{args.landmarker_seed}",
        "models": args.models,
        "trials": args.trials,
        "workers": executor.workers,
        "cpu_count": os.cpu_count(),
        "load_avg_before": [round(v, 2) for v in load_avg_before],
        "load_avg_after": [round(v, 2) for v in os.getloadavg()],
        "load_seconds": round(load_s, 2),
        "profile_wall_seconds": round(profile_s, 2),
        "profile_total_seconds": round(prof.total_seconds, 2),
        "profile_wall_seconds_each": [round(v, 2) for v in each],
        "trial_mean_seconds": round(float(prof.wall_seconds.mean()), 3),
        "trial_max_seconds": round(float(prof.wall_seconds.max()), 3),
        "trial_seconds_by_model": [round(float(v), 3) for v in prof.wall_seconds.mean(axis=0)],
        "trial_wall_seconds_sum": round(float(prof.wall_seconds.sum()), 2),
        # CPU the workers burnt (torch import included): on an otherwise idle machine the profile takes about
        # worker_cpu_seconds / workers; the gap to profile_wall_seconds is other load on the machine.
        "worker_cpu_seconds": round(worker_cpu, 2),
        "parent_cpu_seconds": round(time.process_time(), 2),
        "mean_accuracy": [round(float(v), 4) for v in prof.mean],
        "trial_std": [round(float(v), 4) for v in prof.trials.std(axis=0)],
        "peak_rss_mib": {
            "self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / mib, 1),
            "children": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / mib, 1),
        },
        "parent_rss_after_load_mib": round(rss_after_load, 1),
        "parent_peak_mib": round(_status_mib("VmHWM"), 1),
        "worker_peak_mib": round(max(worker_peaks.values()), 1),
        "workers_sampled": len(worker_peaks),
        "target_seconds": 90,
        "within_target": profile_s <= 90,
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    sys.exit(0 if main()["within_target"] else 1)
