"""Benchmark for a GPU: the `paper` preset's landmarker profile and one Hyperband search on all of Fashion-MNIST.

    .venv/bin/python bench/bench_gpu.py [--uri builtin:fashion-mnist] [--search-seconds 420] [--set FIELD=VALUE ...]
    .venv/bin/python bench/bench_gpu.py --cpu-smoke      # the same code path on the CPU at `tiny` budgets (tests)

Both run in this process on the default device (CUDA when present; trautoml trains there by default), with the
serial executor, so that one process holds the GPU. Printed: one JSON object with the device's name, the profile's
wall seconds, trials and trials per second, the ingest's wall seconds (search and final training, each also
alone), trainings, full-budget equivalents per hour of search, the final test accuracy, and the peak GPU memory
of each part (``torch.cuda.max_memory_allocated``; 0 on the CPU).

The `paper` search budget (24 full-budget equivalents of 27 epochs on 60,000 images) takes far longer than a
borrowed GPU's minutes; ``--search-seconds`` caps it by wall clock (the preset's ``search_seconds``), and the
output says how much of the budget it used. Refuses to run without a GPU unless ``--cpu-smoke``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _peak_reset(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(torch) -> float:
    if not torch.cuda.is_available():
        return 0.0
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", default="builtin:fashion-mnist")
    ap.add_argument("--search-seconds", type=float, default=420.0)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="preset overrides")
    ap.add_argument("--cpu-smoke", action="store_true", help="run on the CPU at tiny budgets (a check of the script)")
    args = ap.parse_args(argv)

    import torch

    from landmarkers import ProfileBudget, profile
    from trautoml.api import TrAutoML
    from trautoml.data import load_dataset
    from trautoml.executor import SerialExecutor
    from trautoml.presets import get_preset

    if not torch.cuda.is_available() and not args.cpu_smoke:
        raise SystemExit("bench_gpu: no CUDA device here (use --cpu-smoke to check the script on the CPU)")
    preset = "tiny" if args.cpu_smoke else "paper"
    overrides = dict(kv.split("=", 1) for kv in args.set)
    overrides.setdefault("search_seconds", str(args.search_seconds))
    p = get_preset(preset, **overrides)
    uri = args.uri + ("?max_train=300&max_eval=200" if args.cpu_smoke and "?" not in args.uri else "")
    ds = load_dataset(uri)
    out: dict = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                 "dataset": repr(ds), "preset": preset, "overrides": overrides}

    _peak_reset(torch)
    t0 = time.perf_counter()
    prof = profile(ds, n_models=p.n_models, n_trials=p.n_trials, executor=SerialExecutor(),
                   budget=ProfileBudget(p.profile_epochs, p.profile_max_train, p.profile_max_eval))
    wall = time.perf_counter() - t0
    trials = p.n_models * p.n_trials
    out["profile"] = {"B": p.n_models, "T": p.n_trials, "wall_seconds": round(wall, 2),
                      "trials_per_second": round(trials / wall, 2), "peak_gpu_mib": _peak_mib(torch),
                      "mean_accuracy": [round(float(v), 4) for v in prof.mean]}

    _peak_reset(torch)
    with tempfile.TemporaryDirectory() as ws:
        t = TrAutoML(ws, preset=p, grouper="none", executor="serial", tracking=False, quiet=True)
        try:
            t0 = time.perf_counter()
            d = t.ingest(ds)
            wall = time.perf_counter() - t0
        finally:
            t.close()
    fbe = d.search.get("fbe_used")
    out["search"] = {"backend": d.backend, "ingest_wall_seconds": round(wall, 1),
                     "search_seconds": round(d.search_seconds, 1), "train_seconds": round(d.train_seconds, 1),
                     "trainings": d.trials,
                     "full_budget_equivalents": fbe, "budget_fbe": p.search_trials,
                     "fbe_per_hour": None if fbe is None else round(3600 * fbe / max(d.search_seconds, 1e-9), 2),
                     "stopped_early": d.search.get("stopped_early"), "final_epochs": d.final_epochs,
                     "test_accuracy": round(d.test_accuracy, 4), "peak_gpu_mib": _peak_mib(torch)}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
