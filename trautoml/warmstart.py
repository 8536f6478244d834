"""Which earlier models a search starts from: the neighbours of the new dataset in the stream so far.

Warm-starting a search with the best models found for similar earlier datasets is the simplest way to carry
knowledge along a stream without grouping: Lindauer & Hutter (2018, "Warmstarting of model-based algorithm
configuration") start from the incumbents of earlier instances; Feurer et al. (2015, "Initializing Bayesian
hyperparameter optimization via meta-learning") pick those earlier datasets by the distance of their statistical
meta-features. The searched specs are trained first and count against the search's own budget, so a warm-started
search costs what a cold one does; what it can change is the error it reaches.

Modes (``TrAutoML(warm_start=...)``):

* ``"latest"``: the models of the ``k`` latest earlier datasets;
* ``"profile"``: the ``k`` nearest by landmarker profile (Euclidean distance of the mean accuracy vectors);
* ``"metafeatures"``: the ``k`` nearest by statistical meta-features, each feature standardised over the datasets
  seen so far (Feurer et al. 2015).
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

WARM_START_MODES = ("latest", "profile", "metafeatures")


def nearest_group_specs(groups: Sequence[dict], means: Sequence[Sequence[float]], member_groups: Sequence[str],
                        point: np.ndarray, k: int) -> list[dict]:
    """The models (spec dicts) of the ``k`` groups nearest to ``point`` (a new dataset's mean profile), nearest
    first: a group's distance is its nearest member's (Euclidean, over the mean profiles ``means`` of the datasets
    in ``member_groups``). ``groups``: the workspace's groups (``id``, ``model``). What a dataset that founds a group
    seeds its search with (the preset's ``founder_warm_k``)."""
    if k < 1 or not groups:
        return []
    dist: dict[str, float] = {}
    for mean, g in zip(means, member_groups):
        if len(mean) == len(point):
            d = float(np.linalg.norm(np.asarray(mean, float) - np.asarray(point, float)))
            dist[g] = min(d, dist.get(g, np.inf))
    ranked = sorted((g for g in groups if g["id"] in dist), key=lambda g: dist[g["id"]])
    return [g["model"] for g in ranked[:k]]


def neighbour_specs(rows: Sequence[dict], point: np.ndarray | None, mode: str, k: int) -> list[dict]:
    """The model specs (dicts) of up to ``k`` earlier datasets, nearest first, one per distinct spec.

    ``rows``: the workspace's dataset rows in arrival order (``profile`` holds the features the dataset was
    grouped on, with their ``mean``; ``decision`` its model ``spec``). ``point``: the new dataset's feature mean
    (unused by ``"latest"``)."""
    if mode not in WARM_START_MODES:
        raise ValueError(f"unknown warm start {mode!r}; expected one of {', '.join(WARM_START_MODES)}")
    if not rows or k < 1:
        return []
    if mode == "latest":
        order = list(range(len(rows)))[::-1]
    else:
        if point is None:
            raise ValueError(f"warm start {mode!r} needs the new dataset's feature mean (point)")
        points = np.array([r["profile"]["mean"] for r in rows] + [list(point)], dtype=float)
        if mode == "metafeatures":
            sd = points.std(axis=0)
            sd[sd == 0.0] = 1.0
            points = points / sd
        dist = np.linalg.norm(points[:-1] - points[-1], axis=1)
        order = [int(i) for i in np.argsort(dist, kind="stable")]
    specs, seen = [], set()
    for i in order:
        spec = rows[i]["decision"]["spec"]
        key = json.dumps(spec, sort_keys=True)
        if key not in seen:
            seen.add(key)
            specs.append(spec)
        if len(specs) == k:
            break
    return specs
