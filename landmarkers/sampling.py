"""Seeded Monte Carlo sampling of the landmarkers ("benchmark models", paper 002 §2.1 and §3.1.3).

Each landmarker is a :class:`~trautoml.models.spec.ModelSpec` of space ``landmarker``: an architecture
(see :mod:`landmarkers.models`) and SGD hyper-parameters, drawn independently from the ranges in :data:`SPACE`:
uniform over the discrete choices and the momentum, log-uniform over the width, the learning rate and the weight
decay (quantities whose effect is multiplicative), as the paper prescribes.

The paper samples "over the feasible region". Ours is bounded by cost: a draw whose training cost per image on the
largest input a landmarker works at (3×32×32; :func:`landmarkers.models.cost`, MACs plus memory-bound activation
work) exceeds :data:`MAX_COST` is rejected and drawn again (about 6% of draws: the 3-block, stride-1, wide ones).
Rejection keeps the distribution uniform / log-uniform over what is left and bounds the slowest trial of a profile,
so the whole profile fits its time target. Without it one unlucky draw (3 blocks, 32 channels, 5×5, stride 1:
55M MACs, cost 60M) would take as long as 20 typical ones (median cost 1.6M).

Determinism: one ``random.Random(seed)`` per call, no global state; the same seed gives the same specs on every
machine and Python version (``random.Random`` with an int seed is stable), and ``sample_landmarkers(n, seed)`` is
a prefix of ``sample_landmarkers(n + 1, seed)``.
"""
from __future__ import annotations

import math
import random

from trautoml.models.spec import ModelSpec

from .models import REFERENCE_SHAPE, cost

SPACE_NAME = "landmarker"

#: The sampling ranges. ("choice", options) is uniform over the options; ("uniform", lo, hi) and
#: ("loguniform", lo, hi) are continuous; ("logint", lo, hi) is log-uniform over the integers lo..hi.
SPACE: dict[str, tuple] = {
    "depth": ("choice", (1, 2, 3)),
    "width": ("logint", 8, 32),
    "kernel": ("choice", (3, 5)),
    "stride": ("choice", (1, 2)),
    "skip": ("choice", (False, True)),
    "lr": ("loguniform", 0.01, 0.3),
    "weight_decay": ("loguniform", 1e-5, 1e-3),
    "momentum": ("uniform", 0.5, 0.95),
    "batch_size": ("choice", (16, 32, 64)),
}
ARCH_PARAMS = ("depth", "width", "kernel", "stride", "skip")
TRAIN_PARAMS = ("lr", "weight_decay", "momentum", "batch_size")

#: Feasible region: at most this training cost per image (MAC-equivalents, see models.cost) on a 3×32×32 input.
MAX_COST = 10_000_000
_MAX_TRIES = 10_000


def _draw(rng: random.Random, dist: tuple):
    kind = dist[0]
    if kind == "choice":
        return rng.choice(dist[1])
    lo, hi = dist[1], dist[2]
    if kind == "uniform":
        return rng.uniform(lo, hi)
    if kind == "loguniform":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if kind == "logint":  # log-uniform over [lo, hi + 1), floored: every integer in lo..hi is reachable
        return min(hi, int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))
    raise ValueError(f"unknown distribution {dist!r}")


def _round(v):
    return float(f"{v:.4g}") if isinstance(v, float) else v  # short, exact JSON; 4 significant digits are plenty


def sample_one(rng: random.Random, max_cost: float = MAX_COST) -> ModelSpec:
    """One landmarker spec drawn from `SPACE` with ``rng``, redrawn until its training cost on a 3×32×32 input is at
    most ``max_cost``."""
    for _ in range(_MAX_TRIES):
        values = {name: _round(_draw(rng, SPACE[name])) for name in (*ARCH_PARAMS, *TRAIN_PARAMS)}
        arch = {k: values[k] for k in ARCH_PARAMS}
        if cost(arch, REFERENCE_SHAPE) <= max_cost:
            train = {"optimizer": "sgd", **{k: values[k] for k in TRAIN_PARAMS}}
            return ModelSpec(space=SPACE_NAME, arch=arch, train=train)
    raise RuntimeError(f"no landmarker under cost {max_cost} found in {_MAX_TRIES} draws")  # pragma: no cover


def sample_landmarkers(n: int, seed: int = 0, max_cost: float = MAX_COST) -> list[ModelSpec]:
    """``n`` landmarker specs drawn with ``random.Random(seed)``; identical for identical (n, seed)."""
    if int(n) < 1:
        raise ValueError(f"need at least one landmarker, got n={n}")
    rng = random.Random(int(seed))
    return [sample_one(rng, max_cost) for _ in range(int(n))]
