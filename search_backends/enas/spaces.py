"""ENAS's two model spaces as ``ModelSpec`` spaces, and the transfer of basic cells (paper 002 §1 ii, §3.4).

Space ``enas-macro`` (entry point `build_macro`), a chain of layers (Pham et al. 2018 §2.3)::

    {"layers": [{"op": "sep3", "skips": []},          # layer 1: op on the stem's output; no skip choice
                {"op": "conv5", "skips": [0]},        # layer j: op on node j-1, plus skips from nodes 0..j-2
                ...],
     "channels": 16,                                  # even; doubled after each reduction
     "reduce_after": [2, 4],                          # layers (1-based) after which every kept node is halved
     "dropout": 0.0}

Node 0 is the stem, node j the output of layer j. Ops: `ops.MACRO_OPS` (conv 3x3/5x5, separable conv 3x3/5x5,
max/avg pool 3x3).

Space ``enas-cells`` (entry point `build_cells`), cells stacked into a network (Pham et al. 2018 §2.4)::

    {"normal":    [{"inputs": [0, 1], "ops": ["sep3", "identity"]},   # node 2: two inputs among nodes 0..1
                   {"inputs": [2, 0], "ops": ["avg3", "sep5"]}, ...], # node n: two inputs among nodes 0..n-1
     "reduction": [...same format...],
     "cells_per_stage": 1, "channels": 16, "reductions": 2, "dropout": 0.0,
     "fitted_to": {"input_shape": [1, 28, 28], "num_classes": 10}}   # what depth/width were chosen for

Nodes 0 and 1 are the two previous cells' outputs. Ops: `ops.CELL_OPS` (separable conv 3x3/5x5, avg/max pool 3x3,
identity). The network: stem, ``reductions + 1`` stages of ``cells_per_stage`` normal cells, one reduction cell
between stages. ``fitted_to`` is informational for the builder; `stack_cells` reads it.

Transfer of basic cells (`stack_cells`): a dataset that joins a group whose model came from the cell search keeps
the group's normal and reduction cells verbatim, its cells per stage, dropout and training hyper-parameters, and
re-stacks them for its own data; the weights are trained afresh (the core builds and trains the spec). Rules:

- depth: ``reductions = reductions_for(input_shape) = clamp(round(log2(min(H, W) / 8)), 1, 3)``, i.e. as many
  reduction cells as bring the map to about 8x8 (8→1 giving 4x4, 16→1, 28→2 giving 7x7, 32→2 giving 8x8,
  64→3, 96→3 giving 12x12), at least one so both searched cells are used, at most three. More stages also means
  more normal cells (``(reductions + 1) * cells_per_stage``).
- width: ``channels = c_g * sqrt(log2 K / log2 K_g)`` rounded to an even number in [8, 128], where c_g and K_g are
  the group model's channels and class count (``fitted_to``; the group's K when absent) and K the joining
  dataset's class count: more classes ask for wider final features, and the square root of the log keeps the
  change mild (2 classes vs 10: x0.55; 100 vs 10: x1.41).

ENAS's cell search fits its spec with the same two rules (`fit_cells_arch`), so re-stacking a spec for the
dataset it was searched on gives the spec back unchanged.
"""
from __future__ import annotations

import copy
import math
from typing import Any

from trautoml.models.spec import ModelSpec

from .ops import CELL_OPS, MACRO_OPS
from .supernet import MacroNet, MicroNet

MACRO_SPACE = "enas-macro"
CELLS_SPACE = "enas-cells"
MAX_CHANNELS = 256
MAX_LAYERS = 48
MAX_NODES = 12
MAX_CELLS_PER_STAGE = 8
MAX_REDUCTIONS = 5
MAX_DROPOUT = 0.9


# ------------------------------------------------------------------------------------------------------ validation

def _int(d: dict, key: str, where: str, lo: int, hi: int) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{where}{key} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _common(arch: dict) -> None:
    c = _int(arch, "channels", "", 2, MAX_CHANNELS)
    if c % 2:
        raise ValueError(f"channels must be even (factorized reductions split them in two), got {c}")
    p = arch.get("dropout", 0.0)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= MAX_DROPOUT:
        raise ValueError(f"dropout must be a number in [0, {MAX_DROPOUT}], got {p!r}")


def _unknown(arch: dict, allowed: set[str], space: str) -> None:
    extra = set(arch) - allowed
    if extra:
        raise ValueError(f"unknown {space} arch field(s): {', '.join(sorted(extra))}")


def validate_macro_arch(arch: Any) -> None:
    """Raise ValueError naming the first bad field of an ``enas-macro`` arch."""
    if not isinstance(arch, dict):
        raise ValueError(f"an {MACRO_SPACE} arch must be a dict, got {type(arch).__name__}")
    _unknown(arch, {"layers", "channels", "reduce_after", "dropout"}, MACRO_SPACE)
    layers = arch.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise ValueError(f"layers must be a list of 1..{MAX_LAYERS} layers, got {layers!r}")
    for j, layer in enumerate(layers, start=1):
        where = f"layers[{j - 1}]"
        if not isinstance(layer, dict) or set(layer) != {"op", "skips"}:
            raise ValueError(f"{where} must be a dict with exactly 'op' and 'skips', got {layer!r}")
        if layer["op"] not in MACRO_OPS:
            raise ValueError(f"{where}.op must be one of {MACRO_OPS}, got {layer['op']!r}")
        skips = layer["skips"]
        if (not isinstance(skips, list) or len(set(skips)) != len(skips)
                or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= j - 2 for i in skips)):
            raise ValueError(f"{where}.skips must list distinct nodes in 0..{j - 2} (layer {j} reads node {j - 1}), "
                             f"got {skips!r}")
    _common(arch)
    red = arch.get("reduce_after")
    if (not isinstance(red, list) or len(set(red)) != len(red) or len(red) > MAX_REDUCTIONS
            or any(isinstance(j, bool) or not isinstance(j, int) or not 1 <= j <= len(layers) for j in red)):
        raise ValueError(f"reduce_after must list at most {MAX_REDUCTIONS} distinct layers in 1..{len(layers)}, "
                         f"got {red!r}")


def validate_cell(cell: Any, where: str) -> None:
    """Raise ValueError naming the first bad field of ``cell``, a normal or reduction cell of an ``enas-cells`` arch:
    1..``MAX_NODES`` nodes, each ``{"inputs": [i, j], "ops": [a, b]}`` with node n's inputs in 0..n+1 and ops from
    ``CELL_OPS``. ``where`` names the cell in the message."""
    if not isinstance(cell, list) or not 1 <= len(cell) <= MAX_NODES:
        raise ValueError(f"{where} must be a list of 1..{MAX_NODES} nodes, got {cell!r}")
    for n, node in enumerate(cell):
        w = f"{where}[{n}]"
        if not isinstance(node, dict) or set(node) != {"inputs", "ops"}:
            raise ValueError(f"{w} must be a dict with exactly 'inputs' and 'ops', got {node!r}")
        ins, ops = node["inputs"], node["ops"]
        if (not isinstance(ins, list) or len(ins) != 2
                or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= n + 1 for i in ins)):
            raise ValueError(f"{w}.inputs must be two nodes in 0..{n + 1}, got {ins!r}")
        if not isinstance(ops, list) or len(ops) != 2 or any(op not in CELL_OPS for op in ops):
            raise ValueError(f"{w}.ops must be two of {CELL_OPS}, got {ops!r}")


def validate_cells_arch(arch: Any) -> None:
    """Raise ValueError naming the first bad field of an ``enas-cells`` arch."""
    if not isinstance(arch, dict):
        raise ValueError(f"an {CELLS_SPACE} arch must be a dict, got {type(arch).__name__}")
    _unknown(arch, {"normal", "reduction", "cells_per_stage", "channels", "reductions", "dropout", "fitted_to"},
             CELLS_SPACE)
    validate_cell(arch.get("normal"), "normal")
    validate_cell(arch.get("reduction"), "reduction")
    _int(arch, "cells_per_stage", "", 1, MAX_CELLS_PER_STAGE)
    _int(arch, "reductions", "", 0, MAX_REDUCTIONS)
    _common(arch)
    fitted = arch.get("fitted_to", {})
    if not isinstance(fitted, dict):
        raise ValueError(f"fitted_to must be a dict, got {fitted!r}")


def _check(input_shape, num_classes) -> tuple[tuple[int, int, int], int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (channels, height, width) with positive sizes, got {input_shape!r}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    return shape, int(num_classes)


# -------------------------------------------------------------------------------------------------------- builders

def build_macro(arch: dict, input_shape, num_classes: int) -> MacroNet:
    """The standalone network of an ``enas-macro`` arch (entry point of space ``enas-macro``)."""
    validate_macro_arch(arch)
    shape, k = _check(input_shape, num_classes)
    return MacroNet(shape, k, len(arch["layers"]), arch["channels"], arch["reduce_after"],
                    float(arch.get("dropout", 0.0)), arch=copy.deepcopy(arch))


def build_cells(arch: dict, input_shape, num_classes: int) -> MicroNet:
    """The standalone network of an ``enas-cells`` arch (entry point of space ``enas-cells``)."""
    validate_cells_arch(arch)
    shape, k = _check(input_shape, num_classes)
    return MicroNet(shape, k, len(arch["normal"]), arch["cells_per_stage"], arch["channels"], arch["reductions"],
                    float(arch.get("dropout", 0.0)), arch=copy.deepcopy(arch))


# ------------------------------------------------------------------------------------- depth / width rules, transfer

def reductions_for(input_shape) -> int:
    """Reduction stages for an input: about an 8x8 final map, between 1 and 3 (module docstring)."""
    side = min(int(input_shape[1]), int(input_shape[2]))
    return max(1, min(3, round(math.log2(side / 8))))


def macro_reduce_after(num_layers: int, reductions: int) -> list[int]:
    """Reductions spread evenly over the chain, as ENAS's ``pool_layers`` (12 layers, 2 reductions: after 4, 8)."""
    points = {round(num_layers * k / (reductions + 1)) for k in range(1, reductions + 1)}
    return sorted(j for j in points if 1 <= j < num_layers)


def _even(x: float, lo: int = 8, hi: int = 128) -> int:
    return int(min(hi, max(lo, 2 * round(x / 2))))


def width_for(group_channels: int, group_classes: int, num_classes: int) -> int:
    """Channels for ``num_classes`` given a group model of ``group_channels`` fitted to ``group_classes``."""
    if group_classes == num_classes:
        return int(group_channels)
    ratio = math.log2(max(num_classes, 2)) / math.log2(max(group_classes, 2))
    return _even(group_channels * math.sqrt(ratio))


def fit_cells_arch(normal: list[dict], reduction: list[dict], input_shape, num_classes: int, *, channels: int,
                   cells_per_stage: int, dropout: float = 0.0, reductions: int | None = None) -> dict:
    """An ``enas-cells`` arch for the given cells and data (depth from `reductions_for` unless given)."""
    shape, k = _check(input_shape, num_classes)
    arch = {"normal": copy.deepcopy(normal), "reduction": copy.deepcopy(reduction),
            "cells_per_stage": int(cells_per_stage), "channels": int(channels),
            "reductions": reductions_for(shape) if reductions is None else int(reductions),
            "dropout": float(dropout), "fitted_to": {"input_shape": list(shape), "num_classes": k}}
    validate_cells_arch(arch)
    return arch


def stack_cells(group_spec: ModelSpec, input_shape, num_classes: int) -> ModelSpec:
    """The model a dataset joining a cell-search group gets: the group's cells verbatim, stacked to this dataset's
    depth and width (rules in the module docstring), the group's training hyper-parameters; weights are trained
    afresh by whoever trains the spec."""
    if group_spec.space != CELLS_SPACE:
        raise ValueError(f"stack_cells needs an {CELLS_SPACE!r} spec (a cell-search result), got {group_spec.space!r}")
    g = group_spec.arch
    validate_cells_arch(g)
    shape, k = _check(input_shape, num_classes)
    k_group = int(g.get("fitted_to", {}).get("num_classes", k))
    arch = fit_cells_arch(g["normal"], g["reduction"], shape, k, channels=width_for(g["channels"], k_group, k),
                          cells_per_stage=g["cells_per_stage"], dropout=g.get("dropout", 0.0))
    return ModelSpec(CELLS_SPACE, arch, copy.deepcopy(group_spec.train))
