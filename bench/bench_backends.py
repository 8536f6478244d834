"""Search backends at an equal wall-clock budget on one dataset of the demo stream (issue 5's evidence).

For each backend and seed: a search capped at ``--seconds`` wall seconds (``SearchBudget.max_seconds``; a backend
stops issuing new trials once the cap has passed, so the real wall time is reported too), trials of
``--epochs`` epochs on at most ``--max-train`` images, run serially in this process (one executor for all, so
the comparison is of search strategies, not of parallelism). Reports the best validation accuracy found, mean
and spread over seeds, and for ENAS its ``cost_ratio`` (its search time over training each child it judged).

Usage: ``python bench/bench_backends.py [--dataset URI] [--seconds 60] [--seeds 3] [--backends random,...]``
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

from search_backends import SearchBudget, SearchTask, get_backend
from trautoml.data import load_dataset
from trautoml.models.trials import run_trial


def one_search(backend: str, dataset, seconds: float, seed: int, epochs: float, max_train: int) -> dict:
    run = functools.partial(run_trial, dataset=dataset, max_train=max_train, max_eval=500)
    budget = SearchBudget(max_trials=1000, max_epochs=epochs, min_epochs=epochs / 9, max_seconds=seconds)
    task = SearchTask(dataset=dataset, budget=budget, run_trials=lambda reqs: [run(r) for r in reqs], seed=seed)
    t0 = time.perf_counter()
    result = get_backend(backend).search(task)
    return {"best_val": result.best_val_accuracy, "wall_s": time.perf_counter() - t0, "trials": len(result.trials),
            "cost_ratio": result.info.get("cost_ratio")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="builtin:fashion-mnist?max_train=2000&max_eval=500")
    ap.add_argument("--backends", default="random,hyperband,metaqnn,enas")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-train", type=int, default=1000)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    dataset = load_dataset(args.dataset)
    out = {"dataset": dataset.name, "seconds": args.seconds, "epochs": args.epochs, "backends": {}}
    for backend in args.backends.split(","):
        runs = [one_search(backend, dataset, args.seconds, seed, args.epochs, args.max_train)
                for seed in range(args.seeds)]
        vals = [r["best_val"] for r in runs]
        out["backends"][backend] = {
            "best_val_mean": statistics.mean(vals), "best_val_std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "wall_s_mean": statistics.mean(r["wall_s"] for r in runs),
            "trials_mean": statistics.mean(r["trials"] for r in runs), "runs": runs}
        print(json.dumps({backend: out["backends"][backend]}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
