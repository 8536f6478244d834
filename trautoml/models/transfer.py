"""Start a network from another dataset's trained weights: what a reuse by fine-tuning trains (`trautoml.decide`).

A joining dataset fine-tunes its group's model from the weights a member of the group trained (paper 002 reuses
"the same architecture and hyper-parameters" with weights trained afresh, Algorithm 1; we start from the group's
weights instead, a fraction of a training, where they fit and know the task: `zero_shot`). `warm_network` builds
the group's network for the shape the weights were trained on and loads them:

* an `InputAdapter` in front brings the new dataset's images to that shape: bilinear resize where the side
  differs, grey replicated into colour, colour averaged into grey, a learned 1×1 convolution for other channel
  counts; so every layer below the classifier keeps its trained weights;
* every parameter and buffer whose name and shape match is loaded; the classifier (the last layer) is new where
  the class counts differ. `WarmStart.loaded` / ``total`` count the tensors loaded.

The predefined-model backend (``search_backends.predefined``) puts the same adapter in front of a cut backbone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .spec import ModelSpec, build_module

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The zero-shot check's one-sided level (`zero_shot`), fixed before it was measured.
ZERO_SHOT_ALPHA = 0.01

__all__ = ["AdaptedNet", "InputAdapter", "WarmStart", "ZeroShot", "image_digests", "warm_network", "zero_shot"]


def image_digests(x: np.ndarray) -> np.ndarray:
    """A 64-bit digest of each image of ``x`` (its bytes): what trained weights record of the images they saw, so
    that a dataset whose validation or test images a member trained on is not fine-tuned from that member's weights
    (the same picture in two datasets of a stream: a re-draw of a collection's splits, a re-collection)."""
    import hashlib

    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    return np.fromiter((int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little", signed=True)
                        for r in rows), dtype=np.int64, count=len(rows))


class InputAdapter(nn.Module):
    """Resize, match the channel count a trained network expects, normalise."""

    def __init__(self, in_channels: int, want: int, resize: int | tuple[int, int] | None = None,
                 normalize: str | None = None):
        super().__init__()
        self.in_channels, self.want = in_channels, want
        self.resize = (resize, resize) if isinstance(resize, int) else (None if resize is None else tuple(resize))
        self.proj = None
        if in_channels != want and in_channels != 1 and want != 1:
            self.proj = nn.Conv2d(in_channels, want, 1)
        if normalize == "imagenet":
            if want != 3:
                raise ValueError(f"normalize='imagenet' needs a 3-channel backbone, this one takes {want}")
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        else:
            self.mean = self.std = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` resized (bilinear) when ``resize`` is set, brought to the wanted channel count (grey replicated,
        colour averaged to grey, else a learned 1×1 projection) and, with ImageNet normalisation, standardised."""
        if self.resize is not None and tuple(x.shape[-2:]) != self.resize:
            x = F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False)
        if self.proj is not None:
            x = self.proj(x)
        elif self.in_channels == 1 and self.want > 1:
            x = x.expand(-1, self.want, -1, -1)
        elif self.want == 1 and self.in_channels > 1:
            x = x.mean(1, keepdim=True)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x


class AdaptedNet(nn.Module):
    """A network trained for another input shape, behind the `InputAdapter` that feeds it."""

    def __init__(self, adapter: InputAdapter, net: nn.Module):
        super().__init__()
        self.adapter, self.net = adapter, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The trained network's output for ``x`` as the adapter brings it to the network's input shape."""
        return self.net(self.adapter(x))


@dataclass(frozen=True)
class WarmStart:
    """A network started from trained weights: ``module`` (to train), ``loaded`` of ``total`` tensors of the
    network taken from the weights."""

    module: nn.Module
    loaded: int
    total: int


def warm_network(spec: ModelSpec, state: dict[str, torch.Tensor], source_shape: tuple[int, int, int],
                 input_shape: tuple[int, int, int], num_classes: int) -> WarmStart:
    """``spec``'s network for ``num_classes`` classes with the weights ``state`` it learned on images of
    ``source_shape`` (C, H, W), fed images of ``input_shape`` (see the module doc). Tensors whose name or shape
    differ (the classifier for another class count) keep their fresh initialisation."""
    c, h, w = (int(v) for v in source_shape)
    net = build_module(spec, (c, h, w), int(num_classes))
    own = net.state_dict()
    taken = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(taken, strict=False)
    module: nn.Module = net
    if tuple(input_shape) != tuple(source_shape):
        with torch.random.fork_rng(devices=[]):   # a learned projection starts the same everywhere
            torch.manual_seed(0)
            adapter = InputAdapter(int(input_shape[0]), c, None if tuple(input_shape[1:]) == (h, w) else (h, w))
        module = AdaptedNet(adapter, net)
    return WarmStart(module, len(taken), len(own))


@dataclass(frozen=True)
class ZeroShot:
    """How a network started from another dataset's weights classifies a dataset's validation images before any
    training: ``accuracy``; ``bound``: the accuracy a network that knows nothing of the task stays under with
    probability 1 − `ZERO_SHOT_ALPHA` (always answering the commonest class is its chance, p₀; the binomial
    quantile over the validation images); ``knows``: ``accuracy`` is above it; ``flops``: what the check cost."""

    accuracy: float
    bound: float
    knows: bool
    flops: float


def zero_shot(module: nn.Module, x: np.ndarray, y: np.ndarray, input_shape: tuple[int, int, int]) -> ZeroShot:
    """Whether trained weights already know a dataset's task (``x`` / ``y``: its validation images and labels): a
    one-sided binomial test of their accuracy against chance, p₀ = the commonest class's share, at
    `ZERO_SHOT_ALPHA`. Where a dataset shares its group's labels (a subsample, a re-collection, another image size
    of the same collection) the group's weights classify it well above chance before any training; another
    family's weights with the same number of classes mostly do not, and fine-tuning them loses accuracy that
    retraining does not. Measured on the reference data (``bench/measure_finetune.py``): all 12 same-family pairs
    passed (0.63–0.98 against bounds of 0.16–0.45); 3 of 4 other-family 2-class pairs sat at chance (0.37–0.50
    against 0.60), among them the two where fine-tuning lost most (0.20 and 0.86 against 0.997 and 0.984
    retrained)."""
    from scipy import stats

    from .flops import count
    from .train import accuracy, default_device

    n = len(y)
    p0 = float(np.bincount(y).max()) / n
    bound = float(stats.binom.ppf(1.0 - ZERO_SHOT_ALPHA, n, p0)) / n
    dev = default_device()
    acc = accuracy(module.to(dev), x, y, dev)
    module.cpu()
    return ZeroShot(acc, bound, acc > bound, count(module, input_shape).forward * n)
