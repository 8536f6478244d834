"""Building blocks shared by ENAS's macro and micro networks (super-networks and standalone children alike).

Every block keeps the map size at ``ceil(H / stride)`` for any H (odd sizes and 1x1 included), so one arch builds
for every input the data layer yields (8x8 to 96x96). Convolutions follow ENAS's ReLU → conv → BN order.

Batch norm: a super-network is trained and judged on ever-changing children, so running statistics mean
nothing there; ENAS always normalises its super-network with the batch's statistics (``is_training=True`` in
the search graph). ``bn(c, shared=True)`` gives that (``track_running_stats=False``: batch statistics in train and
eval mode alike). A standalone child (``shared=False``) uses ordinary batch norm with running statistics.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Macro space (ENAS "whole channels" branches): per layer one of these.
MACRO_OPS = ("conv3", "conv5", "sep3", "sep5", "max3", "avg3")
#: Micro space (ENAS micro): per node and input slot one of these.
CELL_OPS = ("sep3", "sep5", "avg3", "max3", "identity")


def bn(c: int, shared: bool) -> nn.BatchNorm2d:
    """BatchNorm over ``c`` channels; a super-network's (``shared``) keeps no running statistics (batch statistics in
    evaluation too), as ENAS's shared weights do."""
    return nn.BatchNorm2d(c, track_running_stats=not shared)


class ReLUConvBN(nn.Sequential):
    """ReLU → k x k conv (stride s, "same" padding for odd k) → BN."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, shared: bool):
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), bn(c_out, shared))


class SepConv(nn.Sequential):
    """``repeats`` x (ReLU → depthwise k x k → pointwise 1x1 → BN); only the first one strides.

    The micro space stacks two (ENAS micro ``_fixed_conv`` with ``stack_convs=2``, NASNet); the macro space uses
    one, as ENAS's macro branches do.
    """

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, shared: bool, repeats: int = 2):
        mods: list[nn.Module] = []
        for r in range(repeats):
            c = c_in if r == 0 else c_out
            mods += [nn.ReLU(), nn.Conv2d(c, c, k, stride if r == 0 else 1, k // 2, groups=c, bias=False),
                     nn.Conv2d(c, c_out, 1, bias=False), bn(c_out, shared)]
        super().__init__(*mods)


class FactorizedReduce(nn.Module):
    """Halve the map without losing the odd pixels (ENAS ``_factorized_reduction``): ReLU, then two stride-2 1x1
    convs, one on the map and one on the map shifted by one pixel, each giving half the channels, concatenated,
    then BN. Output ``ceil(H/2) x ceil(W/2)`` with ``c_out`` channels (``c_out`` even)."""

    def __init__(self, c_in: int, c_out: int, shared: bool):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = bn(c_out, shared)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C_in, H, W) → (N, c_out, ceil(H/2), ceil(W/2))."""
        x = F.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


def pool(kind: str, stride: int) -> nn.Module:
    """3x3 max or average pool, padding 1 (average over the real pixels only), stride 1 or 2."""
    return nn.MaxPool2d(3, stride, 1) if kind == "max" else nn.AvgPool2d(3, stride, 1, count_include_pad=False)


class MacroBranch(nn.Sequential):
    """One op of the macro space on C channels (ENAS ``_conv_branch`` / ``_pool_branch``): a 1x1 conv → BN → ReLU
    that every branch starts with, then the op (conv or separable conv k x k → BN → ReLU; or a 3x3 pool)."""

    def __init__(self, op: str, c: int, shared: bool):
        if op not in MACRO_OPS:
            raise ValueError(f"unknown macro op {op!r}; expected one of {MACRO_OPS}")
        mods: list[nn.Module] = [nn.Conv2d(c, c, 1, bias=False), bn(c, shared), nn.ReLU()]
        k = int(op[-1])
        if op.startswith("conv"):
            mods += [nn.Conv2d(c, c, k, 1, k // 2, bias=False), bn(c, shared), nn.ReLU()]
        elif op.startswith("sep"):
            mods += [nn.Conv2d(c, c, k, 1, k // 2, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False),
                     bn(c, shared), nn.ReLU()]
        else:
            mods.append(pool(op[:3], 1))
        super().__init__(*mods)


def cell_op(op: str, c: int, stride: int, shared: bool) -> nn.Module:
    """One op of the micro space on C channels; stride 2 for the reduction cell's ops on the cell inputs."""
    if op in ("sep3", "sep5"):
        return SepConv(c, c, int(op[-1]), stride, shared)
    if op in ("avg3", "max3"):
        return pool(op[:3], stride)
    if op == "identity":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, shared)
    raise ValueError(f"unknown cell op {op!r}; expected one of {CELL_OPS}")


class SelectedConcatProjection(nn.Module):
    """ReLU → 1x1 conv over the concatenation of a *chosen subset* of same-shaped inputs → BN.

    It holds one C x C weight block per candidate input; a call with the chosen inputs uses only their blocks
    (ENAS's masked ``final_conv``). A super-network holds a block for every node; a standalone child only for the
    nodes it concatenates, so both compute the same function for the same choice.
    """

    def __init__(self, candidates: list[int], c_in: int, c_out: int, shared: bool):
        super().__init__()
        self.candidates = [int(i) for i in candidates]
        self.c_in = c_in
        self.weight = nn.Parameter(torch.empty(c_out, c_in * len(self.candidates), 1, 1))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bn = bn(c_out, shared)

    def forward(self, inputs: list[torch.Tensor], chosen: list[int]) -> torch.Tensor:
        """The projection of ``inputs``, the outputs of the ``chosen`` candidate nodes in that order: only those nodes'
        weight blocks are used."""
        cols = torch.cat([torch.arange(self.c_in) + self.c_in * self.candidates.index(i) for i in chosen])
        w = self.weight.index_select(1, cols.to(self.weight.device))
        return self.bn(F.conv2d(F.relu(torch.cat(inputs, dim=1)), w))
