"""The default model space ``cnn``: chain-structured convolutional networks.

Arch format (a contract: MetaQNN and other backends emit it)::

    {"layers": [{"type": "conv", "filters": F, "kernel": K, "stride": S},
                {"type": "pool", "op": "max" | "avg", "size": P, "stride": P},
                ...,
                {"type": "fc", "units": U}, ...],
     "activation": "relu" | "elu" | "leaky_relu" | "tanh",
     "norm": "batch" | "none",
     "dropout": float in [0, 0.7]}

Conv and pool layers come first, fc layers after them; the classifier ``Linear(..., num_classes)`` is appended
by `build_cnn`. How the builder reads an arch:

- conv: TensorFlow-style "same" padding for any kernel and stride (asymmetric when needed), so the map goes from
  H to ceil(H / S) and never below 1x1. ``norm="batch"`` puts a BatchNorm2d between the conv (then without bias)
  and the activation.
- pool: no padding; a pool whose window is larger than the current map (H or W < P) is **skipped**, so one arch
  builds for every input the data layer yields (8x8 to 96x96, 1 or 3 channels). Strides never shrink a map to
  nothing (ceil above), so only pools are ever skipped. `cnn_layer_shapes` reports what was kept.
- head: the feature map is flattened before the first fc layer (or before the classifier when there is none).
  When it holds more than ``MAX_FLAT_FEATURES`` values it is first average-pooled (adaptively) to the largest
  g x g grid with C*g*g <= MAX_FLAT_FEATURES (g >= 1, i.e. global average pooling at the extreme): that keeps
  some spatial layout for small maps yet bounds the fc weights for a 96x96 input without pooling layers.
- fc: Linear → (BatchNorm1d) → activation. Dropout with probability ``dropout`` is applied to the input of every
  Linear after the flatten (hidden fc layers and the classifier).

Validation (`validate_cnn_arch`) raises ValueError naming the bad field, e.g. ``layers[2].kernel``.
"""
from __future__ import annotations

import math
import random
from typing import Any

from torch import nn

from .spec import DEFAULT_TRAIN, ModelSpec

SPACE = "cnn"
ACTIVATIONS = ("relu", "elu", "leaky_relu", "tanh")
NORMS = ("batch", "none")
POOL_OPS = ("max", "avg")
MAX_DROPOUT = 0.7
MAX_FLAT_FEATURES = 2048
#: Size limits that keep a malformed arch from allocating absurd modules; every sampled arch is far inside them.
MAX_FILTERS = 1024
MAX_UNITS = 4096
MAX_KERNEL = 11

# Sampling ranges (see `sample_cnn_spec`).
FILTERS = (8, 16, 24, 32, 48, 64)
KERNELS = (3, 5)
FC_UNITS = (32, 64, 128, 256)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
BATCH_SIZES = (32, 64, 128)
LR_RANGE = {"sgd": (1e-3, 0.3), "adam": (1e-4, 1e-2)}
WEIGHT_DECAY_RANGE = (1e-6, 1e-2)
INIT_SCALE_RANGE = (0.5, 2.0)
#: Sampled archs cost at most this many multiply-accumulates per forward pass of one 28x28 grey image; this is
#: what keeps one epoch over 2,000 such images near 1–3 s on one CPU core (compute grows with the input's area).
MAX_SAMPLE_MACS = 3_000_000
REFERENCE_SHAPE = (1, 28, 28)


# --------------------------------------------------------------------------------------------------- validation

def _int_field(d: dict, key: str, where: str, lo: int, hi: int) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{where}.{key} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _choice_field(d: dict, key: str, where: str, choices: tuple[str, ...]) -> str:
    v = d.get(key)
    if v not in choices:
        raise ValueError(f"{where}{key} must be one of {choices}, got {v!r}")
    return v


def validate_common(arch: Any, space: str, own_field: str) -> None:
    """Check what ``cnn`` and ``mlp`` archs share: a dict of ``own_field``, activation, norm and dropout only."""
    if not isinstance(arch, dict):
        raise ValueError(f"a {space} arch must be a dict, got {type(arch).__name__}")
    unknown = set(arch) - {own_field, "activation", "norm", "dropout"}
    if unknown:
        raise ValueError(f"unknown {space} arch field(s): {', '.join(sorted(unknown))}")
    _choice_field(arch, "activation", "", ACTIVATIONS)
    _choice_field(arch, "norm", "", NORMS)
    p = arch.get("dropout")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= MAX_DROPOUT:
        raise ValueError(f"dropout must be a number in [0, {MAX_DROPOUT}], got {p!r}")


def validate_cnn_arch(arch: Any) -> None:
    """Raise ValueError naming the first bad field of ``arch``; return None when it is a valid ``cnn`` arch."""
    validate_common(arch, SPACE, "layers")
    layers = arch.get("layers")
    if not isinstance(layers, list):
        raise ValueError(f"layers must be a list, got {layers!r}")
    seen_fc = False
    for i, layer in enumerate(layers):
        where = f"layers[{i}]"
        if not isinstance(layer, dict):
            raise ValueError(f"{where} must be a dict, got {layer!r}")
        kind = _choice_field(layer, "type", f"{where}.", ("conv", "pool", "fc"))
        allowed = {"conv": {"type", "filters", "kernel", "stride"}, "pool": {"type", "op", "size", "stride"},
                   "fc": {"type", "units"}}[kind]
        extra = set(layer) - allowed
        if extra:
            raise ValueError(f"{where} ({kind}) has unknown field(s): {', '.join(sorted(extra))}")
        if kind == "fc":
            seen_fc = True
            _int_field(layer, "units", where, 1, MAX_UNITS)
            continue
        if seen_fc:
            raise ValueError(f"{where}.type: a {kind} layer cannot follow an fc layer (conv/pool layers come first)")
        if kind == "conv":
            _int_field(layer, "filters", where, 1, MAX_FILTERS)
            _int_field(layer, "kernel", where, 1, MAX_KERNEL)
            _int_field(layer, "stride", where, 1, MAX_KERNEL)
        else:
            _choice_field(layer, "op", f"{where}.", POOL_OPS)
            _int_field(layer, "size", where, 1, MAX_KERNEL)
            _int_field(layer, "stride", where, 1, MAX_KERNEL)


# ------------------------------------------------------------------------------------------------------ builder

def activation_module(name: str) -> nn.Module:
    """A fresh torch module for activation ``name`` (one of `ACTIVATIONS`)."""
    return {"relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}[name]()


def check_input_shape(input_shape) -> tuple[int, int, int]:
    """``input_shape`` as a (channels, height, width) tuple of ints; ValueError unless it has three positive sizes."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (channels, height, width) with positive sizes, got {input_shape!r}")
    return shape


def _same_conv(c_in: int, h: int, w: int, layer: dict, bias: bool) -> tuple[nn.Module, int, int]:
    """A conv with TF "same" padding: output ceil(H/S) x ceil(W/S) for any kernel and stride."""
    k, s = layer["kernel"], layer["stride"]
    ho, wo = math.ceil(h / s), math.ceil(w / s)
    ph, pw = max((ho - 1) * s + k - h, 0), max((wo - 1) * s + k - w, 0)
    conv = nn.Conv2d(c_in, layer["filters"], k, stride=s, bias=bias)
    if ph % 2 == 0 and pw % 2 == 0:
        conv.padding = (ph // 2, pw // 2)
        return conv, ho, wo
    return nn.Sequential(nn.ZeroPad2d((pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)), conv), ho, wo


def flatten_head(c: int, h: int, w: int) -> tuple[list[nn.Module], int]:
    """Modules that turn a (c, h, w) map into a vector of at most MAX_FLAT_FEATURES values, and its length."""
    if c * h * w <= MAX_FLAT_FEATURES:
        return [nn.Flatten()], c * h * w
    g = max(1, math.isqrt(MAX_FLAT_FEATURES // c))
    gh, gw = min(g, h), min(g, w)
    return [nn.AdaptiveAvgPool2d((gh, gw)), nn.Flatten()], c * gh * gw


def cnn_layer_shapes(arch: dict, input_shape) -> list[tuple[int, int, int] | None]:
    """The (C, H, W) after each conv/pool layer of ``arch`` for ``input_shape``; None where a pool is skipped."""
    c, h, w = check_input_shape(input_shape)
    out: list[tuple[int, int, int] | None] = []
    for layer in arch["layers"]:
        if layer["type"] == "conv":
            c, h, w = layer["filters"], math.ceil(h / layer["stride"]), math.ceil(w / layer["stride"])
        elif layer["type"] == "pool":
            size, s = layer["size"], layer["stride"]
            if h < size or w < size:
                out.append(None)
                continue
            h, w = (h - size) // s + 1, (w - size) // s + 1
        else:
            continue
        out.append((c, h, w))
    return out


def build_cnn(arch: dict, input_shape, num_classes: int) -> nn.Module:
    """Build the torch module of a ``cnn`` arch for inputs (C, H, W) and ``num_classes`` outputs."""
    validate_cnn_arch(arch)
    c, h, w = check_input_shape(input_shape)
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    batch_norm = arch["norm"] == "batch"
    p = float(arch["dropout"])
    mods: list[nn.Module] = []
    layers = arch["layers"]
    i = 0
    while i < len(layers) and layers[i]["type"] != "fc":
        layer = layers[i]
        if layer["type"] == "conv":
            conv, h, w = _same_conv(c, h, w, layer, bias=not batch_norm)
            c = layer["filters"]
            mods.append(conv)
            if batch_norm:
                mods.append(nn.BatchNorm2d(c))
            mods.append(activation_module(arch["activation"]))
        else:
            size, s = layer["size"], layer["stride"]
            if h >= size and w >= size:  # skipped where the window does not fit the map (module docstring)
                pool = nn.MaxPool2d if layer["op"] == "max" else nn.AvgPool2d
                mods.append(pool(size, stride=s))
                h, w = (h - size) // s + 1, (w - size) // s + 1
        i += 1
    head, features = flatten_head(c, h, w)
    mods += head
    for layer in layers[i:]:
        if p > 0:
            mods.append(nn.Dropout(p))
        mods.append(nn.Linear(features, layer["units"]))
        features = layer["units"]
        if batch_norm:
            mods.append(nn.BatchNorm1d(features))
        mods.append(activation_module(arch["activation"]))
    if p > 0:
        mods.append(nn.Dropout(p))
    mods.append(nn.Linear(features, int(num_classes)))
    return nn.Sequential(*mods)


def cnn_macs(arch: dict, input_shape=REFERENCE_SHAPE, num_classes: int = 10) -> int:
    """Multiply-accumulates of one forward pass (convs and linears), the cost model the sampler bounds."""
    validate_cnn_arch(arch)
    c, h, w = check_input_shape(input_shape)
    macs = 0
    layers = arch["layers"]
    shapes = cnn_layer_shapes(arch, input_shape)
    for layer, shape in zip(layers, shapes):
        if layer["type"] == "conv":
            co, ho, wo = shape  # type: ignore[misc]
            macs += c * co * layer["kernel"] ** 2 * ho * wo
        if shape is not None:
            c, h, w = shape
    _, features = flatten_head(c, h, w)
    for layer in layers[len(shapes):]:
        macs += features * layer["units"]
        features = layer["units"]
    return macs + features * num_classes


# ------------------------------------------------------------------------------------------ sampling, mutation

def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    """Log-uniform in [lo, hi], rounded to 3 significant digits so specs read and serialise cleanly."""
    return float(f"{math.exp(rng.uniform(math.log(lo), math.log(hi))):.3g}")


def sample_train_params(rng: random.Random) -> dict:
    """Training hyper-parameters shared by the ``cnn`` and ``mlp`` spaces."""
    opt = rng.choice(("sgd", "adam"))
    return {"optimizer": opt, "lr": log_uniform(rng, *LR_RANGE[opt]), "momentum": 0.9,
            "weight_decay": log_uniform(rng, *WEIGHT_DECAY_RANGE),
            "init_scale": log_uniform(rng, *INIT_SCALE_RANGE), "batch_size": rng.choice(BATCH_SIZES)}


def _sample_arch(rng: random.Random) -> dict:
    layers: list[dict] = []
    for _ in range(rng.randint(1, 4)):
        stride = 2 if rng.random() < 0.15 else 1
        layers.append({"type": "conv", "filters": rng.choice(FILTERS), "kernel": rng.choice(KERNELS),
                       "stride": stride})
        if rng.random() < 0.5:
            layers.append({"type": "pool", "op": rng.choice(POOL_OPS), "size": 2, "stride": 2})
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        layers.append({"type": "fc", "units": rng.choice(FC_UNITS)})
    return {"layers": layers, "activation": rng.choice(ACTIVATIONS), "norm": rng.choice(NORMS),
            "dropout": rng.choice(DROPOUTS)}


def cheap_enough(arch: dict) -> bool:
    """Whether ``arch`` is within the sampler's compute cap (MAX_SAMPLE_MACS on a 28x28 grey image)."""
    return cnn_macs(arch) <= MAX_SAMPLE_MACS


def sample_cnn_spec(rng: random.Random) -> ModelSpec:
    """One random ``cnn`` spec: 1–4 convs (filters from FILTERS, kernel 3/5, stride 2 with p=0.15, a 2x2 max/avg
    pool after each with p=0.5), 0–2 fc layers (32–256 units), activation, norm, dropout in 0..0.5, and the
    training hyper-parameters of `sample_train_params`.

    Archs that cost more than MAX_SAMPLE_MACS on a 28x28 grey image are redrawn (a rejection step, so the space
    leans a little towards pooled / narrower nets); this keeps a trial CPU-sized.
    """
    for _ in range(1000):
        arch = _sample_arch(rng)
        if cheap_enough(arch):
            return ModelSpec(SPACE, arch, sample_train_params(rng))
    raise RuntimeError("could not sample a cnn arch under MAX_SAMPLE_MACS")  # pragma: no cover - p ~ 0


def _neighbour(values: tuple, current, rng: random.Random):
    """A value next to ``current`` in the sorted ``values`` (``current`` need not be one of them)."""
    i = min(range(len(values)), key=lambda j: abs(values[j] - current))
    options = [values[j] for j in (i - 1, i + 1) if 0 <= j < len(values)]
    if values[i] != current:
        options.append(values[i])
    return rng.choice(options)


def _scaled(value: float, rng: random.Random, factor: float, lo: float, hi: float) -> float:
    v = value * (factor if rng.random() < 0.5 else 1 / factor)
    return float(f"{min(hi, max(lo, v)):.3g}")


def _mutate_arch(arch: dict, rng: random.Random) -> None:
    layers = arch["layers"]
    n_fc = sum(layer["type"] == "fc" for layer in layers)
    first_fc = len(layers) - n_fc
    convs = [i for i, layer in enumerate(layers) if layer["type"] == "conv"]
    fcs = list(range(first_fc, len(layers)))
    moves = ["activation", "norm", "dropout", "add_conv", "toggle_pool", "add_fc"]
    if convs:
        moves += ["filters", "filters", "kernel"]
    if len(convs) > 1:
        moves.append("remove_conv")
    if fcs:
        moves += ["units", "remove_fc"]
    move = rng.choice(moves)
    if move == "activation":
        arch["activation"] = rng.choice([a for a in ACTIVATIONS if a != arch["activation"]])
    elif move == "norm":
        arch["norm"] = "none" if arch["norm"] == "batch" else "batch"
    elif move == "dropout":
        arch["dropout"] = round(min(0.5, max(0.0, arch["dropout"] + rng.choice((-0.1, 0.1)))), 2)
    elif move == "filters":
        layer = layers[rng.choice(convs)]
        layer["filters"] = _neighbour(FILTERS, layer["filters"], rng)
    elif move == "kernel":
        layer = layers[rng.choice(convs)]
        layer["kernel"] = rng.choice([k for k in KERNELS if k != layer["kernel"]] or list(KERNELS))
    elif move == "add_conv":
        pos = rng.randint(0, first_fc)
        layers.insert(pos, {"type": "conv", "filters": rng.choice(FILTERS), "kernel": rng.choice(KERNELS),
                            "stride": 1})
    elif move == "remove_conv":
        del layers[rng.choice(convs)]
    elif move == "toggle_pool":
        i = rng.choice(convs) if convs else -1
        if i + 1 < first_fc and layers[i + 1]["type"] == "pool":
            del layers[i + 1]
        else:
            layers.insert(i + 1, {"type": "pool", "op": rng.choice(POOL_OPS), "size": 2, "stride": 2})
    elif move == "add_fc":
        layers.insert(rng.randint(first_fc, len(layers)), {"type": "fc", "units": rng.choice(FC_UNITS)})
    elif move == "remove_fc":
        del layers[rng.choice(fcs)]
    elif move == "units":
        layer = layers[rng.choice(fcs)]
        layer["units"] = _neighbour(FC_UNITS, layer["units"], rng)


def mutate_train_params(train: dict, rng: random.Random) -> dict:
    """A copy of ``train`` with one hyper-parameter moved a step (learning rate, weight decay, ...); keys the
    spec omits start from their `DEFAULT_TRAIN` values."""
    t, cur = dict(train), {**DEFAULT_TRAIN, **train}
    move = rng.choice(("lr", "lr", "weight_decay", "init_scale", "batch_size", "optimizer"))
    if move == "lr":
        t["lr"] = _scaled(float(cur["lr"]), rng, 2.0, *LR_RANGE.get(cur["optimizer"], LR_RANGE["sgd"]))
    elif move == "weight_decay":
        t["weight_decay"] = _scaled(float(cur["weight_decay"]), rng, 3.0, *WEIGHT_DECAY_RANGE)
    elif move == "init_scale":
        t["init_scale"] = _scaled(float(cur["init_scale"]), rng, 1.25, *INIT_SCALE_RANGE)
    elif move == "batch_size":
        t["batch_size"] = _neighbour(BATCH_SIZES, int(cur["batch_size"]), rng)
    else:
        t["optimizer"] = "adam" if cur["optimizer"] == "sgd" else "sgd"
        t["lr"] = log_uniform(rng, *LR_RANGE[t["optimizer"]])
    return t


def mutate_cnn_spec(spec: ModelSpec, rng: random.Random) -> ModelSpec:
    """A neighbour of ``spec`` (for warm-start neighbourhoods): one arch or one training change, never the same
    spec, always valid; an arch change that would exceed MAX_SAMPLE_MACS is redrawn unless ``spec`` already does.
    """
    if spec.space != SPACE:
        raise ValueError(f"mutate_cnn_spec needs a {SPACE!r} spec, got space {spec.space!r}")
    validate_cnn_arch(spec.arch)
    budget = max(MAX_SAMPLE_MACS, cnn_macs(spec.arch))
    for _ in range(100):
        d = spec.to_dict()
        if rng.random() < 0.6:
            _mutate_arch(d["arch"], rng)
            if not d["arch"]["layers"] or cnn_macs(d["arch"]) > budget:
                continue
        else:
            d["train"] = mutate_train_params(d["train"], rng)
        new = ModelSpec.from_dict(d)
        if new != spec:
            return new
    raise RuntimeError("could not mutate the spec")  # pragma: no cover - p ~ 0
