"""Transfer controller on real data (issue 6, item 5; the analogue of Wong et al. 2018, Table 1 left).

On ``stream:demo``: pretrain one controller on some datasets (multitask: each walk draws a dataset, Wong et al.
§2.2), then for each held-out dataset, as a newly founded group, compare

- ``transfer``: the pretrained controller, served to the new group by the ``transfer`` backend (all parameters
  kept, a fresh task embedding; the Transformer also mixes in uniform sampling over its first 100 samples);
- ``single``: the same backend from scratch on that dataset alone (single-task AutoML);
- ``random``: uniform sampling of the same conditional space (Wong et al.'s RS baseline).

Metric: the accuracy ``random`` reaches with its full budget of B trials (best validation accuracy) is the target;
for each method, the number of trials until its best validation accuracy first reaches that target (null: not
within B). For ``random`` that is the trial where it found its best. Every trial trains a spec at ``--epochs``
with the same seed on the same dataset, and results are cached per (dataset, spec), so a spec scores the same for
every method. Training runs on the CPU, single-threaded, in ``--workers`` processes.

    .venv/bin/python bench/bench_transfer_real.py --agent transformer --space mlp --budget 30 --seeds 2

Writes ``bench/results/transfer_real_<agent>_<space>.json`` and prints a table. If ``stream:demo`` cannot be
loaded (no Fashion-MNIST, say), datasets that fail are skipped; with fewer than 2 left it falls back to
``builtin:digits`` variants.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search_backends.base import SearchBudget, SearchTask, Trial, TrialRequest  # noqa: E402
from search_backends.transfer import Learner, TransferController, model_space, save_learner  # noqa: E402
from search_backends.transfer.toys import median_or_none, random_walk  # noqa: E402

DIGITS_FALLBACK = ["builtin:digits", "builtin:digits?rotate=1", "builtin:digits?invert=1",
                   "builtin:digits?background=noise", "builtin:digits?classes=0,1,2,3,4",
                   "builtin:digits?rotate=1&invert=1"]


@cache
def _dataset(uri: str):
    from trautoml.data.loaders import load_dataset
    return load_dataset(uri)


def _train(args: tuple) -> dict:
    """Train one spec on one dataset (a worker): single-threaded CPU torch."""
    import torch
    from trautoml.models.spec import ModelSpec
    from trautoml.models.trials import run_trial
    torch.set_num_threads(1)
    uri, spec, epochs, seed = args
    t = run_trial(TrialRequest(ModelSpec.from_dict(spec), epochs, seed), _dataset(uri), device="cpu")
    return t.to_dict()


#: Every training uses this seed, whatever the method's own seed: a spec scores the same for every method.
TRAIN_SEED = 0


class Trainer:
    """run_trials for one dataset: a cache over specs, trainings spread over a process pool."""

    def __init__(self, uri: str, pool: ProcessPoolExecutor | None, cache: dict):
        self.uri, self.pool, self.cache = uri, pool, cache

    def __call__(self, requests) -> list[Trial]:
        todo = list({(r.spec.to_json(), r.resource): r for r in requests
                     if (self.uri, r.spec.to_json(), r.resource) not in self.cache}.values())
        args = [(self.uri, r.spec.to_dict(), r.resource, TRAIN_SEED) for r in todo]
        done = list(self.pool.map(_train, args)) if self.pool and len(args) > 1 else [_train(a) for a in args]
        for r, d in zip(todo, done):
            self.cache[(self.uri, r.spec.to_json(), r.resource)] = d
        return [Trial.from_dict(self.cache[(self.uri, r.spec.to_json(), r.resource)]) for r in requests]


def pick_datasets(stream: str, pretrain_idx: list[int], heldout_idx: list[int]) -> tuple[list[str], list[str]]:
    uris: list[str | None] = []
    try:
        from trautoml.data.streams import load_stream
        items = load_stream(stream)
        for it in items:
            try:
                _dataset(it.uri)
                uris.append(it.uri)
            except Exception as e:  # noqa: BLE001 - a missing source only shrinks the benchmark
                print(f"skipping {it.uri}: {e}", file=sys.stderr)
                uris.append(None)
    except Exception as e:  # noqa: BLE001 - no stream: the benchmark falls back to builtin digits
        print(f"cannot load {stream}: {e}; falling back to builtin:digits variants", file=sys.stderr)
    pre = [uris[i] for i in pretrain_idx if i < len(uris) and uris[i]]
    held = [uris[i] for i in heldout_idx if i < len(uris) and uris[i]]
    if not pre or not held:
        print("using builtin:digits variants", file=sys.stderr)
        pre, held = DIGITS_FALLBACK[:3], DIGITS_FALLBACK[3:]
    return pre, held


def pretrain(agent: str, space_name: str, uris: list[str], trials: int, epochs: float, seed: int, batch: int,
             pool, cache: dict, folder: Path) -> dict:
    """Multitask pretraining: each walk draws a dataset; walks are trained in batches, one update per walk."""
    learner = Learner(agent, seed=seed)
    space = model_space(space_name)
    for u in uris:
        learner.prepare(space, u)
    rewards: dict[str, list[float]] = {u: [] for u in uris}
    done = 0
    while done < trials:
        walks = []
        for _ in range(min(batch, trials - done)):
            u = learner.rng.choice(uris)
            walks.append((u, learner.propose(space_name, u)))
        # train the batch's new specs in parallel, across datasets
        reqs = [(u, TrialRequest(ep.result, epochs)) for u, ep in walks]
        todo = list({(u, r.spec.to_json()): (u, r) for u, r in reqs
                     if (u, r.spec.to_json(), r.resource) not in cache}.values())
        args = [(u, r.spec.to_dict(), r.resource, TRAIN_SEED) for u, r in todo]
        for (u, r), d in zip(todo, pool.map(_train, args) if pool else map(_train, args)):
            cache[(u, r.spec.to_json(), r.resource)] = d
        for (u, ep), (_, r) in zip(walks, reqs):
            t = Trial.from_dict(cache[(u, r.spec.to_json(), r.resource)])
            reward = t.val_accuracy if t.status == "ok" else 0.0
            learner.update(ep, reward)
            rewards[u].append(reward)
        done += len(walks)
    save_learner(learner, folder)
    return {u: {"walks": len(r), "mean_reward": statistics.mean(r) if r else None,
                "best": max(r) if r else None} for u, r in rewards.items()}


def random_run(space_name: str, trainer: Trainer, budget: int, epochs: float, seed: int) -> list[Trial]:
    space = model_space(space_name)
    rng = random.Random(seed)
    specs: dict = {}
    for _ in range(50 * budget):
        if len(specs) >= budget:
            break
        specs.setdefault(random_walk(space, rng), None)
    return trainer([TrialRequest(s, epochs) for s in specs])


def trials_to(trials: list[Trial], target: float) -> int | None:
    best = -1.0
    for n, t in enumerate(trials, 1):
        best = max(best, t.val_accuracy if t.status == "ok" else 0.0)
        if best >= target - 1e-12:
            return n
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agent", default="transformer", choices=("lstm", "transformer"))
    p.add_argument("--space", default="mlp", choices=("mlp", "cnn"))
    p.add_argument("--stream", default="stream:demo")
    p.add_argument("--pretrain-idx", default="0,4,7,10", help="stream positions to pretrain on")
    p.add_argument("--heldout-idx", default="2,6,9,11", help="stream positions to transfer to")
    p.add_argument("--pretrain-trials", type=int, default=120, help="multitask pretraining walks in all")
    p.add_argument("--budget", type=int, default=30, help="trials per held-out dataset and method (B)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--batch", type=int, default=4, help="walks trained together before their updates")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = p.parse_args(argv)
    t0 = time.time()
    pre, held = pick_datasets(a.stream, [int(i) for i in a.pretrain_idx.split(",")],
                              [int(i) for i in a.heldout_idx.split(",")])
    cache: dict = {}
    pool = ProcessPoolExecutor(a.workers) if a.workers > 1 else None
    rows, pre_stats = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.seeds):
            # each seed is an independent replica: its own pretraining, then every held-out dataset
            t1 = time.time()
            pre_dir = Path(tmp) / f"pretrained-{seed}"
            pre_stats.append(pretrain(a.agent, a.space, pre, a.pretrain_trials, a.epochs, seed,
                                      max(a.batch, a.workers), pool, cache, pre_dir))
            print(f"seed {seed}: pretrained on {len(pre)} datasets, {a.pretrain_trials} walks, "
                  f"{time.time() - t1:.0f}s", file=sys.stderr)
            for h, uri in enumerate(held):
                trainer = Trainer(uri, pool, cache)
                rnd = random_run(a.space, trainer, a.budget, a.epochs, 1000 + seed)
                runs = {"random": rnd}
                for method in ("transfer", "single"):
                    folder = Path(tmp) / f"{method}-{seed}-{h}"
                    if method == "transfer":
                        shutil.copytree(pre_dir, folder)
                    backend = TransferController(agent=a.agent, space=a.space, batch_size=a.batch,
                                                 state_dir=folder)
                    task = SearchTask(_dataset(uri), SearchBudget(max_trials=a.budget, max_epochs=a.epochs),
                                      Trainer(uri, pool, cache), seed=seed, task_id=f"new:{uri}")
                    res = backend.search(task)
                    assert res.info["transfer"] is (method == "transfer")
                    runs[method] = res.trials
                target = max(t.val_accuracy for t in rnd if t.status == "ok")
                row = {"dataset": uri, "seed": seed, "target_val_accuracy": target}
                for m, trials in runs.items():
                    ok = [t for t in trials if t.status == "ok"]
                    best = max(ok, key=lambda t: t.val_accuracy)
                    row[m] = {"trials_to_target": trials_to(trials, target), "trials": len(trials),
                              "best_val_accuracy": best.val_accuracy, "test_accuracy_of_best": best.test_accuracy}
                rows.append(row)
                print(json.dumps({k: (v["trials_to_target"] if isinstance(v, dict) else v)
                                  for k, v in row.items()}), file=sys.stderr)
    if pool:
        pool.shutdown()

    def med(method):
        return median_or_none([r[method]["trials_to_target"] or math.inf for r in rows])

    summary = {m: {"median_trials_to_target": med(m),
                   "reached": sum(r[m]["trials_to_target"] is not None for r in rows),
                   "mean_best_val_accuracy": statistics.mean(r[m]["best_val_accuracy"] for r in rows)}
               for m in ("transfer", "single", "random")}
    out = {"agent": a.agent, "space": a.space, "stream": a.stream, "pretrain_datasets": pre,
           "heldout_datasets": held, "pretrain_trials": a.pretrain_trials, "budget": a.budget,
           "epochs": a.epochs, "seeds": a.seeds, "pretrain": pre_stats, "runs": rows, "summary": summary,
           "distinct_trainings": len(cache), "seconds": round(time.time() - t0, 1)}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    path = Path(a.out) / f"transfer_real_{a.agent}_{a.space}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"{'dataset':60s} {'seed':>4s} {'target':>7s} {'transfer':>9s} {'single':>7s} {'random':>7s}")
    for r in rows:
        cells = [str(r[m]["trials_to_target"] or f">{a.budget}") for m in ("transfer", "single", "random")]
        print(f"{r['dataset'][:60]:60s} {r['seed']:>4d} {r['target_val_accuracy']:>7.3f} {cells[0]:>9s} "
              f"{cells[1]:>7s} {cells[2]:>7s}")
    print("median trials to target: " + ", ".join(f"{m} {s['median_trials_to_target']}" for m, s in summary.items()))
    print(f"wrote {path} ({out['seconds']}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
