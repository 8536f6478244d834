"""ENAS (Pham et al., ICML 2018) behind trautoml's search-backend interface (paper 002 §3.2, Table 2).

One shared-weight super-network (`supernet.MacroNet` or `supernet.MicroNet`, built for the dataset's input shape)
and an LSTM controller (`controller`). The search alternates, round after round (ENAS §2.2):

1. shared weights: one pass over the training split (``batch_size`` mini-batches; the last round may be shorter),
   each mini-batch a fresh child sampled from the controller; SGD with Nesterov momentum, the spec's learning
   rate on a cosine schedule over all shared steps, weight decay, gradient norm clipped at 5 (ENAS ``grad_bound``);
2. controller: ``controller_steps`` REINFORCE updates (`controller.Reinforce`), each on ``controller_samples``
   children whose reward is their accuracy on a random validation mini-batch of ``val_batch`` images, run through
   the shared weights. ``controller_steps=None`` sizes the phase to forward about one training split's worth of
   validation images, ``clamp(round(n_train / (val_batch * controller_samples)), 2, 50)`` — about a third of a
   shared epoch's cost, as in ENAS (30–50 steps of 10–20 aggregated samples per epoch on CIFAR-10).

Deriving the architecture (ENAS §2.2): ``candidates`` children are sampled (plus the task's warm-start archs of the
same space and size), each is judged on one fixed validation batch of ``max(2 * val_batch, 256)`` images through the
shared weights, and the best is retrained from scratch through ``task.run_trials([TrialRequest(spec,
budget.max_epochs, task.seed)])`` — the only Trial of the result (the candidates are recorded in
``info["candidates"]`` as pseudo-trials, shared-weight accuracies, never Trials).

Budget mapping (``SearchBudget``): a search from scratch would train ``max_trials`` children for ``max_epochs``
each. ENAS trains the shared weights for ``epochs_shared`` epochs, by default ``shared_fraction * max_trials *
max_epochs`` (0.25 of that, at least 1) — so its whole cost is about a quarter of the trial budget plus one full
retraining plus the controller's forward passes. ``max_seconds``: a round only starts when the time so far plus
one more round plus the estimated retraining (``max_epochs`` x the mean seconds of one shared epoch) fits; the
first round always runs. ``min_epochs`` is unused.

Cost accounting in ``SearchResult.info``: ``children_sampled`` (every child drawn: one per shared step, one per
reward, the candidates), ``children_evaluated`` (children given a reward; ``children_distinct`` of them distinct),
``shared_steps``, ``controller_updates``, the seconds spent in each phase, and ``cost_ratio`` = ENAS's wall seconds
(search and retraining) / (``children_distinct`` x the measured wall seconds of the retraining): what training each
judged child separately at ``max_epochs`` would have cost. ``cost_ratio_budget`` divides by ``max_trials``
retrainings instead (the search-from-scratch budget). Both use the retraining's own wall time, which ran wherever
the core's executor put it (a worker process may use fewer threads than this process).

Threads: the controller's tiny LSTM steps run with one torch thread (`single_thread`); on a busy 2-core machine two
threads made them 15x slower. The super-network uses the process's setting.
"""
from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from trautoml.models.spec import DEFAULT_TRAIN, ModelSpec
from trautoml.models.train import default_device, single_thread

from ..base import SearchBackend, SearchResult, SearchTask, TrialRequest, best_of
from .controller import MacroController, MicroController, Reinforce
from .spaces import (CELLS_SPACE, MACRO_SPACE, fit_cells_arch, macro_reduce_after, reductions_for,
                     validate_cells_arch, validate_macro_arch)
from .supernet import MacroNet, MicroNet

#: ENAS's child training settings (cosine from lr 0.05, momentum 0.9; L2 2.5e-4 macro, 1e-4 micro).
TRAIN_DEFAULTS = {"macro": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 2.5e-4,
                            "batch_size": 64},
                  "cells": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4,
                            "batch_size": 64}}
#: Default widths, sized for CPU: one shared step of the mean child costs about what a ``cnn``-space trial step
#: does (~3-4 M multiply-accumulates per 28x28 grey image; `bench/bench_enas_memory.py` measures it).
CHANNELS = {"macro": 12, "cells": 8}


class ENAS(SearchBackend):
    """ENAS over the macro chain space (``space="macro"``) or the micro cell space (``space="cells"``).

    Sizes: ``layers`` (macro), ``nodes`` and ``cells_per_stage`` (cells), ``channels`` (None: `CHANNELS` of
    the space), ``reductions`` (None: from the input size, `spaces.reductions_for`), ``dropout``.
    ``final_channels`` widens the retrained child (ENAS retrains wider than it searches); None keeps ``channels``.
    Controller: ``lstm_size``, ``lstm_layers``, ``tanh_constant``, ``temperature``, ``entropy_weight``,
    ``baseline_decay``, ``controller_lr``, ``skip_target`` and ``skip_weight`` (macro skip penalty).
    Defaults are sized for CPU (`CHANNELS`).
    """

    name = "enas"

    def __init__(self, space: str = "cells", *, layers: int = 6, nodes: int = 4, cells_per_stage: int = 1,
                 channels: int | None = None, reductions: int | None = None, dropout: float = 0.0,
                 final_channels: int | None = None, epochs_shared: float | None = None,
                 shared_fraction: float = 0.25, controller_steps: int | None = None,
                 controller_samples: int = 5, candidates: int = 10, val_batch: int = 128,
                 lstm_size: int = 64, lstm_layers: int = 1,
                 tanh_constant: float | None = 2.5, temperature: float | None = 5.0,
                 entropy_weight: float = 1e-4, baseline_decay: float = 0.99, controller_lr: float = 3.5e-3,
                 skip_target: float = 0.4, skip_weight: float = 0.8, train: dict | None = None,
                 max_train: int | None = None, device: str | None = None):
        if space not in ("macro", "cells"):
            raise ValueError(f"ENAS space must be 'macro' or 'cells', got {space!r}")
        channels = CHANNELS.get(space, 2) if channels is None else channels
        if channels % 2 or (final_channels or 2) % 2:
            raise ValueError("channels and final_channels must be even")
        if shared_fraction <= 0 or (epochs_shared is not None and epochs_shared <= 0):
            raise ValueError("shared_fraction and epochs_shared must be positive")
        self.space = space
        self.layers, self.nodes, self.cells_per_stage = int(layers), int(nodes), int(cells_per_stage)
        self.channels, self.final_channels = int(channels), final_channels
        self.reductions, self.dropout = reductions, float(dropout)
        self.epochs_shared, self.shared_fraction = epochs_shared, float(shared_fraction)
        self.controller_steps, self.controller_samples = controller_steps, int(controller_samples)
        self.candidates, self.val_batch = int(candidates), int(val_batch)
        self.controller_kw: dict[str, Any] = {"hidden": lstm_size, "lstm_layers": lstm_layers,
                                              "tanh_constant": tanh_constant, "temperature": temperature}
        self.reinforce_kw: dict[str, Any] = {"lr": controller_lr, "baseline_decay": baseline_decay,
                                             "entropy_weight": entropy_weight,
                                             "skip_weight": skip_weight if space == "macro" else 0}
        self.skip_target = float(skip_target)
        self.train = {**TRAIN_DEFAULTS[space], **(train or {})}
        self.max_train, self.device = max_train, device

    # ------------------------------------------------------------------------------------------------ structure

    @property
    def spec_space(self) -> str:
        """The model space of the specs this backend returns: ``enas-macro`` for the macro space, else
        ``enas-cells``."""
        return MACRO_SPACE if self.space == "macro" else CELLS_SPACE

    def build(self, input_shape, num_classes: int) -> tuple[nn.Module, MacroController | MicroController, dict]:
        """The super-network, the controller, and the structure fields every derived arch shares."""
        reductions = reductions_for(input_shape) if self.reductions is None else int(self.reductions)
        if self.space == "macro":
            reduce_after = macro_reduce_after(self.layers, reductions)
            net = MacroNet(input_shape, num_classes, self.layers, self.channels, reduce_after, self.dropout)
            ctl = MacroController(self.layers, skip_target=self.skip_target, **self.controller_kw)
            return net, ctl, {"reduce_after": reduce_after, "reductions": reductions}
        micro = MicroNet(input_shape, num_classes, self.nodes, self.cells_per_stage, self.channels, reductions,
                         self.dropout)
        return micro, MicroController(self.nodes, **self.controller_kw), {"reductions": reductions}

    def derive_spec(self, child: dict, structure: dict, input_shape, num_classes: int) -> ModelSpec:
        """The standalone spec of a sampled child (its ops and connections; this backend's sizes)."""
        c = int(self.final_channels or self.channels)
        if self.space == "macro":
            arch = {"layers": child["layers"], "channels": c, "reduce_after": structure["reduce_after"],
                    "dropout": self.dropout}
            validate_macro_arch(arch)
        else:
            arch = fit_cells_arch(child["normal"], child["reduction"], input_shape, num_classes, channels=c,
                                  cells_per_stage=self.cells_per_stage, dropout=self.dropout,
                                  reductions=self.reductions)
        return ModelSpec(self.spec_space, arch, dict(self.train))

    def _warm_children(self, task: SearchTask) -> list[dict]:
        """Children of the task's warm-start specs that this super-network can run (same space and size)."""
        out = []
        for spec in task.warm_start:
            try:
                if spec.space == MACRO_SPACE and self.space == "macro":
                    validate_macro_arch(spec.arch)
                    if len(spec.arch["layers"]) == self.layers:
                        out.append({"layers": spec.arch["layers"]})
                elif spec.space == CELLS_SPACE and self.space == "cells":
                    validate_cells_arch(spec.arch)
                    if len(spec.arch["normal"]) == len(spec.arch["reduction"]) == self.nodes:
                        out.append({"normal": spec.arch["normal"], "reduction": spec.arch["reduction"]})
            except ValueError:
                continue
        return out

    # --------------------------------------------------------------------------------------------------- search

    def search(self, task: SearchTask) -> SearchResult:
        t0 = time.perf_counter()
        ds, budget = task.dataset, task.budget
        shape, k = ds.input_shape, ds.num_classes
        dev = torch.device(self.device) if self.device else default_device()
        rng = np.random.default_rng(task.seed)
        gen = torch.Generator().manual_seed(task.seed)
        torch.manual_seed(task.seed)
        net, ctl, structure = self.build(shape, k)
        net.to(dev)
        reinforce = Reinforce(ctl, **self.reinforce_kw)
        hp = {**DEFAULT_TRAIN, **self.train}

        x_np, y_np = ds.x_train, ds.y_train
        if self.max_train is not None and len(y_np) > self.max_train:
            keep = np.sort(rng.choice(len(y_np), self.max_train, replace=False))
            x_np, y_np = x_np[keep], y_np[keep]
        x_tr, y_tr = torch.from_numpy(x_np), torch.from_numpy(y_np)
        x_va, y_va = torch.from_numpy(ds.x_val), torch.from_numpy(ds.y_val)
        batch = int(min(hp["batch_size"], len(y_tr)))
        steps_per_epoch = max(1, math.ceil(len(y_tr) / batch))
        epochs_shared = (float(self.epochs_shared) if self.epochs_shared is not None
                         else max(1.0, self.shared_fraction * budget.max_trials * budget.max_epochs))
        total_steps = max(1, math.ceil(epochs_shared * steps_per_epoch))
        controller_steps = (int(self.controller_steps) if self.controller_steps is not None else
                            min(50, max(2, round(len(y_tr) / (self.val_batch * self.controller_samples)))))
        opt = torch.optim.SGD(net.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                              weight_decay=hp["weight_decay"], nesterov=hp["momentum"] > 0)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
        loss_fn = nn.CrossEntropyLoss()

        def sample(with_grad: bool):
            with single_thread(), torch.set_grad_enabled(with_grad):
                return ctl.sample(gen)

        @torch.no_grad()
        def accuracy(child: dict, xb: torch.Tensor, yb: torch.Tensor) -> float:
            net.eval()
            pred = net(xb.to(dev), child).argmax(1).cpu()
            return float((pred == yb).float().mean())

        def val_batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
            idx = torch.from_numpy(rng.choice(len(y_va), min(size, len(y_va)), replace=False))
            return x_va[idx], y_va[idx]

        step = rounds = 0
        sampled, evaluated = 0, 0
        distinct: set[str] = set()
        rewards_per_update: list[float] = []
        epoch_seconds: list[float] = []
        loss_value, stopped_early = float("nan"), False
        shared_seconds = controller_seconds = 0.0
        order, pos = rng.permutation(len(y_tr)), 0
        while step < total_steps:
            t_round = time.perf_counter()
            if budget.max_seconds is not None and rounds > 0:
                per_epoch = float(np.mean(epoch_seconds))
                if task.seconds_left() < per_epoch * (1 + budget.max_epochs):
                    stopped_early = True
                    break
            # 1. shared weights, one child per mini-batch
            n_steps = min(steps_per_epoch, total_steps - step)
            net.train()
            for _ in range(n_steps):
                if pos + batch > len(order):
                    order, pos = rng.permutation(len(y_tr)), 0
                idx = torch.from_numpy(order[pos:pos + batch])
                pos += batch
                child = sample(False).arch
                sampled += 1
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(x_tr[idx].to(dev), child), y_tr[idx].to(dev))
                if torch.isfinite(loss):
                    loss.backward()
                    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    opt.step()
                    loss_value = float(loss.detach())
                sched.step()
                step += 1
            t_ctl = time.perf_counter()
            shared_seconds += t_ctl - t_round
            # 2. controller, rewarded by shared-weight validation accuracy
            for _ in range(controller_steps):
                samples = [sample(True) for _ in range(self.controller_samples)]
                rewards = [accuracy(s.arch, *val_batch(self.val_batch)) for s in samples]
                with single_thread():
                    stats = reinforce.update(samples, rewards)
                sampled += len(samples)
                evaluated += len(samples)
                distinct.update(json.dumps(s.arch, sort_keys=True) for s in samples)
                rewards_per_update.append(round(stats["mean_reward"], 4))
            rounds += 1
            controller_seconds += time.perf_counter() - t_ctl
            epoch_seconds.append((time.perf_counter() - t_round) * steps_per_epoch / n_steps)
            task.progress(f"enas: round {rounds}, shared step {step}/{total_steps}, loss {loss_value:.3f}, "
                          f"mean reward {np.mean(rewards_per_update[-controller_steps:] or [0]):.3f}")

        # 3. pick the best of several sampled children (and compatible warm starts) on one validation batch
        xb, yb = val_batch(max(2 * self.val_batch, 256))
        warm = self._warm_children(task)
        pool = [sample(False).arch for _ in range(self.candidates)]
        sampled += len(pool)
        scored = [(accuracy(c, xb, yb), i, c) for i, c in enumerate(warm + pool)]
        best_acc, _, best_child = max(scored, key=lambda s: (s[0], -s[1]))
        search_seconds = time.perf_counter() - t0

        # 4. retrain the chosen child from scratch
        spec = self.derive_spec(best_child, structure, shape, k)
        task.progress(f"enas: retraining the best child (shared-weight val {best_acc:.3f}) for "
                      f"{budget.max_epochs} epochs")
        trials = task.run_trials([TrialRequest(spec, budget.max_epochs, task.seed)])
        best = best_of(trials)
        seconds = time.perf_counter() - t0
        retrain = max(best.wall_seconds, 1e-9)
        n_distinct = max(1, len(distinct))
        info: dict[str, Any] = {
            "backend": self.name, "space": self.spec_space, "structure": structure,
            "supernet_parameters": sum(p.numel() for p in net.parameters()),
            "epochs_shared_planned": epochs_shared, "shared_steps": step,
            "epochs_shared_done": step / steps_per_epoch, "rounds": rounds,
            "controller_updates": reinforce.updates, "children_sampled": sampled,
            "children_evaluated": evaluated, "children_distinct": len(distinct),
            "reward_per_update": rewards_per_update,
            "candidates": [{"arch": c, "shared_val_accuracy": a, "warm_start": i < len(warm), "pseudo": True}
                           for a, i, c in scored],
            "chosen_shared_val_accuracy": best_acc, "shared_seconds": shared_seconds,
            "controller_seconds": controller_seconds, "search_seconds": search_seconds,
            "retrain_seconds": best.wall_seconds, "seconds": seconds,
            "cost_ratio": seconds / (n_distinct * retrain),
            "cost_ratio_budget": seconds / (budget.max_trials * retrain),
            "device": str(dev),
        }
        return SearchResult(best=best.spec, best_val_accuracy=best.val_accuracy, trials=trials,
                            best_resource=budget.max_epochs, info=info, stopped_early=stopped_early)
