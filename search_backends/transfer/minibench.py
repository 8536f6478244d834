"""A tabular mini-benchmark for search agents, shaped like NAS-Bench-101 (Ying et al. 2019), which Borsos et al.
(2019, §4.2, Fig. 5) use to measure transfer between search spaces with many replicas.

The space. A cell is a DAG over ``N_NODES`` = 5 nodes: node 0 is the input, node 4 the output, nodes 1–3 each
apply one op of `OPS` (3×3 convolution, 1×1 convolution, 3×3 max-pool). A point is chosen by 10 binary edge
choices (i → j for i < j, NAS-Bench-101's upper-triangular adjacency) and 3 op choices: 2¹⁰ × 3³ = 27,648 choice
vectors. As in NAS-Bench-101, nodes on no input→output path are pruned, a cell whose output cannot be reached is
invalid, and isomorphic cells (the same pruned graph with its intermediate nodes relabelled) are one point:
2,559 distinct cells. Because every point is a chain of binary edge choices and op choices, subspaces exist
(for example the cells whose ops are all in {conv3x3, maxpool3x3}).

The network. A 3×3 stem convolution to `CHANNELS` channels with batch norm and ReLU, the cell (an intermediate
node sums its inputs and applies its op; the output sums its inputs; every convolution is conv–BN–ReLU with
`CHANNELS` channels, the pool keeps the size), average pooling to `POOL` × `POOL` and a linear classifier.

The table. Every cell is trained once per dataset of `DATASETS` (fixed seed, `EPOCHS` epochs of Adam on
``TRAIN_IMAGES`` images, batch `BATCH`; 28×28 images are average-pooled to 14×14) and its validation and test
accuracy and training CPU seconds are stored in ``minibench.npz`` beside this module, with the build's settings,
machine, date and seconds. `build` makes it (``python -m search_backends.transfer.minibench --out PATH``); agents
`MiniBench.query` it instead of training, so a replica of a search takes seconds.

The shipped table (2026-12-03, 2-core x86_64): 7,677 trainings, 5,160 training CPU-seconds (0.40 s a cell on
digits, 0.83 s on MNIST, 0.79 s on Fashion-MNIST, medians), 3,171 s wall with 2 workers (for about 9 of those
minutes a landmarker selection ran beside it; on 2 idle cores the CPU seconds give ≈ 2,600 s); 63 KB.
Validation accuracy spans 0.72–1.00 on digits (median 0.95), 0.59–0.94 on MNIST (0.78) and 0.55–0.79 on
Fashion-MNIST (0.70); the three datasets rank the cells differently (correlations 0.37–0.54), so transfer between
them is not trivial.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from dataclasses import dataclass
from typing import Any
from datetime import date
from functools import lru_cache
from pathlib import Path
from collections.abc import Sequence

import numpy as np

__all__ = ["Cell", "cell_net", "DATASETS", "MiniBench", "OPS", "N_NODES", "EDGES", "build", "canonical", "cells",
           "train_cell"]

N_NODES = 5
OPS = ("conv3x3", "conv1x1", "maxpool3x3")
#: The binary edge choices, in NAS-Bench-101's order (row by row of the upper triangle).
EDGES = tuple((i, j) for i in range(N_NODES) for j in range(i + 1, N_NODES))
CHANNELS = 12
EPOCHS = 3
POOL = 2
BATCH = 32
LR = 0.01
TRAIN_IMAGES, VAL_IMAGES, TEST_IMAGES = 1000, 500, 500
#: name → dataset URI (trautoml.data); the builder caps each split to the image counts above.
DATASETS = {"digits": "builtin:digits", "mnist": "builtin:mnist", "fashion": "builtin:fashion-mnist"}
DEFAULT_PATH = Path(__file__).with_name("minibench.npz")


@dataclass(frozen=True)
class Cell:
    """A canonical cell: ``n`` kept nodes (input 0, output n − 1), ``edges`` among them, ``ops`` of nodes
    1 … n − 2."""

    n: int
    edges: tuple[tuple[int, int], ...]
    ops: tuple[str, ...]

    def key(self) -> str:
        """A stable text key (the table's index)."""
        return json.dumps([self.n, [list(e) for e in self.edges], list(self.ops)], separators=(",", ":"))


def _pruned(bits: Sequence[int]) -> list[int] | None:
    """Nodes on an input→output path, or None when the output cannot be reached."""
    on = {e for e, b in zip(EDGES, bits) if b}
    forward = {0}
    for j in range(1, N_NODES):
        if any((i, j) in on for i in forward):
            forward.add(j)
    backward = {N_NODES - 1}
    for i in range(N_NODES - 2, -1, -1):
        if any((i, j) in on for j in backward):
            backward.add(i)
    keep = sorted(forward & backward)
    return keep if 0 in keep and N_NODES - 1 in keep else None


def canonical(bits: Sequence[int], ops: Sequence[str]) -> Cell | None:
    """The canonical cell of a choice vector: ``bits`` for `EDGES` (10 zeros and ones), ``ops`` for nodes 1–3.
    None when the output is unreachable (an invalid point)."""
    if len(bits) != len(EDGES) or len(ops) != N_NODES - 2:
        raise ValueError(f"a point is {len(EDGES)} edge bits and {N_NODES - 2} ops, got {len(bits)} and {len(ops)}")
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        raise ValueError(f"unknown op {unknown[0]!r}; ops: {', '.join(OPS)}")
    keep = _pruned(bits)
    if keep is None:
        return None
    on = [e for e, b in zip(EDGES, bits) if b and e[0] in keep and e[1] in keep]
    mids = keep[1:-1]
    best = None
    for perm in itertools.permutations(mids):  # every topological relabelling of the intermediate nodes; the
        label = {0: 0, N_NODES - 1: len(keep) - 1} | {m: k + 1 for k, m in enumerate(perm)}  # smallest form wins
        if any(label[i] > label[j] for i, j in on):
            continue
        form = (tuple(sorted((label[i], label[j]) for i, j in on)), tuple(ops[m - 1] for m in perm))
        best = form if best is None or form < best else best
    assert best is not None  # the identity relabelling is topological (EDGES run from lower to higher nodes)
    return Cell(len(keep), best[0], best[1])


@lru_cache(maxsize=1)
def cells() -> tuple[Cell, ...]:
    """Every distinct valid cell, sorted by key (2,559)."""
    found: set[Cell] = set()
    for bits in itertools.product((0, 1), repeat=len(EDGES)):
        if _pruned(bits) is None:
            continue
        for ops in itertools.product(OPS, repeat=N_NODES - 2):
            cell = canonical(bits, ops)
            assert cell is not None  # the bits were not pruned away
            found.add(cell)
    return tuple(sorted(found, key=Cell.key))


def _torch():
    import torch
    from torch import nn

    return torch, nn


def cell_net(cell: Cell, in_channels: int, num_classes: int, channels: int = CHANNELS):
    """The network of ``cell`` (a torch module): stem, the cell, average pooling to `POOL` × `POOL`, a linear
    classifier."""
    from torch import nn

    def conv(k):
        return nn.Sequential(nn.Conv2d(channels, channels, k, padding=k // 2, bias=False), nn.BatchNorm2d(channels),
                             nn.ReLU())

    make = {"conv3x3": lambda: conv(3), "conv1x1": lambda: conv(1),
            "maxpool3x3": lambda: nn.MaxPool2d(3, stride=1, padding=1)}

    class _Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(channels), nn.ReLU())
            self.nodes = nn.ModuleList(make[o]() for o in cell.ops)
            self.inputs = [[i for i, j in cell.edges if j == node] for node in range(cell.n)]
            self.head = nn.Linear(channels * POOL * POOL, num_classes)

        def forward(self, x):
            values = [self.stem(x)]
            for node in range(1, cell.n):
                total = sum(values[i] for i in self.inputs[node])
                values.append(self.nodes[node - 1](total) if node < cell.n - 1 else total)
            return self.head(nn.functional.adaptive_avg_pool2d(values[-1], POOL).flatten(1))

    return _Net()


def _prepared(uri: str, seed: int = 0) -> dict:
    """The dataset's splits, capped and (for 28×28 and larger) average-pooled to at most 14×14, as float32."""
    from trautoml.data import load_dataset

    ds = load_dataset(uri)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"num_classes": ds.num_classes}
    for split, cap in (("train", TRAIN_IMAGES), ("val", VAL_IMAGES), ("test", TEST_IMAGES)):
        x, y = ds.split(split)
        idx = rng.permutation(len(y))[:cap]
        x = np.asarray(x[idx], dtype=np.float32)
        while x.shape[-1] > 14:
            h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
            x = x[..., :h, :w].reshape(*x.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))
        out[split] = (x, np.asarray(y[idx], dtype=np.int64))
    return out


def train_cell(cell: Cell, data: dict, seed: int = 0) -> tuple[float, float, float]:
    """Train ``cell`` on ``data`` (from the builder's preparation) with ``seed``: (val accuracy, test accuracy,
    training seconds), on one torch thread. The seconds are that thread's CPU time (`time.thread_time`): the
    training's cost, whatever else the machine runs."""
    torch, nn = _torch()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    x, y = (torch.from_numpy(a) for a in data["train"])
    net = cell_net(cell, x.shape[1], data["num_classes"])
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.thread_time()
    net.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(y), generator=gen)
        for k in range(0, len(y), BATCH):
            b = order[k:k + BATCH]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[b]), y[b]).backward()
            opt.step()
    seconds = time.thread_time() - t0
    net.eval()
    with torch.no_grad():
        acc = [float((net(torch.from_numpy(data[s][0])).argmax(1) == torch.from_numpy(data[s][1])).float().mean())
               for s in ("val", "test")]
    return acc[0], acc[1], seconds


@dataclass(frozen=True)
class Record:
    """One cell on one dataset: validation and test accuracy, training CPU seconds."""

    val_accuracy: float
    test_accuracy: float
    seconds: float


class MiniBench:
    """The table: `query` a cell (or a choice vector) on a dataset. ``path``: the ``.npz`` `build` wrote."""

    def __init__(self, path: str | os.PathLike = DEFAULT_PATH):
        with np.load(path, allow_pickle=False) as z:
            self.keys = [str(k) for k in z["keys"]]
            self.val, self.test, self.seconds = z["val"], z["test"], z["seconds"]
            self.meta = json.loads(str(z["meta"]))
        self.datasets = list(self.meta["datasets"])
        self._row = {k: i for i, k in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)

    def query(self, cell: Cell | None, dataset: str) -> Record | None:
        """The record of ``cell`` on ``dataset`` (None for an invalid point); KeyError for a cell or dataset the
        table does not hold."""
        if cell is None:
            return None
        if dataset not in self.datasets:
            raise KeyError(f"unknown dataset {dataset!r}; the table holds {', '.join(self.datasets)}")
        i, j = self._row[cell.key()], self.datasets.index(dataset)
        return Record(float(self.val[i, j]), float(self.test[i, j]), float(self.seconds[i, j]))

    def query_point(self, bits: Sequence[int], ops: Sequence[str], dataset: str) -> Record | None:
        """`query` of the canonical cell of a choice vector (see `canonical`)."""
        return self.query(canonical(bits, ops), dataset)


def _train_one(args):
    cell, _name, data, seed = args
    return train_cell(cell, data, seed)


def build(out: str | os.PathLike = DEFAULT_PATH, datasets: dict | None = None, workers: int | None = None,
          limit: int | None = None, seed: int = 0, progress=print) -> dict:
    """Train every cell (the first ``limit``, for a quick check) on every dataset of ``datasets`` (name → URI;
    default `DATASETS`) over ``workers`` processes, and write the table to ``out``. Returns its metadata."""
    from concurrent.futures import ProcessPoolExecutor

    datasets = dict(datasets or DATASETS)
    todo = list(cells())[:limit]
    prepared = {name: _prepared(uri, seed) for name, uri in datasets.items()}
    val = np.zeros((len(todo), len(datasets)), np.float32)
    test, secs = np.zeros_like(val), np.zeros_like(val)
    t0 = time.perf_counter()
    jobs = [(i, j, (c, name, prepared[name], seed)) for j, name in enumerate(datasets) for i, c in enumerate(todo)]
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        for n, ((i, j, _), res) in enumerate(zip(jobs, pool.map(_train_one, [a for _, _, a in jobs], chunksize=16)),
                                             1):
            val[i, j], test[i, j], secs[i, j] = res
            if n % 250 == 0 or n == len(jobs):
                progress(f"minibench: {n}/{len(jobs)} trainings, {time.perf_counter() - t0:.0f} s")
    meta = {"datasets": list(datasets), "uris": datasets, "cells": len(todo), "ops": list(OPS), "nodes": N_NODES,
            "channels": CHANNELS, "pool": POOL, "epochs": EPOCHS, "batch": BATCH, "lr": LR, "seed": seed,
            "training_cpu_seconds": round(float(secs.sum()), 1),
            "images": {"train": TRAIN_IMAGES, "val": VAL_IMAGES, "test": TEST_IMAGES},
            "build_seconds": round(time.perf_counter() - t0, 1), "workers": workers or os.cpu_count(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": date.today().isoformat()}
    np.savez_compressed(out, keys=np.array([c.key() for c in todo]), val=val, test=test, seconds=secs,
                        meta=np.array(json.dumps(meta)))
    return meta


def main(argv: list[str] | None = None) -> int:
    """``python -m search_backends.transfer.minibench``: build the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEFAULT_PATH))
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="only the first N cells (a quick check)")
    args = p.parse_args(argv)
    meta = build(args.out, workers=args.workers, limit=args.limit)
    print(json.dumps(meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
