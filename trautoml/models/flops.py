"""Training FLOPs: a cost unit that the machine's load cannot change (wall seconds move with it).

A training is charged (forward + backward FLOPs per image) × images trained + forward FLOPs per image × images
only passed forward: evaluation (validation and test), the batch-norm recalibration pass, and the batch of a step
whose loss diverged. Evaluation is included so that every forward pass a training makes is charged, whatever it
was for. Per-image FLOPs are what `torch.utils.flop_counter.FlopCounterMode` counts: matrix products and
convolutions at 2 FLOPs per multiply-add, forward and backward (the backward of a layer whose input needs no
gradient, such as the first, computes only its weights' gradient); element-wise work (activations, norms, the
loss, the optimizer's step) is not counted. The count depends only on the network and the input shape, so the
same work costs the same FLOPs on any machine, under any load, on CPU or GPU.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["ImageFlops", "count"]

_BATCH = 2  # counted on two images (a batch norm in training mode needs more than one value), reported per image


@dataclass(frozen=True)
class ImageFlops:
    """A network's FLOPs per image: ``forward`` (one forward pass) and ``backward`` (its backward pass)."""

    forward: float
    backward: float

    def work(self, trained: int, forward_only: int) -> float:
        """The FLOPs of ``trained`` images through forward and backward and ``forward_only`` images forward."""
        return (self.forward + self.backward) * trained + self.forward * forward_only


def count(module: nn.Module, input_shape: tuple[int, ...]) -> ImageFlops:
    """Count ``module``'s FLOPs per image of ``input_shape`` (C, H, W) with `FlopCounterMode`: one forward and
    backward pass in training mode over a batch of zero images, through a CPU copy of the module (its trainable
    parameters as they are). Neither the module nor torch's random state changes."""
    net = copy.deepcopy(module).cpu().train()
    x = torch.zeros((_BATCH, *input_shape))
    with torch.random.fork_rng(devices=[]):
        with FlopCounterMode(display=False) as forward:
            out = net(x)
        with FlopCounterMode(display=False) as backward:
            if out.requires_grad:  # a network with nothing left to train has no backward pass
                out.float().sum().backward()
    return ImageFlops(forward=forward.get_total_flops() / _BATCH, backward=backward.get_total_flops() / _BATCH)
