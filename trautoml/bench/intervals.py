"""Intervals for the stream benchmark's two numbers, and the rule that says when one row beats another.

A row's results are matrices over (stream orders × datasets): each dataset's relative test error against the
reference (the mean of K standalone seeds) and its cost. The uncertainty that matters is which datasets happened
to be in the stream and which orders happened to be drawn, so the intervals are a two-way bootstrap: each draw
resamples the orders and, independently, the datasets, with replacement, and recomputes

* TRE: the mean relative error over the drawn cells (paper 002 §3.1.2's TRE, averaged over orders);
* the cost ratio: per drawn order, the row's cost of the drawn datasets over the reference's cost of the same
  datasets, averaged over the drawn orders.

A 95 % percentile interval is reported. Two rows are compared *paired*: the same draws for both, so the interval
of the difference carries the datasets' shared difficulty only once. A row beats another on a number only where
that difference's interval lies wholly below 0 (both numbers are better when lower).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DRAWS = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate and its ``LEVEL`` bootstrap interval [low, high]."""
    value: float
    low: float
    high: float

    def excludes_zero_below(self) -> bool:
        """The whole interval is below 0: a difference that says "lower"."""
        return self.high < 0.0

    def disjoint(self, other: Interval) -> bool:
        """The two intervals do not overlap."""
        return self.high < other.low or other.high < self.low

    def to_dict(self) -> dict:
        """[value, low, high] as a plain dict."""
        return {"value": self.value, "low": self.low, "high": self.high}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _draws(n_orders: int, n_datasets: int, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(n_orders, size=(draws, n_orders)), rng.integers(n_datasets, size=(draws, n_datasets))


def _as_matrix(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 2 or 0 in a.shape or not np.isfinite(a).all():
        raise ValueError(f"{name} must be a finite orders × datasets matrix, got shape {a.shape}")
    return a


def _tre(rel: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """TRE of every draw: the mean of rel over the drawn orders (rows) and datasets (columns)."""
    return np.array([rel[np.ix_(oi, di)].mean() for oi, di in zip(o, d)])


def _ratio(cost: np.ndarray, reference: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Cost ratio of every draw: per drawn order Σ cost / Σ reference over the drawn datasets, mean over orders."""
    return np.array([(cost[np.ix_(oi, di)].sum(axis=1) / reference[di].sum()).mean() for oi, di in zip(o, d)])


def _interval(value: float, samples: np.ndarray) -> Interval:
    tail = (1.0 - LEVEL) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high))


def tre_interval(rel, draws: int = DRAWS, seed: int = 0) -> Interval:
    """TRE (mean over orders and datasets of ``rel``, an orders × datasets matrix) and its bootstrap interval."""
    rel = _as_matrix(rel, "relative errors")
    n_orders, n_datasets = rel.shape
    o, d = _draws(n_orders, n_datasets, draws, seed)
    return _interval(rel.mean(), _tre(rel, o, d))


def ratio_interval(cost, reference, draws: int = DRAWS, seed: int = 0) -> Interval:
    """The cost ratio against the reference (``cost``: orders × datasets; ``reference``: per dataset) and its
    bootstrap interval."""
    cost = _as_matrix(cost, "costs")
    ref = np.asarray(reference, dtype=float)
    if ref.shape != (cost.shape[1],) or not (ref > 0).all():
        raise ValueError(f"the reference needs one positive cost per dataset ({cost.shape[1]}), got {ref.shape}")
    n_orders, n_datasets = cost.shape
    o, d = _draws(n_orders, n_datasets, draws, seed)
    return _interval((cost.sum(axis=1) / ref.sum()).mean(), _ratio(cost, ref, o, d))


def paired_tre_difference(rel_a, rel_b, draws: int = DRAWS, seed: int = 0) -> Interval:
    """TRE(a) − TRE(b) over the same draws of orders and datasets (both orders × datasets, same datasets in the
    same columns; a row with fewer orders, a standalone one, is compared on its own orders)."""
    a, b = _as_matrix(rel_a, "relative errors"), _as_matrix(rel_b, "relative errors")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the two rows must cover the same datasets, got {a.shape[1]} and {b.shape[1]}")
    rng = np.random.default_rng(seed)
    d = rng.integers(a.shape[1], size=(draws, a.shape[1]))
    oa, ob = rng.integers(a.shape[0], size=(draws, a.shape[0])), rng.integers(b.shape[0], size=(draws, b.shape[0]))
    samples = _tre(a, oa, d) - _tre(b, ob, d)
    return _interval(a.mean() - b.mean(), samples)


def paired_ratio_difference(cost_a, cost_b, reference, draws: int = DRAWS, seed: int = 0) -> Interval:
    """ratio(a) − ratio(b) over the same draws of datasets (orders drawn for each row's own orders)."""
    a, b = _as_matrix(cost_a, "costs"), _as_matrix(cost_b, "costs")
    ref = np.asarray(reference, dtype=float)
    rng = np.random.default_rng(seed)
    d = rng.integers(a.shape[1], size=(draws, a.shape[1]))
    oa, ob = rng.integers(a.shape[0], size=(draws, a.shape[0])), rng.integers(b.shape[0], size=(draws, b.shape[0]))
    samples = _ratio(a, ref, oa, d) - _ratio(b, ref, ob, d)
    value = (a.sum(axis=1) / ref.sum()).mean() - (b.sum(axis=1) / ref.sum()).mean()
    return _interval(value, samples)
