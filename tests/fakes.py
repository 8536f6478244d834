"""Fakes and synthetic data shared by test modules: a search landscape with a known optimum, decisions as the
tracker and the workspace store them, and landmarker-like profile streams with known groups. A plain module (pytest
does not collect it); `trautoml.testing` has what plug-in authors also use (`FakeTrials`, `tiny_dataset`)."""
from __future__ import annotations

import random

import numpy as np

from search_backends.base import SearchBudget, SearchTask, Trial
from trautoml.decision import Decision
from trautoml.models.spec import ModelSpec
from trautoml.testing import tiny_dataset

# A search landscape over specs ModelSpec("fake", {"x": 0..999}) whose best x is OPT.
OPT = 617


def fake_spec(x: int) -> ModelSpec:
    return ModelSpec("fake", {"x": x})


def sample_fake(rng: random.Random) -> ModelSpec:
    return fake_spec(rng.randrange(1000))


def quality(spec: ModelSpec) -> float:
    return 1.0 - abs(spec.arch["x"] - OPT) / 1000


class FakeRunner:
    """run_trials over a known landscape: accuracy = quality(spec) * r / (r + 1); records every batch."""

    def __init__(self, fail=lambda spec: False):
        self.calls: list[list] = []
        self.fail = fail

    def __call__(self, requests):
        self.calls.append(list(requests))
        out = []
        for r in requests:
            if self.fail(r.spec):
                out.append(Trial(r.spec, r.resource, r.seed, 0.0, 0.0, 0.0, status="failed", error="boom"))
            else:
                acc = quality(r.spec) * r.resource / (r.resource + 1)
                out.append(Trial(r.spec, r.resource, r.seed, acc, acc, 0.01))
        return out


def task(runner, warm=(), seed=0, **budget) -> SearchTask:
    """A search task on a tiny dataset that trains through ``runner``; ``budget``: `SearchBudget`'s fields."""
    return SearchTask(dataset=tiny_dataset(), budget=SearchBudget(**budget), run_trials=runner, seed=seed,
                      warm_start=list(warm))


# Decisions: what the tracker logs and what the workspace stores.
SPEC = ModelSpec("cnn", {"layers": [{"type": "conv", "filters": 4, "kernel": 3, "stride": 1}]}, {"lr": 0.01})
OTHER = ModelSpec("cnn", {"layers": [{"type": "conv", "filters": 8, "kernel": 3, "stride": 1}]}, {"lr": 0.01})
SETTINGS = {"grouper": "mh", "n_models": 3, "n_trials": 5}


def tracked_decision(name, group, outcome="searched", reason="empty-cluster") -> Decision:
    """A decision for a dataset whose content hash is ``"h-" + name``, as the tracking tests start its run."""
    return Decision(dataset=name, content_hash="h-" + name, group=group, outcome=outcome, reason=reason, spec=SPEC,
                    backend="random", val_accuracy=0.8, test_accuracy=0.75, profile_seconds=1.0,
                    search_seconds=2.0, train_seconds=0.5, explanation="x")


def stored_decision(name, group, outcome="searched", reason="empty-cluster", spec=SPEC, val=0.8) -> Decision:
    """A decision for a dataset whose content hash is ``"hash-" + name``, with its run ``"run-" + name``."""
    return Decision(dataset=name, content_hash="hash-" + name, group=group, outcome=outcome, reason=reason, spec=spec,
                    backend="random", val_accuracy=val, test_accuracy=0.7, profile_seconds=1.0, search_seconds=2.0,
                    train_seconds=0.5, run_id="run-" + name)


def commit(ws, name, group, *, founds, version, state=None, spec=SPEC, outcome="searched", val=0.8, level=None):
    """Commits one ingest of dataset ``name`` into workspace ``ws`` (`Workspace.commit_ingest`); ``founds``: it
    founds ``group`` with ``spec``; ``version``: the grouper state version the commit expects; ``level``: the
    mean landmarker accuracy of its profile (None: a profile that is no landmarker profile)."""
    return ws.commit_ingest(grouper_name="mh", grouper_state=state or {"n": name}, expected_version=version,
                            settings=SETTINGS, decision=stored_decision(name, group, outcome, spec=spec, val=val),
                            name=name, uri=f"npz:{name}.npz", family="f",
                            profile={"mean": [0.1, 0.2, 0.3]} if level is None else
                            {"kind": "landmarkers", "mean": [level - 0.1, level, level + 0.1]},
                            assignment={"group": group}, founds_group=founds,
                            group_spec=spec.to_dict() if founds else None)


# Profile streams: B landmarkers, T trials per profile.
B, T = 6, 8


def synthetic_stream(rng, n_groups=6, n=120, sd=0.015, tau=0.0, spacing=0.1):
    """Landmarker-like accuracies: group means on a 0.1 grid in [0.2, 0.9]^B (distinct), dataset means within
    ``tau`` of their group's, trials with noise ``sd``. Returns (true labels, list of T × B matrices)."""
    grid = np.round(np.arange(0.2, 0.901, spacing), 3)
    means: set = set()
    while len(means) < n_groups:
        means.add(tuple(rng.choice(grid, B)))
    means = np.array(sorted(means))
    labels = rng.integers(n_groups, size=n)
    dataset_means = means[labels] + rng.normal(0.0, tau, size=(n, B))
    return labels, list(dataset_means[:, None, :] + rng.normal(0.0, sd, size=(n, T, B)))
