"""The training loop's optimizers and learning-rate schedule, without `torch.optim`'s compile machinery.

`torch.optim.Optimizer.__init__` is wrapped by ``torch._disable_dynamo``, which imports ``torch._dynamo`` the first
time any optimizer is built in a process: 2.0 s of CPU (measured under cProfile, torch 2.14.1, 2026-12-03), paid by
every fresh worker process, against 0.08–0.13 s for a whole landmarker trial. Its ``step`` also goes through
profiling and grad-mode wrappers, about 0.7 ms of a 5 ms step for the small networks trained here.

These classes do the same arithmetic as torch's single-tensor CPU paths (``torch.optim.sgd._single_tensor_sgd``,
``torch.optim.adam._single_tensor_adam`` without amsgrad, ``CosineAnnealingLR``'s recursive form), in the same
order, so a training gives bit-identical weights (checked in ``tests/test_train.py`` against torch.optim).
"""
from __future__ import annotations

import math

import torch

__all__ = ["SGD", "Adam", "CosineSchedule"]


class _Optimizer:
    def __init__(self, params, lr: float, weight_decay: float):
        self.params = list(params)
        self.lr, self.weight_decay = float(lr), float(weight_decay)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (``set_to_none``) or zero every parameter's gradient."""
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def _grad(self, p: torch.Tensor) -> torch.Tensor:
        grad = p.grad
        assert grad is not None  # step() skips the parameters without one
        return grad if self.weight_decay == 0 else grad.add(p, alpha=self.weight_decay)


class SGD(_Optimizer):
    """SGD with momentum (Nesterov's when ``nesterov``) and L2 weight decay, as `torch.optim.SGD` (dampening 0)."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr, weight_decay)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self._buf: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = self._grad(p)
            if self.momentum != 0:
                buf = self._buf.get(i)
                if buf is None:
                    buf = self._buf[i] = grad.detach().clone()
                else:
                    buf.mul_(self.momentum).add_(grad, alpha=1.0)
                grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
            p.add_(grad, alpha=-self.lr)


class Adam(_Optimizer):
    """Adam with L2 weight decay (added to the gradient), betas (0.9, 0.999), eps 1e-8, as `torch.optim.Adam`."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2 = map(float, betas)
        self.eps = float(eps)
        self._state: dict[int, list] = {}   # index → [step, exp_avg, exp_avg_sq]

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            state = self._state.get(i)
            if state is None:
                state = self._state[i] = [0.0, torch.zeros_like(p, memory_format=torch.preserve_format),
                                          torch.zeros_like(p, memory_format=torch.preserve_format)]
            state[0] += 1.0
            step, exp_avg, exp_avg_sq = state
            grad = self._grad(p)
            exp_avg.lerp_(grad, 1 - self.beta1)
            exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            step_size = self.lr / (1 - self.beta1 ** step)
            denom = (exp_avg_sq.sqrt() / (1 - self.beta2 ** step) ** 0.5).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)


class CosineSchedule:
    """Cosine annealing of ``optimizer.lr`` from its value to 0 over ``t_max`` steps, in `CosineAnnealingLR`'s
    recursive form (lr_k = (1 + cos(πk/T)) / (1 + cos(π(k − 1)/T)) · lr_{k−1}), which is what makes the learning
    rates, and so the weights, bit-identical to torch's."""

    def __init__(self, optimizer: _Optimizer, t_max: int):
        self.optimizer, self.t_max, self.k = optimizer, int(t_max), 0

    def step(self) -> None:
        """Advance one step (after the optimizer's)."""
        self.k += 1
        k, t = self.k, self.t_max
        opt = self.optimizer
        if (k - 1 - t) % (2 * t) == 0:
            raise RuntimeError("CosineSchedule stepped past its t_max")
        opt.lr = (1 + math.cos(math.pi * k / t)) / (1 + math.cos(math.pi * (k - 1) / t)) * (opt.lr - 0.0) + 0.0
