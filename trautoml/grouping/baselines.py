"""Baseline groupers the paper compares MH with (paper 002 §3.1.1, Table 2).

Same interface as :class:`~trautoml.grouping.markov.MarkovBFGrouper`: ``observe(trials)`` → :class:`Assignment`,
``groups()``, ``labels()``, ``n_observed``, ``to_dict()`` / ``from_dict()``. ``trials`` is a T × B landmarker
matrix or a length-B vector; the baselines only use its mean over rows (for :class:`MetaFeatureGrouper` the
row(s) are statistical meta-features instead of landmarker accuracies). They run no test: a new group is reported
as ``"empty-cluster"``, a join as ``"test-accepted"`` (see :mod:`.base`), with the rule's numbers in ``note`` and
``extra``. Groups are never revised once decided, since the decision step acts on each assignment at once.

* :class:`RandomGrouper`: random grouping. With ``n_groups`` each dataset gets one of ``n_groups`` labels
  uniformly at random (a label's first use founds its group); without, a dataset founds a new group with
  probability ``p_new`` and otherwise joins a uniformly random existing group.
* :class:`KMeansGrouper`: k-means with k given (the paper sets k = the number of raw source datasets; the default
  7 is the paper's count, set it to your stream's). Online
  reading: at each arrival, k-means (k-means++ seeding, seeded, best of ``n_init`` Lloyd runs) is refit on the
  mean vectors of *all* datasets seen so far, the new one included, with min(k, distinct points) clusters. If the
  new dataset's k-means cluster holds earlier datasets, it joins the group most of them belong to (ties: the
  earliest founded); if it is alone in its cluster, it founds a group. So the first min(k, ·) distinct datasets
  each found a group, as offline k-means would give them each a cluster, and later ones found a group only when
  the refit isolates them. A refit per arrival costs O(n·k) per Lloyd step: fine for the paper's streams (tens to
  hundreds of datasets; 500 arrivals take a few seconds in all).
* :class:`SequentialKMeansGrouper`: MacQueen's sequential k-means (running-mean centre updates) with the leader /
  online DP-means rule for opening clusters (Hartigan 1975; Kulis & Jordan 2012): join the nearest centre when its
  RMS distance ‖x − μ‖/√B is at most ``threshold`` (accuracy units, independent of B), else open a new cluster
  at x. Chosen because it is the natural online k-means that needs no k in advance, and its one knob is on the
  same scale as the data (default 0.05: groups 0.1 apart split, trial noise of 0.01–0.02 does not).
* :class:`MetaFeatureGrouper`: the auto-sklearn-style baseline (Feurer et al. 2015): statistical meta-features
  (:mod:`trautoml.data.metafeatures`), standardised online: each feature is divided by its standard deviation
  over all vectors seen so far, the new one included (distances need no centring), floored at ``rel_floor``
  (0.1) of the feature's mean magnitude. Without the floor a stream's first few datasets can never join: with two
  vectors every differing feature is exactly 2 standard deviations apart, whatever the difference (a half
  subsample of digits founded its own group); with the floor a difference under a tenth of a feature's size counts
  as under one unit. The dataset joins the group of its
  nearest earlier dataset when their RMS standardised distance is at most ``threshold`` (default 0.5), else it
  founds a group. Nearest *neighbour* rather than nearest centre, as auto-sklearn looks up the nearest earlier
  dataset.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .base import Assignment, Grouper, rng_from_state, rng_state


class _MeanGrouper(Grouper):
    """Keeps the mean vector of every dataset seen."""

    def __init__(self) -> None:
        super().__init__()
        self._xs: list[np.ndarray] = []

    def params(self) -> dict:  # pragma: no cover - every subclass overrides
        """The constructor's arguments, as plain JSON."""
        raise NotImplementedError

    def _point(self, trials) -> np.ndarray:
        a = self._check(trials)
        if self.dim is None:
            self.dim = a.shape[1]
        return a.mean(axis=0)

    def _state(self) -> dict:
        return {**self._base_state(), "params": self.params(), "points": [x.tolist() for x in self._xs]}

    def _restore(self, d: dict) -> None:
        self._restore_base(d)
        self._xs = [np.array(x, dtype=np.float64) for x in d["points"]]

    def to_dict(self) -> dict:
        return self._state()

    @classmethod
    def from_dict(cls, d: dict):
        self = cls(**d["params"])
        self._restore(d)
        return self


class RandomGrouper(_MeanGrouper):
    """Random grouping (see the module doc). ``n_groups``: draw each dataset's label among this many (None: found a new
    group with probability ``p_new``, else join a random existing one); ``seed``: the generator's seed."""

    name = "random"

    def __init__(self, n_groups: int | None = None, p_new: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        if n_groups is not None and n_groups < 1:
            raise ValueError(f"n_groups must be ≥ 1, got {n_groups}")
        if not 0.0 <= p_new <= 1.0:
            raise ValueError(f"p_new must be in [0, 1], got {p_new}")
        self.n_groups_max, self.p_new, self.seed = n_groups, float(p_new), int(seed)
        self.rng = np.random.default_rng(seed)
        self._label_group: dict[int, int] = {}   # label → group index (n_groups mode)

    def params(self) -> dict:
        """The constructor's arguments (saved with the state)."""
        return {"n_groups": self.n_groups_max, "p_new": self.p_new, "seed": self.seed}

    def observe(self, trials) -> Assignment:
        """Assign the dataset with trial matrix ``trials`` (T × B, or a length-B vector) to a group, for good: at
        random."""
        self._xs.append(self._point(trials))
        if self.n_groups_max is not None:
            label = int(self.rng.integers(self.n_groups_max))
            g = self._label_group.setdefault(label, self.n_groups)
            note = f"random label {label + 1} of {self.n_groups_max}"
        elif self.n_groups == 0 or self.rng.random() < self.p_new:
            g, note = self.n_groups, f"new group with probability {self.p_new:g}"
        else:
            g = int(self.rng.integers(self.n_groups))
            note = f"random existing group (p_new = {self.p_new:g})"
        return self._assignment(g, note)

    def to_dict(self) -> dict:
        return {**self._state(), "rng": rng_state(self.rng),
                "label_group": [[k, v] for k, v in self._label_group.items()]}

    @classmethod
    def from_dict(cls, d: dict) -> RandomGrouper:
        self = cls(**d["params"])
        self._restore(d)
        self.rng = rng_from_state(d["rng"])
        self._label_group = {int(k): int(v) for k, v in d["label_group"]}
        return self


class GivenGrouper(_MeanGrouper):
    """The oracle: the true grouping, given. ``labels``: each dataset's family in arrival order; the k-th dataset
    observed joins the group of the first earlier dataset with its label, or founds one. The benchmark's ``oracle``
    row (the best any grouping can do, paper 002 §3.1.2's comparison turned into an upper anchor) and a known
    answer for tests. Observing more datasets than labels is a ValueError."""

    name = "given"

    def __init__(self, labels: Sequence[str] = ()) -> None:
        super().__init__()
        self.given = [str(x) for x in labels]
        self._label_group: dict[str, int] = {}

    def params(self) -> dict:
        """The constructor's arguments (saved with the state)."""
        return {"labels": self.given}

    def observe(self, trials) -> Assignment:
        """Assign the next dataset to its given family's group (founding it on the family's first dataset)."""
        if self.n_observed >= len(self.given):
            raise ValueError(f"the given grouping names {len(self.given)} datasets; this is dataset "
                             f"{self.n_observed + 1}")
        label = self.given[self.n_observed]
        self._xs.append(self._point(trials))
        g = self._label_group.setdefault(label, self.n_groups)
        return self._assignment(g, f"given family {label!r}")

    def to_dict(self) -> dict:
        return {**self._state(), "label_group": [[k, v] for k, v in self._label_group.items()]}

    @classmethod
    def from_dict(cls, d: dict) -> GivenGrouper:
        self = cls(**d["params"])
        self._restore(d)
        self._label_group = {str(k): int(v) for k, v in d["label_group"]}
        return self


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 4,
           max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding; the best (lowest inertia) of ``n_init`` runs: (labels, centres).

    Requires k ≤ the number of distinct points. An empty cluster (rare with k-means++) is re-seeded at the point
    farthest from its centre.
    """
    if n_init < 1:
        raise ValueError(f"kmeans: n_init must be at least 1, got {n_init}")
    n = len(points)
    best = None
    for _ in range(n_init):
        centres = np.empty((k, points.shape[1]))
        centres[0] = points[rng.integers(n)]
        d2 = ((points - centres[0]) ** 2).sum(axis=1)
        for j in range(1, k):
            total = d2.sum()
            i = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
            centres[j] = points[i]
            d2 = np.minimum(d2, ((points - centres[j]) ** 2).sum(axis=1))
        labels = np.full(n, -1)
        for _ in range(max_iter):
            dist = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
            new = dist.argmin(axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                mask = labels == j
                if mask.any():
                    centres[j] = points[mask].mean(axis=0)
                else:
                    far = int(dist[np.arange(n), labels].argmax())
                    centres[j] = points[far]
                    labels[far] = j
        inertia = float(((points - centres[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels.copy(), centres.copy())
    assert best is not None  # n_init ≥ 1 runs
    return best[1], best[2]


class KMeansGrouper(_MeanGrouper):
    """k-means refit at each arrival (see the module doc). ``k``: the number of clusters; ``seed``: the generator's
    seed; ``n_init``: Lloyd runs per refit, the best kept."""

    name = "kmeans"

    def __init__(self, k: int = 7, seed: int = 0, n_init: int = 4) -> None:
        super().__init__()
        if int(k) != k or k < 1:
            raise ValueError(f"k must be an integer ≥ 1, got {k}")
        self.k, self.seed, self.n_init = int(k), int(seed), int(n_init)
        self.rng = np.random.default_rng(seed)

    def params(self) -> dict:
        """The constructor's arguments (saved with the state)."""
        return {"k": self.k, "seed": self.seed, "n_init": self.n_init}

    def observe(self, trials) -> Assignment:
        """Assign the dataset with trial matrix ``trials`` (T × B, or a length-B vector) to a group, for good: the group
        most of its k-means cluster mates belong to, or a new one when it is alone in its cluster."""
        self._xs.append(self._point(trials))
        points = np.array(self._xs)
        k = min(self.k, len(np.unique(points, axis=0)))
        labels, _ = kmeans(points, k, self.rng, n_init=self.n_init)
        mates = [self._labels[i] for i in np.flatnonzero(labels[:-1] == labels[-1])]
        if mates:
            counts = np.bincount(mates)
            g = int(counts.argmax())                    # most common group; ties → earliest founded
            note = f"its k-means cluster (k = {k}) holds {len(mates)} earlier dataset(s), {counts[g]} in this group"
        else:
            g, note = self.n_groups, f"alone in its k-means cluster (k = {k})"
        return self._assignment(g, note, k=k)

    def to_dict(self) -> dict:
        return {**self._state(), "rng": rng_state(self.rng)}

    @classmethod
    def from_dict(cls, d: dict) -> KMeansGrouper:
        self = cls(**d["params"])
        self._restore(d)
        self.rng = rng_from_state(d["rng"])
        return self


class SequentialKMeansGrouper(_MeanGrouper):
    """Sequential k-means with the leader rule (see the module doc). ``threshold``: the RMS distance to the nearest
    centre up to which a dataset joins that centre's group."""

    name = "seq-kmeans"

    def __init__(self, threshold: float = 0.05) -> None:
        super().__init__()
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.threshold = float(threshold)
        self._centres: list[np.ndarray] = []

    def params(self) -> dict:
        """The constructor's arguments (saved with the state)."""
        return {"threshold": self.threshold}

    def observe(self, trials) -> Assignment:
        """Assign the dataset with trial matrix ``trials`` (T × B, or a length-B vector) to a group, for good: the group
        of the nearest centre within ``threshold`` (its centre moves to the members' mean), else a new group centred on
        it."""
        x = self._point(trials)
        self._xs.append(x)
        if self._centres:
            c = np.array(self._centres)
            dist = np.sqrt(((c - x) ** 2).mean(axis=1))
            g = int(dist.argmin())
            dmin = float(dist[g])
        else:
            g, dmin = -1, math.inf
        if dmin <= self.threshold:
            n = len(self._members[g]) + 1
            self._centres[g] = self._centres[g] + (x - self._centres[g]) / n   # MacQueen's running mean
            note = f"nearest centre at RMS distance {dmin:.3g} ≤ {self.threshold:g}"
        else:
            g = self.n_groups
            self._centres.append(x.copy())
            note = ("first dataset" if dmin == math.inf
                    else f"nearest centre at RMS distance {dmin:.3g} > {self.threshold:g}")
        return self._assignment(g, note, distance=None if dmin == math.inf else dmin)

    def to_dict(self) -> dict:
        return {**self._state(), "centres": [c.tolist() for c in self._centres]}

    @classmethod
    def from_dict(cls, d: dict) -> SequentialKMeansGrouper:
        self = cls(**d["params"])
        self._restore(d)
        self._centres = [np.array(c, dtype=np.float64) for c in d["centres"]]
        return self


class NoGrouping(_MeanGrouper):
    """Every dataset founds a group of its own, so every dataset is searched: "standalone" (002 §3.1's e*) as a
    grouper a user can pick (``grouper="none"``). It needs no features: no profile is made for it."""

    name = "none"

    def params(self) -> dict:
        """No parameters: an empty dict (saved with the state)."""
        return {}

    def observe(self, trials) -> Assignment:
        """Check ``trials`` (T × B, or a length-B vector) and found a new group for the dataset."""
        self._check(trials)  # whatever it is given must still be a well-formed profile
        return self._assignment(self.n_groups, "no grouping: every dataset is searched")


class MetaFeatureGrouper(_MeanGrouper):
    """Nearest earlier dataset by standardised meta-features (see the module doc). ``threshold``: the RMS standardised
    distance up to which a dataset joins its nearest neighbour's group."""

    name = "metafeatures"
    REL_FLOOR = 0.1  # a feature's scale is at least this fraction of its mean magnitude (see the module doc)

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.threshold = float(threshold)

    def params(self) -> dict:
        """The constructor's arguments (saved with the state)."""
        return {"threshold": self.threshold}

    def observe(self, trials) -> Assignment:
        """Assign the dataset with meta-feature rows ``trials`` (a length-B vector, or rows averaged into one) to a
        group, for good: its nearest earlier dataset's group within ``threshold``, else a new one."""
        x = self._point(trials)
        self._xs.append(x)
        if len(self._xs) == 1:
            return self._assignment(self.n_groups, "first dataset")
        points = np.array(self._xs)
        sd = np.maximum(points.std(axis=0), self.REL_FLOOR * np.abs(points).mean(axis=0))
        sd[sd == 0.0] = 1.0                              # constant zero so far: every difference is 0 anyway
        z = points / sd
        dist = np.sqrt(((z[:-1] - z[-1]) ** 2).mean(axis=1))
        j = int(dist.argmin())
        dmin = float(dist[j])
        if dmin <= self.threshold:
            g = self._labels[j]
            note = f"nearest earlier dataset #{j} at standardised RMS distance {dmin:.3g} ≤ {self.threshold:g}"
        else:
            g = self.n_groups
            note = f"nearest earlier dataset #{j} at standardised RMS distance {dmin:.3g} > {self.threshold:g}"
        return self._assignment(g, note, distance=dmin, neighbour=j)
