"""Profile a dataset with the landmarkers (paper 002 §2.1): a T×B matrix of validation accuracies.

Each of the B landmarkers is trained T times on the dataset, every trial with its own seed and its own small random
draw of training and validation images; x = the mean over the trials (length B) is the dataset's meta-feature vector,
and the T rows are the trial vectors the grouping's covariance and the Behrens–Fisher test use.

Budget (:class:`ProfileBudget`, defaults 1 epoch over at most 1,024 training images, accuracy on at most 1,000
validation images). The paper only asks for "a small, fixed training budget"; we fix it in *images*, not epochs
over the whole split, for three reasons:

* cost: a profile costs the same for 1,000 or 60,000 training images (Fashion-MNIST, B = 6, T = 8: 25–35 s on 2
  CPU cores, see bench/bench_profile.py), and it is pure overhead in the paper's total-search-time metric;
* meaning: the paper groups a dataset with its 50% subset (Table 1: mnist 1.0 with mnist 0.5, ...) and reuses one
  model for both. With a fixed image budget both are probed by the same experiment (their profiles differ only by
  sampling noise), whereas epochs over the full split would make the subset look harder simply for being smaller.
  What the profile measures is how each landmarker copes with the *content* of the dataset;
* statistics: each trial draws its own images (seeded), so the trial-to-trial spread includes the sampling noise
  of the small subsets; a fixed subset would bias the mean by an amount the T trials cannot see, and the grouping's
  test would then wrongly tell a dataset from its own subset. 1,000 validation images bound the binomial noise of
  one accuracy at ~1.6 points; averaging T = 8 trials brings the mean's noise below a point.

1,024 images for 1 epoch is 16–64 SGD steps (batch 16–64): enough for the landmarkers to reach clearly different,
dataset-dependent accuracies (the default six: 0.23–0.72 on Fashion-MNIST, 0.25–0.94 on sklearn digits), which
is all a profile needs. Datasets smaller than the caps use all their images.

Parallelism: the T×B trials are independent tasks for a :mod:`trautoml.executor` (default: a local process pool
over ``os.cpu_count()`` cores). The parent draws each trial's subsets and ships only those small arrays (inputs
larger than 32×32 are average-pooled to the landmarkers' working size first, exactly as the landmarker would do
it), never the full dataset. Each task trains on one CPU thread and derives everything from its own seed, so the
matrix is identical whatever the executor (serial, process pool, or another engine). Trial seeds are derived from
(seed, trial, model) with :class:`numpy.random.SeedSequence`. Since neither the seeds nor the specs depend on B
(``sample_landmarkers`` lists are prefixes of longer ones), the first b columns of a B-landmarker profile are
exactly the b-landmarker profile: sweeps over B can slice one profile.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from collections.abc import Callable, Sequence

import numpy as np

from trautoml.data.dataset import Dataset
from trautoml.models.spec import ModelSpec

from .models import cost as model_cost
from .models import shrink_array
from .sampling import sample_landmarkers
from .landmarker_set import load_selected

#: The seed of the Monte Carlo draws (paper 002 §2.1) the selection starts from (`landmarkers.selection`).
LANDMARKER_SEED = 0
_SELECTED = load_selected()
#: The landmarkers are fixed once per installation: the set `landmarkers.selection` chose (``selected.json``), by
#: version; without that file, the Monte Carlo draws of `LANDMARKER_SEED`. A workspace records it.
LANDMARKER_SET = _SELECTED[0] if _SELECTED else f"monte-carlo-{LANDMARKER_SEED}"


def landmarker_specs(n: int) -> list[ModelSpec]:
    """The first ``n`` landmarkers of the installation's set (`LANDMARKER_SET`); ValueError when the set holds
    fewer."""
    if _SELECTED is None:
        return sample_landmarkers(int(n), LANDMARKER_SEED)
    specs = _SELECTED[1]
    if not 1 <= int(n) <= len(specs):
        raise ValueError(f"the landmarker set {LANDMARKER_SET} holds {len(specs)} landmarkers, B = {n} asked; pass "
                         "specs= or select more with `python -m landmarkers.selection`")
    return list(specs[:int(n)])
DEFAULT_MODELS = 6
DEFAULT_TRIALS = 8

_TAG_DATA, _TAG_TRAIN = 1, 2  # keep the data-draw and training seed streams apart


@dataclass(frozen=True)
class ProfileBudget:
    """The fixed training budget of one landmarker trial (see the module docstring for the choice)."""

    epochs: float = 1.0
    max_train: int | None = 1024
    max_eval: int | None = 1000

    def __post_init__(self) -> None:
        if not self.epochs > 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        for name in ("max_train", "max_eval"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ValueError(f"{name} must be a positive count or None, got {v}")

    def to_dict(self) -> dict:
        """The budget as plain JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ProfileBudget:
        """The budget `to_dict` wrote (``d``; missing fields take their defaults)."""
        return cls(**d)


@dataclass
class Profile:
    """The T×B landmarker accuracies of one dataset.

    ``trials[t, b]`` is the validation accuracy of landmarker ``specs[b]`` in trial ``t``; ``wall_seconds[t, b]``
    the time that trial took (build, train, evaluate) where it ran; ``total_seconds`` the wall clock of the whole
    profile, parallelism included; ``checkpoints`` the pairs (trials, wall seconds so far) after each call of
    `profile` that made it (one pair for a profile made at once, one per look for a profile extended by `extend`);
    ``flops[t, b]`` that trial's training FLOPs (`trautoml.models.flops`), None in a profile stored before FLOPs
    were counted (`with_flops` counts them).
    """

    trials: np.ndarray
    specs: list[ModelSpec]
    wall_seconds: np.ndarray
    total_seconds: float
    seed: int
    budget: ProfileBudget = field(default_factory=ProfileBudget)
    dataset: str | None = None
    checkpoints: list = field(default_factory=list)
    flops: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.trials = np.asarray(self.trials, dtype=np.float64)
        self.wall_seconds = np.asarray(self.wall_seconds, dtype=np.float64)
        if self.flops is not None:
            self.flops = np.asarray(self.flops, dtype=np.float64)
            if self.flops.shape != self.trials.shape:
                raise ValueError(f"flops shape {self.flops.shape} != trials shape {self.trials.shape}")
        if self.trials.ndim != 2 or self.trials.shape[1] != len(self.specs):
            raise ValueError(f"trials must be T x B with B = {len(self.specs)} specs, got shape {self.trials.shape}")
        if self.wall_seconds.shape != self.trials.shape:
            raise ValueError(f"wall_seconds shape {self.wall_seconds.shape} != trials shape {self.trials.shape}")
        self.checkpoints = [(int(n), float(s)) for n, s in self.checkpoints] or [(self.n_trials, self.total_seconds)]

    def extend(self, more: Profile) -> Profile:
        """This profile followed by ``more``, the next trials of the same dataset under the same landmarkers (made by
        `profile` with ``first_trial`` = this profile's T); the seconds add up."""
        if [s.to_dict() for s in more.specs] != [s.to_dict() for s in self.specs] or more.seed != self.seed:
            raise ValueError("a profile extends only with trials of the same landmarkers and seed")
        total = self.total_seconds + more.total_seconds
        return Profile(trials=np.vstack([self.trials, more.trials]), specs=self.specs,
                       wall_seconds=np.vstack([self.wall_seconds, more.wall_seconds]), total_seconds=total,
                       seed=self.seed, budget=self.budget, dataset=self.dataset,
                       checkpoints=[*self.checkpoints, (self.n_trials + more.n_trials, total)],
                       flops=None if self.flops is None or more.flops is None else np.vstack([self.flops, more.flops]))

    def head(self, n: int) -> Profile:
        """The first ``n`` trials, with the wall seconds they took: measured when a call of `profile` ended there (a
        checkpoint), otherwise the whole profile's seconds times the first n trials' share of the trials' seconds."""
        if not 1 <= n <= self.n_trials:
            raise ValueError(f"a profile of {self.n_trials} trials has no head of {n}")
        if n == self.n_trials:
            return self
        done = [(k, s) for k, s in self.checkpoints if k <= n]
        at = dict(done)
        if n in at:
            seconds = at[n]
        else:
            share = self.wall_seconds[:n].sum() / max(self.wall_seconds.sum(), 1e-12)
            seconds = self.total_seconds * float(share)
        return Profile(trials=self.trials[:n], specs=self.specs, wall_seconds=self.wall_seconds[:n],
                       total_seconds=seconds, seed=self.seed, budget=self.budget, dataset=self.dataset,
                       checkpoints=done if n in at else [*done, (n, seconds)],
                       flops=None if self.flops is None else self.flops[:n])

    @property
    def total_flops(self) -> float | None:
        """The training FLOPs of all its trials (None for a profile stored before FLOPs were counted)."""
        return None if self.flops is None else float(self.flops.sum())

    @property
    def n_trials(self) -> int:
        """T, the number of trials (rows of ``trials``)."""
        return int(self.trials.shape[0])

    @property
    def n_models(self) -> int:
        """B, the number of landmarkers (columns of ``trials``)."""
        return int(self.trials.shape[1])

    @property
    def mean(self) -> np.ndarray:
        """The meta-feature vector x: mean accuracy of each landmarker over the trials (length B)."""
        return self.trials.mean(axis=0)

    @property
    def covariance(self) -> np.ndarray:
        """The trials' scatter (1/T)·Σ_t (x_t − x)(x_t − x)ᵀ (B×B), the covariance a new cluster starts from
        (002 §2.2)."""
        d = self.trials - self.mean
        return d.T @ d / self.n_trials

    def to_dict(self) -> dict:
        """The profile as plain JSON, its ``mean`` included."""
        return {
            "trials": self.trials.tolist(),
            "mean": self.mean.tolist(),
            "specs": [s.to_dict() for s in self.specs],
            "wall_seconds": self.wall_seconds.tolist(),
            "total_seconds": float(self.total_seconds),
            "seed": int(self.seed),
            "budget": self.budget.to_dict(),
            "dataset": self.dataset,
            "checkpoints": [list(c) for c in self.checkpoints],
            "flops": None if self.flops is None else self.flops.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        """The profile `to_dict` wrote (``d``)."""
        return cls(trials=np.asarray(d["trials"], dtype=np.float64),
                   specs=[ModelSpec.from_dict(s) for s in d["specs"]],
                   wall_seconds=np.asarray(d["wall_seconds"], dtype=np.float64),
                   total_seconds=float(d["total_seconds"]), seed=int(d["seed"]),
                   budget=ProfileBudget.from_dict(d.get("budget", {})), dataset=d.get("dataset"),
                   checkpoints=d.get("checkpoints", []), flops=d.get("flops"))

    def to_json(self) -> str:
        """`to_dict` as JSON text (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> Profile:
        """The profile `to_json` wrote (``s``)."""
        return cls.from_dict(json.loads(s))


def trial_seed(seed: int, trial: int, model: int) -> int:
    """The training seed of landmarker ``model`` in trial ``trial`` (stable across machines and versions)."""
    return int(np.random.SeedSequence([int(seed), _TAG_TRAIN, int(trial), int(model)]).generate_state(1)[0])


def _draw(x: np.ndarray, y: np.ndarray, cap: int | None, rng: np.random.Generator):
    if cap is None or len(y) <= cap:
        return x, y
    idx = np.sort(rng.choice(len(y), size=int(cap), replace=False))
    return x[idx], y[idx]


def trial_dataset(dataset: Dataset, seed: int, trial: int, budget: ProfileBudget) -> Dataset:
    """The small dataset trial ``trial`` trains and validates on: its own seeded draw of at most ``max_train``
    training and ``max_eval`` validation images, shrunk to the landmarkers' working size. A profile never reads the
    test split; the returned test split is one validation image, only to keep the :class:`Dataset` valid."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _TAG_DATA, int(trial)]))
    x_tr, y_tr = _draw(dataset.x_train, dataset.y_train, budget.max_train, rng)
    x_va, y_va = _draw(dataset.x_val, dataset.y_val, budget.max_eval, rng)
    x_tr, x_va = shrink_array(np.ascontiguousarray(x_tr)), shrink_array(np.ascontiguousarray(x_va))
    if len(np.unique(y_tr)) < 2:  # a tiny draw from a very unbalanced split; fall back to the whole split
        x_tr, y_tr = shrink_array(dataset.x_train), dataset.y_train
    y_tr, y_va = np.ascontiguousarray(y_tr), np.ascontiguousarray(y_va)
    return Dataset(name=f"{dataset.name}#profile{trial}", x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va,
                   x_test=x_va[:1], y_test=y_va[:1], num_classes=dataset.num_classes, family=dataset.family)


def with_flops(profile: Profile, dataset: Dataset) -> Profile:
    """``profile`` (of ``dataset``) with its trials' FLOPs: as measured, or, for a profile stored before FLOPs were
    counted, what each trial's training counts (`trautoml.models.train.planned_flops`, on the trial's own draw of
    images; nothing is trained)."""
    if profile.flops is not None:
        return profile
    from trautoml.models.train import planned_flops

    counted = [[planned_flops(spec, data, profile.budget.epochs) for spec in profile.specs]
               for data in (trial_dataset(dataset, profile.seed, t, profile.budget) for t in range(profile.n_trials))]
    return replace(profile, flops=np.array(counted))


def _run_trial(task: dict) -> tuple[float, float, float]:
    """One landmarker trial (top-level so process pools can pickle it): its validation accuracy, wall seconds and
    training FLOPs. Trains on one CPU thread so that the result does not depend on where it runs (thread count can
    change floating-point summation order).

    A diverging landmarker is not an error (``train_and_evaluate`` stops it and it scores what it scores); any
    exception here is a bug or a broken machine and propagates: a profile with a hole in it is no profile."""
    import torch

    from trautoml.models.train import default_device, train_and_evaluate

    device = torch.device(task["device"]) if task["device"] else default_device()
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        r = train_and_evaluate(ModelSpec.from_dict(task["spec"]), task["data"], task["epochs"], task["seed"],
                               device=device)
    finally:
        torch.set_num_threads(threads)
    return float(r.val_accuracy), float(r.wall_seconds), float(r.flops)


def _schedule(costs: list[float], n_trials: int, workers: int, chunked: bool) -> list[list[int]]:
    """Task indices (t·B + b) in the order to run them, as a list of chunks, one ``executor.map`` each.

    Longest tasks first (a longest-processing-time schedule: no long task is left for the end while the other
    workers idle). Without progress reporting there is one chunk; with it, each chunk is a run of whole trials of
    at least 2×workers tasks, so the pool stays busy and the bar still moves about T·B/(2·workers) times.
    """
    n_models = len(costs)
    by_cost = sorted(range(n_models), key=lambda b: (-costs[b], b))
    per_chunk = max(1, math.ceil(2 * workers / n_models)) if chunked else n_trials
    chunks = []
    for start in range(0, n_trials, per_chunk):
        trials = range(start, min(n_trials, start + per_chunk))
        chunks.append([t * n_models + b for b in by_cost for t in trials])
    return chunks


def _map(executor, tasks: list[dict], chunks: list[list[int]],
         progress: Callable[[int, int], Any] | None) -> list[Any]:
    """Run the tasks through the executor chunk by chunk; results come back in task order."""
    total = len(tasks)
    results: list[Any] = [None] * total
    done = 0
    if progress is not None:
        progress(0, total)
    for chunk in chunks:
        for i, r in zip(chunk, executor.map(_run_trial, [tasks[i] for i in chunk])):
            results[i] = r
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    return results


def profile(dataset: Dataset, n_models: int = DEFAULT_MODELS, n_trials: int = DEFAULT_TRIALS, seed: int = 0,
            executor=None, budget: ProfileBudget | None = None,
            progress: Callable[[int, int], Any] | None = None, *, specs: Sequence[ModelSpec] | None = None,
            landmarker_seed: int | None = None, device: str | None = None, first_trial: int = 0) -> Profile:
    """Train each of ``n_models`` landmarkers ``n_trials`` times on ``dataset``; return the T×B :class:`Profile`.

    ``seed`` fixes the trials (training seeds and image draws); the landmarkers themselves are the first
    ``n_models`` of the installation's set (`landmarker_specs`), or with ``landmarker_seed`` the paper's Monte Carlo
    draws ``sample_landmarkers(n_models, landmarker_seed)``, unless ``specs`` is given (then ``n_models`` is
    ignored). Profiles are comparable only under the same landmarkers.
    ``executor``: any :class:`trautoml.executor.Executor`; default a ``LocalExecutor`` over all cores, created and
    closed here. ``progress(done, total)`` is called as trials finish. ``device``: torch device for training
    (default CUDA when present, else CPU). ``first_trial``: make only trials ``first_trial`` … ``n_trials`` − 1 (the
    rest of a profile whose first trials exist; `Profile.extend` joins them): trial t is the same whatever the call.
    """
    t0 = time.perf_counter()
    budget = budget or ProfileBudget()
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if not 0 <= int(first_trial) < int(n_trials):
        raise ValueError(f"need 0 <= first_trial < n_trials, got first_trial = {first_trial}, n_trials = {n_trials}")
    if specs is None:
        specs = (landmarker_specs(int(n_models)) if landmarker_seed is None
                 else sample_landmarkers(int(n_models), int(landmarker_seed)))
    specs = list(specs)
    if not specs:
        raise ValueError("need at least one landmarker")
    n_models, first_trial = len(specs), int(first_trial)
    n_trials = int(n_trials) - first_trial  # the trials made here

    tasks: list[dict] = []
    for t in range(first_trial, first_trial + n_trials):
        data = trial_dataset(dataset, seed, t, budget)
        for b, spec in enumerate(specs):
            tasks.append({"spec": spec.to_dict(), "data": data, "epochs": float(budget.epochs),
                          "seed": trial_seed(seed, t, b), "device": device})
    costs = [model_cost(s.arch, tasks[0]["data"].input_shape, dataset.num_classes) for s in specs]

    own = executor is None
    if own:
        from trautoml.executor import LocalExecutor

        executor = LocalExecutor(min(os.cpu_count() or 1, len(tasks)))
    workers = int(getattr(executor, "workers", None) or os.cpu_count() or 1)
    try:
        results = _map(executor, tasks, _schedule(costs, n_trials, workers, progress is not None), progress)
    finally:
        if own:
            executor.close()
    acc = np.array([r[0] for r in results], dtype=np.float64).reshape(n_trials, n_models)
    wall = np.array([r[1] for r in results], dtype=np.float64).reshape(n_trials, n_models)
    flops = np.array([r[2] for r in results], dtype=np.float64).reshape(n_trials, n_models)
    return Profile(trials=acc, specs=specs, wall_seconds=wall, total_seconds=time.perf_counter() - t0,
                   seed=int(seed), budget=budget, dataset=dataset.name, flops=flops)

