"""Saving and restoring a learner: weights as a torch state dict, per-task statistics as JSON.

Two files per agent kind in the state folder, both replaced atomically (write to a temporary file, then rename):

- ``transfer_<kind>.pt``: ``torch.save`` of plain containers only — the agent's ``state_dict``, the name → index
  maps of its embedding tables (needed to rebuild the parameters before loading them), Adam's moments per
  parameter name, the agent's random generator state. Loaded with ``torch.load(..., weights_only=True)``, so a
  state folder cannot execute code.
- ``transfer_<kind>.json``: the training configuration, the number of updates, per-(space, task) reward statistics
  (moving mean, variance, sample counts), the priority queues, which pairs were transfers, the sampling RNG and a
  log of the searches served. Readable by people; logged as an MLflow artifact with the rest of the folder.

The .pt file is written first. Both carry the update count; `load_learner` refuses a pair that disagrees (a
process killed between the two renames) with an error naming both files.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import torch

from .learner import Learner
from .reinforce import RewardStats, TopK

FORMAT = 1


def state_paths(folder: str | Path, kind: str) -> tuple[Path, Path]:
    """The (weights, statistics) files of a ``kind`` learner in ``folder``: ``transfer_<kind>.pt`` and
    ``transfer_<kind>.json``."""
    folder = Path(folder)
    return folder / f"transfer_{kind}.pt", folder / f"transfer_{kind}.json"


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_state(learner: Learner) -> tuple[dict, dict]:
    """The learner as (tensor blob for torch.save, JSON-able statistics)."""
    blob = {"format": FORMAT, "kind": learner.kind, "seed": learner.seed, "agent_options": learner.agent_options,
            "vocab": learner.agent.vocab(), "model": learner.agent.state_dict(),
            "optimizer": learner.optimizer_state(), "generator": learner.agent.gen.get_state(),
            "updates": learner.updates}
    version, internal, gauss = learner.rng.getstate()
    meta = {"format": FORMAT, "kind": learner.kind, "updates": learner.updates, "config": learner.config,
            "stats": {k: s.to_dict() for k, s in learner.stats.items()},
            "samples": learner.samples, "transferred": sorted(learner.transferred),
            "queues": {k: {"k": q.k, "items": q.items} for k, q in learner.queues.items()},
            "rng": [version, list(internal), gauss], "history": learner.history}
    return blob, meta


def from_state(blob: dict, meta: dict, kind: str, where: str = "state") -> Learner:
    """The learner that `to_state` gave ``blob`` and ``meta``; ValueError when they are not a ``kind`` state of this
    format or their update counts disagree (``where`` names them in the message)."""
    for d in (blob, meta):
        if d.get("format") != FORMAT or d.get("kind") != kind:
            raise ValueError(f"{where}: not a format-{FORMAT} {kind!r} transfer-controller state")
    if blob["updates"] != meta["updates"]:
        raise ValueError(f"{where}: weights ({blob['updates']} updates) and statistics ({meta['updates']} "
                         "updates) disagree; the process was probably stopped while saving: remove both files "
                         "to start afresh")
    learner = Learner(kind, seed=blob["seed"], agent_options=blob["agent_options"], **meta["config"])
    learner.agent.restore_vocab(blob["vocab"])
    learner.agent.load_state_dict(blob["model"])
    learner.agent.gen.set_state(blob["generator"])
    learner.updates = int(meta["updates"])
    learner.stats = {k: RewardStats.from_dict(d) for k, d in meta["stats"].items()}
    learner.samples = {k: int(v) for k, v in meta["samples"].items()}
    learner.transferred = set(meta["transferred"])
    learner.queues = {k: TopK(q["k"], q["items"]) for k, q in meta["queues"].items()}
    version, internal, gauss = meta["rng"]
    learner.rng.setstate((version, tuple(internal), gauss))
    learner.history = list(meta.get("history", []))
    learner.load_optimizer_state(blob["optimizer"])
    return learner


def clone_learner(learner: Learner) -> Learner:
    """An independent copy (weights, optimiser moments, statistics, RNG states) of ``learner``."""
    blob, meta = to_state(learner)
    clone = from_state(copy.deepcopy(blob), json.loads(json.dumps(meta)), learner.kind, "clone")
    for space in learner.spaces.spaces.values():
        clone.spaces.add(space)
    return clone


def save_learner(learner: Learner, folder: str | Path) -> list[Path]:
    """Write both files; returns their paths."""
    pt, js = state_paths(folder, learner.kind)
    blob, meta = to_state(learner)
    _atomic_write(pt, lambda f: torch.save(blob, f))
    _atomic_write(js, lambda f: f.write(json.dumps(meta, indent=1).encode()))
    return [pt, js]


def load_learner(folder: str | Path, kind: str) -> Learner | None:
    """The learner saved in ``folder`` for agent ``kind``, or None when there is none."""
    pt, js = state_paths(folder, kind)
    if not pt.exists() and not js.exists():
        return None
    if not (pt.exists() and js.exists()):
        raise FileNotFoundError(f"incomplete transfer-controller state: need both {pt} and {js}")
    blob = torch.load(pt, map_location="cpu", weights_only=True)
    return from_state(blob, json.loads(js.read_text()), kind, f"{pt} / {js}")
