"""The model space ``mlp``: fully connected networks over the flattened image, a second, different space.

Arch format::

    {"hidden": [units, ...], "activation": "relu" | "elu" | "leaky_relu" | "tanh",
     "norm": "batch" | "none", "dropout": float in [0, 0.7]}

`build_mlp` flattens the input and stacks Linear → (BatchNorm1d) → activation per hidden layer, dropout on the
input of every Linear after the first (the raw pixels are not dropped), then the classifier ``Linear(...,
num_classes)``. ``hidden == []`` is multinomial logistic regression. Inputs with more than ``MAX_INPUT_FEATURES``
values (e.g. 96x96 colour) are first average-pooled to the largest g x g grid with C*g*g <= MAX_INPUT_FEATURES,
which keeps a 32x32 colour image whole and the first layer's weights bounded for larger ones.
"""
from __future__ import annotations

import math
import random
from typing import Any

from torch import nn

from .cnn import (ACTIVATIONS, DROPOUTS, MAX_UNITS, NORMS, activation_module, check_input_shape,
                  sample_train_params, validate_common)
from .spec import ModelSpec

SPACE = "mlp"
MAX_INPUT_FEATURES = 3072
MAX_HIDDEN_LAYERS = 8
HIDDEN_UNITS = (32, 64, 128, 256, 512)


def validate_mlp_arch(arch: Any) -> None:
    """Raise ValueError naming the first bad field of ``arch``; return None when it is a valid ``mlp`` arch."""
    validate_common(arch, SPACE, "hidden")
    hidden = arch.get("hidden")
    if not isinstance(hidden, list) or len(hidden) > MAX_HIDDEN_LAYERS:
        raise ValueError(f"hidden must be a list of at most {MAX_HIDDEN_LAYERS} layer widths, got {hidden!r}")
    for i, u in enumerate(hidden):
        if isinstance(u, bool) or not isinstance(u, int) or not 1 <= u <= MAX_UNITS:
            raise ValueError(f"hidden[{i}] must be an integer in [1, {MAX_UNITS}], got {u!r}")


def build_mlp(arch: dict, input_shape, num_classes: int) -> nn.Module:
    """Build the torch module of an ``mlp`` arch for inputs (C, H, W) and ``num_classes`` outputs."""
    validate_mlp_arch(arch)
    c, h, w = check_input_shape(input_shape)
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    mods: list[nn.Module] = []
    if c * h * w > MAX_INPUT_FEATURES:
        g = max(1, math.isqrt(MAX_INPUT_FEATURES // c))
        h, w = min(g, h), min(g, w)
        mods.append(nn.AdaptiveAvgPool2d((h, w)))
    mods.append(nn.Flatten())
    features = c * h * w
    p = float(arch["dropout"])
    for i, units in enumerate(arch["hidden"]):
        if p > 0 and i > 0:
            mods.append(nn.Dropout(p))
        mods.append(nn.Linear(features, units))
        if arch["norm"] == "batch":
            mods.append(nn.BatchNorm1d(units))
        mods.append(activation_module(arch["activation"]))
        features = units
    if p > 0 and arch["hidden"]:
        mods.append(nn.Dropout(p))
    mods.append(nn.Linear(features, int(num_classes)))
    return nn.Sequential(*mods)


def sample_mlp_spec(rng: random.Random) -> ModelSpec:
    """One random ``mlp`` spec: 1–3 hidden layers of HIDDEN_UNITS, activation, norm, dropout in 0..0.5, and the
    training hyper-parameters shared with ``cnn`` (`trautoml.models.cnn.sample_train_params`)."""
    arch = {"hidden": [rng.choice(HIDDEN_UNITS) for _ in range(rng.randint(1, 3))],
            "activation": rng.choice(ACTIVATIONS), "norm": rng.choice(NORMS),
            "dropout": rng.choice(DROPOUTS)}
    return ModelSpec(SPACE, arch, sample_train_params(rng))
