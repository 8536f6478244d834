"""Search agents measured on the tabular mini-benchmark (`minibench`): every trial is a table query, so a replica
of a whole search takes seconds and a comparison can have the papers' replica counts.

Two experiments:

- ``fig5`` (Borsos et al. 2019, §4.2, Fig. 5, Appendix B): transfer between search spaces. The full space is the
  chain of 13 states of `minibench` (10 binary edge states, then 3 op states). As the paper removes a vertex and
  restricts the ops, the two source subspaces drop node 3 (6 edge states, 2 op states) and offer the ops
  {conv3x3, conv1x1} and {conv3x3, maxpool3x3}. States are named alike in all three spaces (``e0-1`` … ``op3``), so
  an agent pretrained on both subspaces (multitask, each walk drawing a subspace) transfers to the full space with
  fresh embeddings only for what it has not seen (node 3's edges and op, the third op at each op state). Compared,
  on the same dataset: the transferred agent, the same agent from scratch, random search and regularised evolution
  (Real et al. 2018, as configured in Appendix B: edge or op mutation with equal odds, tournament of ``sample``
  out of a population of ``population``, oldest removed).
- ``wong`` (Wong et al. 2018, §3, Table 1 left): transfer between tasks. The multitask LSTM controller is trained on
  all datasets of the table but one (each walk drawing a dataset, a task embedding per dataset), then transferred
  to the held-out dataset with a fresh task embedding, against the same controller trained on that dataset alone
  and random search: trials until the best model found is among the held-out dataset's 10 best cells.

Conventions (the paper's): every agent keeps sampling until a point is valid; an invalid point costs no trial (the
agents learn from it with reward 0, since the table answers it for free); a trial is a valid query, repeated cells
included. The reward is validation accuracy; the regret is the best test accuracy in the space minus the test
accuracy of the best model found so far by validation. Replica ``r`` seeds everything it draws with ``r``; tuning
uses seeds from `TUNING_SEED` on, kept apart from the reported replicas.

    python -m search_backends.transfer.tabular fig5 --dataset fashion --replicas 50 --workers 2
    python -m search_backends.transfer.tabular wong --replicas 20 --workers 2
    python -m search_backends.transfer.tabular tune-evolution --dataset digits
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from collections.abc import Sequence

import numpy as np

from . import minibench as mb
from .agent import Episode
from .learner import Learner, train_multitask
from .spaces import START, ChainSpace
from .toys import median_or_none

__all__ = ["FULL", "SUBSPACES", "Trace", "cell_space", "evolution_search", "agent_search", "fig5", "fig5_replica",
           "point_of", "pool_map", "random_search", "summarize", "transfer_search", "tune_evolution", "wong",
           "wong_replica"]

#: Seeds from here on are for tuning only; reported replicas use 0, 1, 2, ...
TUNING_SEED = 10_000
#: Walks an agent may draw per trial before it gives up (a policy stuck on invalid points).
MAX_INVALID_PER_TRIAL = 50


def _edge_state(i: int, j: int) -> str:
    return f"e{i}-{j}"


def cell_space(name: str, ops: Sequence[str] = mb.OPS, nodes: Sequence[int] = range(mb.N_NODES)) -> ChainSpace:
    """The chain space over the cells on ``nodes`` (original node numbers, 0 and the output included) with op
    choices ``ops``: a binary state per edge among ``nodes`` (`minibench.EDGES` order), then an op state per
    intermediate node. State names do not depend on the space, so spaces share them."""
    nodes = sorted(set(nodes))
    if nodes[0] != 0 or nodes[-1] != mb.N_NODES - 1:
        raise ValueError("a cell space keeps the input (0) and output nodes")
    unknown = [o for o in ops if o not in mb.OPS]
    if unknown:
        raise ValueError(f"unknown op {unknown[0]!r}; ops: {', '.join(mb.OPS)}")
    states: list[tuple[str, tuple]] = [(_edge_state(i, j), (0, 1)) for i, j in mb.EDGES if i in nodes and j in nodes]
    states += [(f"op{m}", tuple(ops)) for m in nodes[1:-1]]
    return ChainSpace(name, states)


FULL = cell_space("cells")
SUBSPACES = (cell_space("cells-conv", ("conv3x3", "conv1x1"), (0, 1, 2, 4)),
             cell_space("cells-pool", ("conv3x3", "maxpool3x3"), (0, 1, 2, 4)))


def point_of(space: ChainSpace, actions: Sequence) -> tuple[list[int], list[str]]:
    """The full choice vector (edge bits, ops) of a walk of a `cell_space`: absent edges are off, the op of an
    absent node is irrelevant (it is pruned) and set to the first op."""
    chosen = dict(zip((s for s, _ in space.states), actions))
    bits = [int(chosen.get(_edge_state(i, j), 0)) for i, j in mb.EDGES]
    ops = [chosen.get(f"op{m}", mb.OPS[0]) for m in range(1, mb.N_NODES - 1)]
    return bits, ops


@lru_cache(maxsize=4)
def _bench(path: str | None) -> mb.MiniBench:
    return mb.MiniBench(path) if path else mb.MiniBench()


@dataclass
class Trace:
    """One search's trials in order: validation and test accuracy of each queried cell."""

    val: list[float]
    test: list[float]

    def best_val(self) -> np.ndarray:
        """The best validation accuracy after each trial."""
        return np.maximum.accumulate(np.asarray(self.val))

    def test_of_best(self) -> np.ndarray:
        """The test accuracy of the best-by-validation cell after each trial."""
        val, test = np.asarray(self.val), np.asarray(self.test)
        idx = np.zeros(len(val), dtype=int)
        for n in range(1, len(val)):
            idx[n] = n if val[n] > val[idx[n - 1]] else idx[n - 1]
        return test[idx]

    def trials_to(self, threshold: float) -> float:
        """Trials until a cell with validation accuracy ≥ ``threshold`` was found (inf when none was)."""
        hit = np.flatnonzero(np.asarray(self.val) >= threshold)
        return float(hit[0] + 1) if len(hit) else math.inf


def _query(bench: mb.MiniBench, dataset: str, space: ChainSpace, actions) -> mb.Record | None:
    return bench.query_point(*point_of(space, actions), dataset)


def random_search(bench: mb.MiniBench, dataset: str, budget: int, seed: int, space: ChainSpace = FULL) -> Trace:
    """Uniform random walks of ``space`` (invalid ones redrawn) until ``budget`` trials."""
    rng = random.Random(seed)
    trace = Trace([], [])
    while len(trace.val) < budget:
        rec = _query(bench, dataset, space, [rng.choice(a) for _, a in space.states])
        if rec is not None:
            trace.val.append(rec.val_accuracy)
            trace.test.append(rec.test_accuracy)
    return trace


def _mutate(actions: list, space: ChainSpace, rng: random.Random) -> list:
    """Appendix B's mutation: an edge flip or an op change, with equal odds."""
    child = list(actions)
    edges = [k for k, (s, _) in enumerate(space.states) if s.startswith("e")]
    ops = [k for k, (s, _) in enumerate(space.states) if s.startswith("op")]
    if rng.random() < 0.5 or not ops:
        k = rng.choice(edges)
        child[k] = 1 - child[k]
    else:
        k = rng.choice(ops)
        child[k] = rng.choice([a for a in space.states[k][1] if a != child[k]])
    return child


def evolution_search(bench: mb.MiniBench, dataset: str, budget: int, seed: int, population: int = 20,
                     sample: int = 4, space: ChainSpace = FULL) -> Trace:
    """Regularised evolution (Real et al. 2018; Borsos et al. Appendix B): ``population`` random cells, then
    repeatedly the best of ``sample`` drawn from the population is mutated (until valid), the child joins and the
    oldest leaves, until ``budget`` trials."""
    rng = random.Random(seed)
    trace = Trace([], [])
    alive: list[tuple[list, float]] = []
    while len(trace.val) < budget:
        if len(alive) < population:
            actions = [rng.choice(a) for _, a in space.states]
        else:
            parent = max(rng.sample(alive, min(sample, len(alive))), key=lambda m: m[1])[0]
            actions = _mutate(parent, space, rng)
        rec = _query(bench, dataset, space, actions)
        if rec is None:
            continue
        trace.val.append(rec.val_accuracy)
        trace.test.append(rec.test_accuracy)
        alive.append((actions, rec.val_accuracy))
        if len(alive) > population:
            alive.pop(0)
    return trace


def agent_search(learner: Learner, bench: mb.MiniBench, dataset: str, budget: int, space: ChainSpace = FULL,
                 task: str | None = None) -> Trace:
    """``learner`` searches ``space`` for ``dataset`` (its task: ``task``, default the dataset's name): one update
    per walk with reward = validation accuracy (0 for an invalid walk, which costs no trial), until ``budget``
    trials or `MAX_INVALID_PER_TRIAL` invalid walks in a row."""
    task = task or dataset
    learner.prepare(space, task)
    trace = Trace([], [])
    invalid = 0
    while len(trace.val) < budget and invalid < MAX_INVALID_PER_TRIAL:
        ep = learner.propose(space.name, task)
        rec = _query(bench, dataset, space, _chain_actions(ep))
        learner.update(ep, rec.val_accuracy if rec else 0.0)
        if rec is None:
            invalid += 1
            continue
        invalid = 0
        trace.val.append(rec.val_accuracy)
        trace.test.append(rec.test_accuracy)
    return trace


def _chain_actions(ep: Episode) -> list:
    """An episode's actions without the merged space's start state."""
    return [a for s, a in zip(ep.states, ep.actions) if s != START]


def _reward(bench: mb.MiniBench, spaces: dict[str, ChainSpace]):
    """The reward of a pretraining walk: its cell's validation accuracy on the dataset its task names."""
    def reward(ep: Episode) -> float:
        rec = _query(bench, ep.task, spaces[ep.space], _chain_actions(ep))
        return rec.val_accuracy if rec else 0.0
    return reward


def transfer_search(agent: str, bench: mb.MiniBench, dataset: str, budget: int, seed: int, pretrain: int,
                    sources: Sequence[ChainSpace] = SUBSPACES, **options) -> Trace:
    """Borsos et al. §4.2: a ``agent`` learner trained on ``sources`` (``pretrain`` walks, each drawing a source
    space; task = ``dataset``), then transferred to the full space for ``budget`` trials."""
    learner = Learner(agent, seed=seed, **options)
    train_multitask(learner, [(s, dataset) for s in sources], _reward(bench, {s.name: s for s in sources}), pretrain)
    return agent_search(learner, bench, dataset, budget)


# --------------------------------------------------------------------------------------------------- Fig. 5

FIG5_METHODS = ("transfer", "scratch", "random", "evolution")


def fig5_replica(args: tuple) -> dict[str, Trace]:
    """One replica of `fig5` (a picklable job): every method's trace under the replica's seed."""
    path, dataset, agent, seed, budget, pretrain, population, sample, options = args
    bench = _bench(path)
    return {"transfer": transfer_search(agent, bench, dataset, budget, seed, pretrain, **options),
            "scratch": agent_search(Learner(agent, seed=seed, **options), bench, dataset, budget),
            "random": random_search(bench, dataset, budget, seed),
            "evolution": evolution_search(bench, dataset, budget, seed, population, sample)}


def pool_map(fn, jobs: list, workers: int) -> list:
    """``[fn(job) for job in jobs]``, over ``workers`` processes when more than one (order kept)."""
    if workers <= 1:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, jobs))


def fig5(dataset: str = "fashion", agent: str = "transformer", replicas: int = 50, budget: int = 300,
         pretrain: int = 1000, population: int = 20, sample: int = 4, workers: int = 1,
         path: str | None = None, options: dict | None = None) -> dict:
    """Borsos et al. Fig. 5 on the table: ``replicas`` replicas of transfer, scratch, random search and regularised
    evolution on ``dataset``, summarised by `summarize`. ``options``: the learner's training options (default: the
    agent's defaults)."""
    t0 = time.perf_counter()
    options = dict(options or {})
    jobs = [(path, dataset, agent, r, budget, pretrain, population, sample, options) for r in range(replicas)]
    runs = pool_map(fig5_replica, jobs, workers)
    out = summarize(_bench(path), dataset, {m: [run[m] for run in runs] for m in FIG5_METHODS})
    out.update({"experiment": "fig5", "dataset": dataset, "agent": agent, "options": options,
                "replicas": replicas, "budget": budget,
                "pretrain_walks": pretrain, "evolution": {"population": population, "sample": sample},
                "seconds": round(time.perf_counter() - t0, 1)})
    return out


def _ranked_val(bench: mb.MiniBench, dataset: str) -> np.ndarray:
    return np.sort(bench.val[:, bench.datasets.index(dataset)])[::-1]


def summarize(bench: mb.MiniBench, dataset: str, traces: dict[str, list[Trace]],
              ranks: Sequence[int] = (100, 50, 25, 10),
              checkpoints: Sequence[int] = (10, 25, 50, 100, 200, 300)) -> dict:
    """Per method: median trials (and how many replicas got there) to reach the validation accuracy of the table's
    ``rank``-th best cell, and the mean best validation accuracy, test accuracy of that cell and regret at each
    checkpoint (with the standard error over replicas)."""
    ranked = _ranked_val(bench, dataset)
    best_test = float(bench.test[:, bench.datasets.index(dataset)].max())
    out: dict = {"thresholds": {str(k): round(float(ranked[k - 1]), 4) for k in ranks}, "best_test": best_test,
                 "methods": {}}
    for method, runs in traces.items():
        reach = {}
        for k in ranks:
            hits = [t.trials_to(float(ranked[k - 1])) for t in runs]
            reach[str(k)] = {"median_trials": median_or_none(hits),
                             "reached": sum(not math.isinf(h) for h in hits)}
        curve = {}
        for c in checkpoints:
            bv = [float(t.best_val()[c - 1]) for t in runs if len(t.val) >= c]
            tb = [float(t.test_of_best()[c - 1]) for t in runs if len(t.val) >= c]
            if bv:
                sem = float(np.std(tb, ddof=1) / math.sqrt(len(tb))) if len(tb) > 1 else 0.0
                curve[str(c)] = {"best_val": round(float(np.mean(bv)), 4), "test": round(float(np.mean(tb)), 4),
                                 "regret": round(best_test - float(np.mean(tb)), 4), "regret_sem": round(sem, 4)}
        out["methods"][method] = {"trials_to_rank": reach, "curve": curve, "runs": len(runs)}
    return out


# ------------------------------------------------------------------------------------------ regularised evolution

def tune_evolution(dataset: str = "digits", budget: int = 300, replicas: int = 20,
                   populations: Sequence[int] = (10, 20, 50, 100), samples: Sequence[int] = (2, 4, 8, 16),
                   path: str | None = None) -> dict:
    """Appendix B chose the sample size by the final model of the evolution; so do we, over a grid of population
    and sample sizes, on ``dataset`` and seeds from `TUNING_SEED` (kept apart from the reported replicas): the
    setting with the best mean test accuracy of the final best-by-validation cell wins."""
    bench = _bench(path)
    grid = {}
    for p in populations:
        for s in samples:
            if s > p:
                continue
            finals = [float(evolution_search(bench, dataset, budget, TUNING_SEED + r, p, s).test_of_best()[-1])
                      for r in range(replicas)]
            grid[f"{p}/{s}"] = round(float(np.mean(finals)), 4)
    best = max(grid, key=lambda k: grid[k])
    p, s = (int(x) for x in best.split("/"))
    return {"experiment": "tune-evolution", "dataset": dataset, "budget": budget, "replicas": replicas,
            "grid_mean_final_test": grid, "population": p, "sample": s}


# ----------------------------------------------------------------------------------------------------- Wong

WONG_METHODS = ("transfer", "scratch", "random")


def wong_replica(args: tuple) -> dict[str, Trace]:
    """One replica of `wong` for one held-out dataset (a picklable job)."""
    path, held_out, agent, seed, budget, pretrain, options = args
    bench = _bench(path)
    sources = [d for d in bench.datasets if d != held_out]
    learner = Learner(agent, seed=seed, **options)
    train_multitask(learner, [(FULL, d) for d in sources], _reward(bench, {FULL.name: FULL}), pretrain)
    return {"transfer": agent_search(learner, bench, held_out, budget),
            "scratch": agent_search(Learner(agent, seed=seed, **options), bench, held_out, budget),
            "random": random_search(bench, held_out, budget, seed)}


def wong(agent: str = "lstm", replicas: int = 20, budget: int = 300, pretrain: int = 1000, workers: int = 1,
         path: str | None = None, options: dict | None = None) -> dict:
    """Wong et al.'s held-out transfer on the table, for each dataset in turn held out: median trials until a cell
    among its 10 best (by validation) is found, per method, and the speed-up of transfer over the single-task
    controller."""
    t0 = time.perf_counter()
    bench = _bench(path)
    options = dict(options or {})
    out: dict = {"experiment": "wong", "agent": agent, "options": options, "replicas": replicas, "budget": budget,
                 "pretrain_walks": pretrain, "held_out": {}}
    for held in bench.datasets:
        jobs = [(path, held, agent, r, budget, pretrain, options) for r in range(replicas)]
        runs = pool_map(wong_replica, jobs, workers)
        out["held_out"][held] = summarize(bench, held, {m: [run[m] for run in runs] for m in WONG_METHODS},
                                          ranks=(10,))
        reach = out["held_out"][held]["methods"]
        t, s = reach["transfer"]["trials_to_rank"]["10"], reach["scratch"]["trials_to_rank"]["10"]
        out["held_out"][held]["speedup"] = (round(s["median_trials"] / t["median_trials"], 2)
                                            if t["median_trials"] and s["median_trials"] else None)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


# ------------------------------------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    """``python -m search_backends.transfer.tabular EXPERIMENT``: run one experiment and print its JSON."""
    p = argparse.ArgumentParser(prog="python -m search_backends.transfer.tabular",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("experiment", choices=("fig5", "wong", "tune-evolution"))
    p.add_argument("--dataset", default=None, help="fig5: the dataset searched (default fashion); "
                                                   "tune-evolution: the tuning dataset (default digits)")
    p.add_argument("--agent", default=None, choices=("lstm", "transformer"))
    p.add_argument("--replicas", type=int, default=None)
    p.add_argument("--budget", type=int, default=300, help="trials per search")
    p.add_argument("--pretrain", type=int, default=1000, help="walks of pretraining before transfer")
    p.add_argument("--population", type=int, default=20)
    p.add_argument("--sample", type=int, default=4)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--options", type=json.loads, default=None,
                   help='the learner\'s training options as JSON, e.g. \'{"lr": 0.002, "pqt_weight": 0}\'')
    p.add_argument("--table", default=None, help="the table (default: the shipped minibench.npz)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    if a.experiment == "fig5":
        res = fig5(a.dataset or "fashion", a.agent or "transformer", a.replicas or 50, a.budget, a.pretrain,
                   a.population, a.sample, a.workers, a.table, a.options)
    elif a.experiment == "wong":
        res = wong(a.agent or "lstm", a.replicas or 20, a.budget, a.pretrain, a.workers, a.table, a.options)
    else:
        res = tune_evolution(a.dataset or "digits", a.budget, a.replicas or 20, path=a.table)
    text = json.dumps(res, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
