"""The one training loop: train a spec on a dataset for a budget, report validation/test accuracy, wall time and
training FLOPs (`trautoml.models.flops`: the cost load cannot change).

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

from . import flops, optim
from .spec import ModelSpec, build_module

EVAL_BATCH = 1024


@dataclass
class TrainResult:
    """What one training reports: ``val_accuracy`` / ``test_accuracy`` of the trained model, ``wall_seconds`` of the
    whole call, the ``epochs`` asked for and the optimiser ``steps`` taken, the last finite training loss
    (``final_loss``), ``diverged`` when a loss turned NaN/inf, the trained ``module`` when asked for, and the
    training's ``flops`` (`trautoml.models.flops`: the images trained and evaluated, counted)."""

    val_accuracy: float
    test_accuracy: float
    wall_seconds: float
    epochs: float
    steps: int
    final_loss: float
    diverged: bool = False
    module: Any = None  # the trained torch module, when asked for with keep_module=True
    flops: float = 0.0
    weights: str | None = None  # the key the trained weights are kept under (`Workspace.save_weights`), if kept


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


def _recalibrated_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch norms `_recalibrate_batchnorm` re-estimates: those with running statistics, not frozen (a frozen
    layer of a reused network keeps its statistics)."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
            and (m.weight is None or m.weight.requires_grad)]


_COSTS: dict[tuple, tuple[flops.ImageFlops, bool]] = {}


def model_cost(spec: ModelSpec, input_shape: tuple[int, int, int], num_classes: int,
               module: nn.Module | None = None) -> tuple[flops.ImageFlops, bool]:
    """The FLOPs per image of ``spec``'s network for ``input_shape`` and ``num_classes``, and whether its training
    ends with a batch-norm recalibration pass. Counted once per process and (spec, input shape, class count);
    ``module``: the network just built from them, counted instead of building another."""
    key = (spec.key(), tuple(input_shape), int(num_classes))
    if key not in _COSTS:
        with torch.random.fork_rng(devices=[]):  # building a network draws weights: leave the caller's stream be
            net = module if module is not None else build_module(spec, input_shape, num_classes)
            _COSTS[key] = flops.count(net, input_shape), bool(_recalibrated_norms(net))
    return _COSTS[key]


def _capped(n: int, cap: int | None) -> int:
    return n if cap is None else min(n, int(cap))


def planned_flops(spec: ModelSpec, dataset: Dataset, epochs: float, *, max_train: int | None = None,
                  max_eval: int | None = None) -> float:
    """The FLOPs `train_and_evaluate` reports for this training when its loss does not diverge, without training:
    the same per-image count times the images the budget trains and evaluates. Charges a measurement stored before
    FLOPs were counted (the workspace's caches) what it would have been charged then."""
    cost, recalibrates = model_cost(spec, dataset.input_shape, dataset.num_classes)
    n_train = _capped(len(dataset.y_train), max_train)
    batch = int(min(spec.train_params()["batch_size"], n_train))
    steps = max(1, math.ceil(epochs * n_train / batch))
    forward_only = (min(BN_CALIBRATION_IMAGES, n_train) if recalibrates else 0) + \
        _capped(len(dataset.y_val), max_eval) + _capped(len(dataset.y_test), max_eval)
    return cost.work(steps * batch, forward_only)


@torch.no_grad()
def _recalibrate_batchnorm(module: nn.Module, x_all: torch.Tensor, batch: int, rng: np.random.Generator,
                           dev: torch.device) -> int:
    """Re-estimate batch-norm running statistics as exact averages over (up to) 2,048 training images.

    With the budgets of a search (a fraction of an epoch to a few epochs) the running averages (momentum 0.1) still
    carry the statistics of the untrained network: a model that trains well can evaluate near chance (seen: 0.28
    validation accuracy after 2 epochs, 0.98 after 5). A pass in train mode with cumulative averaging fixes this
    at the cost of a forward pass over a few batches, and leaves networks without batch norm untouched. Returns the
    images passed forward (0 for those networks).
    """
    norms = _recalibrated_norms(module)
    if not norms:
        return 0
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
    return len(idx)


def train_and_evaluate(spec: ModelSpec, dataset: Dataset, epochs: float, seed: int = 0, *,
                       max_train: int | None = None, max_eval: int | None = None,
                       device: str | torch.device | None = None, keep_module: bool = False,
                       module: nn.Module | None = None, lr_scale: float = 1.0) -> TrainResult:
    """Train ``spec`` (or a given, already built ``module``: frozen layers, or trained weights to fine-tune) for
    ``epochs`` at ``lr_scale`` × the spec's learning rate, and evaluate it.

    Deterministic for a given seed on a given device: the seed fixes the weights' initialisation, the subsets
    drawn under ``max_train`` / ``max_eval`` and the order of the mini-batches. A loss that turns NaN/inf stops
    training (``diverged``); the model is still evaluated, so a diverged trial simply scores badly. ``flops``
    counts the images this call trained and passed forward (see `trautoml.models.flops`).
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    t0 = time.perf_counter()
    dev = torch.device(device) if device is not None else default_device()
    hp = spec.train_params()
    hp["lr"] = float(hp["lr"]) * lr_scale
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    x_tr, y_tr = _subset(dataset.x_train, dataset.y_train, max_train, rng)
    x_va, y_va = _subset(dataset.x_val, dataset.y_val, max_eval, rng)
    x_te, y_te = _subset(dataset.x_test, dataset.y_test, max_eval, rng)

    if module is None:
        module = build_module(spec, dataset.input_shape, dataset.num_classes)
        cost, _ = model_cost(spec, dataset.input_shape, dataset.num_classes, module)
        _scale_init(module, float(hp["init_scale"]))
    else:  # a network given as it is (frozen layers, say): counted as it is
        cost = flops.count(module, dataset.input_shape)
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
    pos, loss_value, diverged, trained = 0, float("nan"), False, 0
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
        trained += batch

    forward_only = _recalibrate_batchnorm(module, x_all, batch, rng, dev) + len(y_va) + len(y_te)
    val_acc = accuracy(module, x_va, y_va, dev)
    test_acc = accuracy(module, x_te, y_te, dev)
    return TrainResult(val_accuracy=val_acc, test_accuracy=test_acc, wall_seconds=time.perf_counter() - t0,
                       epochs=float(epochs), steps=steps, final_loss=loss_value, diverged=diverged,
                       module=module.cpu() if keep_module else None,
                       flops=cost.work(trained, forward_only + (batch if diverged else 0)))
