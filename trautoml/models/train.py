"""The one training loop: train a spec on a dataset for a budget, report validation/test accuracy and wall time.

Every trained model in trautoml goes through `train_and_evaluate`: landmarker trials, search-backend trials and
the final (re)training of a chosen or reused model. Budget = ``epochs`` over the (optionally capped) train split;
fractions of an epoch are allowed (Hyperband's smallest rungs). CUDA when present, CPU otherwise.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from trautoml.data.dataset import Dataset

from . import optim
from .spec import ModelSpec, build_module

EVAL_BATCH = 1024


@dataclass
class TrainResult:
    """What one training reports: ``val_accuracy`` / ``test_accuracy`` of the trained model, ``wall_seconds`` of the
    whole call, the ``epochs`` asked for and the optimiser ``steps`` taken, the last finite training loss
    (``final_loss``), ``diverged`` when a loss turned NaN/inf, and the trained ``module`` when asked for."""

    val_accuracy: float
    test_accuracy: float
    wall_seconds: float
    epochs: float
    steps: int
    final_loss: float
    diverged: bool = False
    module: Any = None  # the trained torch module, when asked for with keep_module=True


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread for a moment: tiny tensors (controllers, agents) cost ten times the work when a
    thread pool spins over them on a busy machine (measured). The previous setting is restored on exit."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def default_device() -> torch.device:
    """CUDA when torch sees a GPU, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _scale_init(module: nn.Module, scale: float) -> None:
    if scale == 1.0:
        return
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(scale)


def _optimizer(params, hp: dict):
    """The spec's optimizer (`trautoml.models.optim`: torch.optim's arithmetic without its 2 s first-use import)."""
    if hp["optimizer"] == "adam":
        return optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
    if hp["optimizer"] == "sgd":
        return optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"],
                         nesterov=hp["momentum"] > 0)
    raise ValueError(f"unknown optimizer {hp['optimizer']!r}; expected 'sgd' or 'adam'")


def _subset(x: np.ndarray, y: np.ndarray, cap: int | None, rng: np.random.Generator):
    if cap is None or len(y) <= cap:
        return x, y
    idx = np.sort(rng.choice(len(y), size=cap, replace=False))
    return x[idx], y[idx]


@torch.no_grad()
def accuracy(module: nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device) -> float:
    """The fraction of ``x`` that ``module`` classifies as ``y``, evaluated on ``device`` in batches of `EVAL_BATCH`
    (the module is put in eval mode)."""
    module.eval()
    correct = 0
    for i in range(0, len(y), EVAL_BATCH):
        xb = torch.from_numpy(x[i:i + EVAL_BATCH]).to(device)
        pred = module(xb).argmax(1).cpu().numpy()
        correct += int((pred == y[i:i + EVAL_BATCH]).sum())
    return correct / max(1, len(y))


BN_CALIBRATION_IMAGES = 2048


@torch.no_grad()
def _recalibrate_batchnorm(module: nn.Module, x_all: torch.Tensor, batch: int, rng: np.random.Generator,
                           dev: torch.device) -> None:
    """Re-estimate batch-norm running statistics as exact averages over (up to) 2,048 training images.

    With the budgets of a search (a fraction of an epoch to a few epochs) the running averages (momentum 0.1) still
    carry the statistics of the untrained network: a model that trains well can evaluate near chance (seen: 0.28
    validation accuracy after 2 epochs, 0.98 after 5). A pass in train mode with cumulative averaging fixes this
    at the cost of a forward pass over a few batches, and leaves networks without batch norm untouched.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
             and (m.weight is None or m.weight.requires_grad)]  # a frozen (reused) layer keeps its statistics
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    module.train()
    idx = rng.permutation(len(x_all))[:BN_CALIBRATION_IMAGES]
    for i in range(0, len(idx), batch):
        module(x_all[torch.from_numpy(idx[i:i + batch])].to(dev))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum


def train_and_evaluate(spec: ModelSpec, dataset: Dataset, epochs: float, seed: int = 0, *,
                       max_train: int | None = None, max_eval: int | None = None,
                       device: str | torch.device | None = None, keep_module: bool = False,
                       module: nn.Module | None = None) -> TrainResult:
    """Train ``spec`` (or a given, already built ``module``) for ``epochs`` and evaluate it.

    Deterministic for a given seed on a given device: the seed fixes the weights' initialisation, the subsets
    drawn under ``max_train`` / ``max_eval`` and the order of the mini-batches. A loss that turns NaN/inf stops
    training (``diverged``); the model is still evaluated, so a diverged trial simply scores badly.
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    t0 = time.perf_counter()
    dev = torch.device(device) if device is not None else default_device()
    hp = spec.train_params()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    x_tr, y_tr = _subset(dataset.x_train, dataset.y_train, max_train, rng)
    x_va, y_va = _subset(dataset.x_val, dataset.y_val, max_eval, rng)
    x_te, y_te = _subset(dataset.x_test, dataset.y_test, max_eval, rng)

    if module is None:
        module = build_module(spec, dataset.input_shape, dataset.num_classes)
        _scale_init(module, float(hp["init_scale"]))
    module = module.to(dev)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = _optimizer(params, hp)
    batch = int(min(hp["batch_size"], len(y_tr)))
    steps = max(1, math.ceil(epochs * len(y_tr) / batch))
    sched = optim.CosineSchedule(opt, t_max=steps)
    loss_fn = nn.CrossEntropyLoss()
    x_all = torch.from_numpy(x_tr)
    y_all = torch.from_numpy(y_tr)

    module.train()
    order = rng.permutation(len(y_tr))
    pos, loss_value, diverged = 0, float("nan"), False
    for _ in range(steps):
        if pos + batch > len(order):
            order, pos = rng.permutation(len(y_tr)), 0
        idx = torch.from_numpy(order[pos:pos + batch])
        pos += batch
        xb, yb = x_all[idx].to(dev, non_blocking=True), y_all[idx].to(dev, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(module(xb), yb)
        if not torch.isfinite(loss):
            diverged = True
            break
        loss.backward()
        opt.step()
        sched.step()
        loss_value = float(loss.detach())

    _recalibrate_batchnorm(module, x_all, batch, rng, dev)
    val_acc = accuracy(module, x_va, y_va, dev)
    test_acc = accuracy(module, x_te, y_te, dev)
    return TrainResult(val_accuracy=val_acc, test_accuracy=test_acc, wall_seconds=time.perf_counter() - t0,
                       epochs=float(epochs), steps=steps, final_loss=loss_value, diverged=diverged,
                       module=module.cpu() if keep_module else None)
