"""The landmarker network family (model space ``landmarker``): small conv nets that accept any image the data layer
produces (1 or 3 channels, 8×8 to 96×96 and beyond, any class count).

Architecture, for ``arch = {"depth", "width", "kernel", "stride", "skip"}``:

1. inputs with a side larger than :data:`MAX_SIDE` (32) are average-pooled (adaptive) down to at most 32×32, so a
   landmarker's cost does not grow with the resolution of the dataset (96×96 STL-10 costs what CIFAR-10 costs);
2. ``depth`` conv blocks of ``width`` channels, each ``conv(kernel, stride) → BatchNorm → ReLU``; with ``skip`` each
   block adds a residual shortcut (identity, or a 1×1 conv + BatchNorm where the channel count or the stride changes);
   a stride of 2 is skipped (stride 1 used) where the feature map would fall below 2×2;
3. average pooling to a 2×2 grid (:data:`HEAD_GRID`; the map is never smaller, see 2.), then one linear layer to
   ``num_classes``. A 2×2 grid rather than global average pooling: a stride-1 landmarker has a receptive field of
   a few pixels, and global pooling would leave it only texture statistics (Fashion-MNIST ~0.2 accuracy after a
   profile trial instead of ~0.5); the coarse layout costs 4× the head's weights and nothing else.

BatchNorm normalises with the statistics of the batch it sees, in training and evaluation alike
(``track_running_stats=False``; evaluation batches hold up to 1,024 images). A landmarker trains for only 16–64
steps: running averages would still carry their initial values (momentum 0.1) or the statistics of the first,
very different, weights (cumulative average), and both cost 10–40 accuracy points in our trials. A consequence: a
landmarker's evaluation depends (slightly) on how the evaluation set is batched, fixed by
``trautoml.models.train.EVAL_BATCH``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: Largest side a landmarker works at; larger inputs are average-pooled down first.
MAX_SIDE = 32
#: The reference input the cost of a landmarker is measured on (the largest one it ever works at).
REFERENCE_SHAPE = (3, MAX_SIDE, MAX_SIDE)
#: The head pools the last feature map to HEAD_GRID × HEAD_GRID cells.
HEAD_GRID = 2

ARCH_KEYS = ("depth", "width", "kernel", "stride", "skip")


def working_size(height: int, width: int) -> tuple[int, int]:
    """The (height, width) a landmarker works at for an input of the given size."""
    return min(int(height), MAX_SIDE), min(int(width), MAX_SIDE)


def shrink(x: torch.Tensor) -> torch.Tensor:
    """Average-pool a (N, C, H, W) batch down to :func:`working_size` (a no-op for inputs ≤ 32×32)."""
    h, w = x.shape[-2:]
    size = working_size(h, w)
    if size == (h, w):
        return x
    return F.adaptive_avg_pool2d(x, size)


def shrink_array(x: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """:func:`shrink` for a float32 numpy array, in chunks. ``profile`` uses it to send workers small images: the
    module's own pooling is then a no-op, and the result is the same as pooling inside the module."""
    h, w = x.shape[-2:]
    if working_size(h, w) == (h, w):
        return x
    with torch.no_grad():
        parts = [shrink(torch.from_numpy(np.ascontiguousarray(x[i:i + chunk]))).numpy()
                 for i in range(0, len(x), chunk)]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _check_arch(arch: dict) -> dict:
    missing = [k for k in ARCH_KEYS if k not in arch]
    if missing:
        raise ValueError(f"landmarker arch lacks {missing}; got {arch!r}")
    a = {"depth": int(arch["depth"]), "width": int(arch["width"]), "kernel": int(arch["kernel"]),
         "stride": int(arch["stride"]), "skip": bool(arch["skip"])}
    if a["depth"] < 1 or a["width"] < 1:
        raise ValueError(f"landmarker depth and width must be positive; got {arch!r}")
    if a["kernel"] < 1 or a["kernel"] % 2 == 0:
        raise ValueError(f"landmarker kernel must be odd and positive; got {arch!r}")
    if a["stride"] not in (1, 2):
        raise ValueError(f"landmarker stride must be 1 or 2; got {arch!r}")
    return a


def _out_side(side: int, stride: int) -> int:
    return (side - 1) // stride + 1  # 'same' padding (kernel // 2) with an odd kernel


def block_plan(arch: dict, input_shape: tuple[int, int, int]) -> list[tuple[int, int, int, int, int]]:
    """Per block: (in_channels, out_channels, stride, out_height, out_width) for ``input_shape`` = (C, H, W)."""
    a = _check_arch(arch)
    c, h, w = (int(s) for s in input_shape)
    h, w = working_size(h, w)
    plan = []
    for _ in range(a["depth"]):
        s = a["stride"]
        if s > 1 and (_out_side(h, s) < 2 or _out_side(w, s) < 2):
            s = 1  # never shrink the map below 2×2
        h, w = _out_side(h, s), _out_side(w, s)
        plan.append((c, a["width"], s, h, w))
        c = a["width"]
    return plan


def forward_macs(arch: dict, input_shape: tuple[int, int, int] = REFERENCE_SHAPE, num_classes: int = 10) -> int:
    """Multiply-accumulates of one forward pass (convs, shortcuts and head; BatchNorm and pooling ignored)."""
    a = _check_arch(arch)
    k2 = a["kernel"] ** 2
    macs = 0
    for cin, cout, s, h, w in block_plan(a, input_shape):
        macs += h * w * cout * cin * k2
        if a["skip"] and (cin != cout or s != 1):
            macs += h * w * cout * cin
    return macs + a["width"] * HEAD_GRID * HEAD_GRID * int(num_classes)


#: Time of one normalised activation (BatchNorm, ReLU, residual add, forward and backward) in multiply-accumulates
#: of a convolution, measured on CPU with torch 2.x: BatchNorm runs at ~6 ns/element, a 25-channel 3×3 conv at
#: ~0.15 ns/MAC. Thin, full-resolution landmarkers are memory-bound, and MACs alone underrate them 5-10×.
ACTIVATION_COST = 50


def activations(arch: dict, input_shape: tuple[int, int, int] = REFERENCE_SHAPE) -> int:
    """Elements per image that go through BatchNorm (block outputs and projected shortcuts)."""
    a = _check_arch(arch)
    n = 0
    for cin, cout, s, h, w in block_plan(a, input_shape):
        n += h * w * cout * (2 if a["skip"] and (cin != cout or s != 1) else 1)
    return n


def cost(arch: dict, input_shape: tuple[int, int, int] = REFERENCE_SHAPE, num_classes: int = 10) -> float:
    """Relative training time per image (MAC-equivalents): :func:`forward_macs` + ACTIVATION_COST × activations."""
    return float(forward_macs(arch, input_shape, num_classes) + ACTIVATION_COST * activations(arch, input_shape))


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, skip: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, track_running_stats=False)
        self.shortcut: nn.Module | None = None
        if skip:
            if cin == cout and stride == 1:
                self.shortcut = nn.Identity()
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(cout, track_running_stats=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class Landmarker(nn.Module):
    """The landmarker network of the module doc for ``arch``, taking images of ``input_shape`` (C, H, W) to
    ``num_classes`` logits (at least 2)."""

    def __init__(self, arch: dict, input_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        a = _check_arch(arch)
        if int(num_classes) < 2:
            raise ValueError(f"a landmarker needs at least 2 classes, got {num_classes}")
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
        c, h, w = (int(s) for s in input_shape)
        self.input_shape = (c, h, w)
        self.blocks = nn.Sequential(*[_Block(cin, cout, a["kernel"], s, a["skip"])
                                      for cin, cout, s, _, _ in block_plan(a, self.input_shape)])
        self.head = nn.Linear(a["width"] * HEAD_GRID * HEAD_GRID, int(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N × num_classes) for a batch ``x`` of images (N × C × H × W)."""
        x = self.blocks(shrink(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, HEAD_GRID), 1))


def build_landmarker(arch: dict, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Entry point of model space ``landmarker`` (see pyproject.toml)."""
    return Landmarker(arch, input_shape, num_classes)


def describe(arch: dict) -> str:
    """One readable line for ``arch``: its blocks, forward MACs and training cost at 32×32×3."""
    a = _check_arch(arch)
    return (f"{a['depth']}x conv{a['kernel']}x{a['kernel']}/{a['stride']} w{a['width']}"
            f"{' +skip' if a['skip'] else ''} ({forward_macs(a) / 1e6:.1f}M MACs, cost {cost(a) / 1e6:.1f}M @32x32x3)")


__all__ = ["ACTIVATION_COST", "HEAD_GRID", "MAX_SIDE", "REFERENCE_SHAPE", "Landmarker", "activations", "block_plan",
           "build_landmarker", "cost", "describe", "forward_macs", "shrink", "shrink_array", "working_size"]
