"""Conditional search spaces the transfer controllers walk, and their merge (Borsos et al. 2019, §3, Figure 1).

A search space is a program of decisions: at each step it names a *state* and the actions valid there, given the
actions taken so far, until the model is fully specified. States are identified by name across spaces: the
``"lr"`` of the CNN space and the ``"lr"`` of the MLP space are the same state, with the same action embeddings,
which is what lets an agent trained on one space transfer to the other. Action sets may depend on the space and on
earlier actions (``"units"`` offers up to 256 in the CNN space, up to 512 in the MLP space; ``"lr"`` offers the
rates of the chosen optimizer), so the *merged* space is conditional.

`MergedSpace` puts a start state (`START`) in front of every space; its action is the space's name, and since the
(space, task) pair is drawn by the caller, the start state offers exactly that one action: the search-space
embedding is the action embedding at `START`, as in the paper.

The two model spaces emit specs the `cnn` / `mlp` builders accept (`trautoml.models.cnn`, `trautoml.models.mlp`):

- ``cnn``: ``conv_layers`` (1–4), then per conv block ``filters``, ``kernel``, ``stride``, ``pool`` (none / 2x2 max
  / 2x2 avg); ``fc_layers`` (0–2) and per fc layer ``units``; then the shared tail. Actions that would make the
  network cost more than `trautoml.models.cnn.MAX_SAMPLE_MACS` multiply-accumulates on the reference 28x28 grey
  image are not offered; the bound is checked against the cheapest completion (fewest filters, kernel 3, stride
  2, pooling, no fc layer), which is always within budget, so every walk ends in a valid, CPU-sized network —
  the same cost bound `sample_cnn_spec` enforces by rejection.
- ``mlp``: ``hidden_layers`` (1–3) and per layer ``units``; then the shared tail.
- shared tail (both spaces, same names): ``activation``, ``norm``, ``dropout``, ``optimizer``, ``lr`` (the rates of
  the chosen optimizer, a grid over `trautoml.models.cnn.LR_RANGE`), ``weight_decay``, ``batch_size``,
  ``init_scale``. Momentum stays at 0.9, as in `sample_train_params`.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Generator, Iterable, Sequence

from trautoml.models import cnn as cnn_mod
from trautoml.models import mlp as mlp_mod
from trautoml.models.spec import ModelSpec

#: The start state of every merged space; its actions are the spaces' names (the search-space embeddings).
START = "search_space"

Action = Any           # a JSON scalar: int, float, str, bool
Step = tuple[str, Action]


@dataclass(frozen=True)
class Decision:
    """A state and the actions valid there, in a fixed order."""

    state: str
    actions: tuple

    def __post_init__(self) -> None:
        if not self.actions:
            raise ValueError(f"state {self.state!r} offers no action")


Program = Generator[Decision, Action, Any]


class Walker:
    """Walks a space one decision at a time: ``decision`` is the pending one (None once complete)."""

    def __init__(self, program: Program):
        self._gen = program
        self.history: list[Step] = []
        self.offered: list[tuple] = []
        self.result: Any = None
        self.decision: Decision | None = next(self._gen)

    def take(self, action: Action) -> None:
        """Take ``action`` at the pending decision and move on to the next (``result`` is set once the walk is
        complete); ValueError for an action not offered or a complete walk."""
        d = self.decision
        if d is None:
            raise ValueError("the walk is already complete")
        if action not in d.actions:
            raise ValueError(f"action {action!r} is not valid in state {d.state!r}; valid: {d.actions}")
        self.history.append((d.state, action))
        self.offered.append(d.actions)
        try:
            self.decision = self._gen.send(action)
        except StopIteration as stop:
            self.decision, self.result = None, stop.value


class SearchSpace(abc.ABC):
    """A conditional search space: a program of decisions that returns the built object (a ModelSpec)."""

    name: str = "abstract"

    @abc.abstractmethod
    def program(self) -> Program:
        """A generator that yields each `Decision` in turn, is sent the action taken, and returns what the actions
        build (a ModelSpec for the model spaces)."""

    @abc.abstractmethod
    def state_actions(self) -> dict[str, tuple]:
        """Every state this space can visit, with the union of the actions it can offer there."""

    def walker(self) -> Walker:
        """A fresh `Walker` over this space's program."""
        return Walker(self.program())

    def walk(self, choose: Callable[[Decision], Action]) -> Walker:
        """Walk the space to the end, taking ``choose(decision)`` at each decision; returns the finished walker."""
        w = self.walker()
        while w.decision is not None:
            w.take(choose(w.decision))
        return w

    def replay(self, actions: Iterable[Action]) -> Walker:
        """Walk the given actions; ValueError when one is invalid or the walk does not end with them."""
        w = self.walker()
        for a in actions:
            w.take(a)
        if w.decision is not None:
            raise ValueError(f"walk incomplete: state {w.decision.state!r} still pending")
        return w

    def encode(self, spec: ModelSpec) -> list[Action] | None:
        """The actions that build ``spec``, or None when ``spec`` lies off this space's grid."""
        return None


class ChainSpace(SearchSpace):
    """A fixed-length chain of named states (the toys' spaces). The result is the tuple of actions."""

    def __init__(self, name: str, states: Sequence[tuple[str, Sequence[Action]]]):
        self.name = name
        self.states = [(s, tuple(a)) for s, a in states]

    def program(self) -> Program:
        out = []
        for state, actions in self.states:
            out.append((yield Decision(state, actions)))
        return tuple(out)

    def state_actions(self) -> dict[str, tuple]:
        merged: dict[str, tuple] = {}
        for s, a in self.states:
            merged[s] = tuple(dict.fromkeys(merged.get(s, ()) + a))
        return merged


# ------------------------------------------------------------------------------------------ the model spaces

ACTIVATIONS = cnn_mod.ACTIVATIONS
NORMS = cnn_mod.NORMS
DROPOUTS = cnn_mod.DROPOUTS
OPTIMIZERS = ("sgd", "adam")
#: Learning-rate grids inside `trautoml.models.cnn.LR_RANGE` (sgd 1e-3..0.3, adam 1e-4..1e-2).
LRS = {"sgd": (0.001, 0.003, 0.01, 0.03, 0.1, 0.3), "adam": (0.0001, 0.0003, 0.001, 0.003, 0.01)}
WEIGHT_DECAYS = (1e-06, 1e-05, 0.0001, 0.001, 0.01)
BATCH_SIZES = cnn_mod.BATCH_SIZES
INIT_SCALES = (0.5, 1.0, 2.0)
MOMENTUM = 0.9

CONV_LAYERS = (1, 2, 3, 4)
FILTERS = cnn_mod.FILTERS
KERNELS = cnn_mod.KERNELS
STRIDES = (1, 2)
POOLS = ("none", "max", "avg")
FC_LAYERS = (0, 1, 2)
CNN_UNITS = cnn_mod.FC_UNITS
HIDDEN_LAYERS = (1, 2, 3)
MLP_UNITS = mlp_mod.HIDDEN_UNITS

TAIL_STATES: dict[str, tuple] = {
    "activation": ACTIVATIONS, "norm": NORMS, "dropout": DROPOUTS, "optimizer": OPTIMIZERS,
    "lr": tuple(sorted(set(LRS["sgd"]) | set(LRS["adam"]))), "weight_decay": WEIGHT_DECAYS,
    "batch_size": BATCH_SIZES, "init_scale": INIT_SCALES,
}


def _tail() -> Generator[Decision, Action, tuple[dict, dict]]:
    """The decisions both model spaces share (same state names): arch extras and training hyper-parameters."""
    arch = {"activation": (yield Decision("activation", ACTIVATIONS)),
            "norm": (yield Decision("norm", NORMS)),
            "dropout": (yield Decision("dropout", DROPOUTS))}
    opt = yield Decision("optimizer", OPTIMIZERS)
    train = {"optimizer": opt, "lr": (yield Decision("lr", LRS[opt])), "momentum": MOMENTUM,
             "weight_decay": (yield Decision("weight_decay", WEIGHT_DECAYS)),
             "batch_size": (yield Decision("batch_size", BATCH_SIZES)),
             "init_scale": (yield Decision("init_scale", INIT_SCALES))}
    return arch, train


def _tail_actions(arch: dict, train: dict) -> list[Action] | None:
    try:
        acts = [arch["activation"], arch["norm"], arch["dropout"], train["optimizer"], train["lr"],
                train["weight_decay"], train["batch_size"], train["init_scale"]]
    except KeyError:
        return None
    if train.get("momentum", MOMENTUM) != MOMENTUM:
        return None
    return acts


# Cost of the cheapest completion of a CNN (see the module docstring). Mirrors `cnn_macs`: a conv costs
# c_in * c_out * k^2 * H_out * W_out, a linear in * out; pools that do not fit are skipped.
_REF_C, _REF_H, _REF_W = cnn_mod.REFERENCE_SHAPE
_REF_CLASSES = 10


def _pool(h: int, w: int) -> tuple[int, int]:
    return ((h - 2) // 2 + 1, (w - 2) // 2 + 1) if h >= 2 and w >= 2 else (h, w)


def _conv_cost(c: int, f: int, k: int, s: int, h: int, w: int) -> tuple[int, int, int]:
    ho, wo = math.ceil(h / s), math.ceil(w / s)
    return c * f * k * k * ho * wo, ho, wo


def _head_cost(c: int, h: int, w: int, units: Sequence[int]) -> int:
    _, feats = cnn_mod.flatten_head(c, h, w)
    cost = 0
    for u in units:
        cost, feats = cost + feats * u, u
    return cost + feats * _REF_CLASSES


def _cheapest_tail(c: int, h: int, w: int, convs_left: int, fc_left: int = 0) -> int:
    cost = 0
    for _ in range(convs_left):
        step, h, w = _conv_cost(c, FILTERS[0], KERNELS[0], STRIDES[-1], h, w)
        cost, c = cost + step, FILTERS[0]
        h, w = _pool(h, w)
    return cost + _head_cost(c, h, w, [CNN_UNITS[0]] * fc_left)


class CNNSpace(SearchSpace):
    """The ``cnn`` model space as a conditional program (module docstring), bounded by ``max_macs``."""

    name = "cnn"

    def __init__(self, max_macs: int = cnn_mod.MAX_SAMPLE_MACS):
        self.max_macs = int(max_macs)

    def state_actions(self) -> dict[str, tuple]:
        return {"conv_layers": CONV_LAYERS, "filters": FILTERS, "kernel": KERNELS, "stride": STRIDES,
                "pool": POOLS, "fc_layers": FC_LAYERS, "units": CNN_UNITS, **TAIL_STATES}

    def _fits(self, cost: int) -> bool:
        return cost <= self.max_macs

    def program(self) -> Program:
        c, h, w, spent = _REF_C, _REF_H, _REF_W, 0
        layers: list[dict] = []
        n_conv = yield Decision("conv_layers", CONV_LAYERS)
        for i in range(n_conv):
            left = n_conv - i - 1

            def total(f: int, k: int, s: int, pool: bool = True) -> int:
                # B023 is suppressed below: called only within this layer's iteration, before c, h, w, spent move on
                cost, ho, wo = _conv_cost(c, f, k, s, h, w)  # noqa: B023
                ho, wo = _pool(ho, wo) if pool else (ho, wo)
                return spent + cost + _cheapest_tail(f, ho, wo, left)  # noqa: B023

            f = yield Decision("filters", tuple(x for x in FILTERS if self._fits(total(x, KERNELS[0], STRIDES[-1])))
                               or FILTERS[:1])
            k = yield Decision("kernel", tuple(x for x in KERNELS if self._fits(total(f, x, STRIDES[-1])))
                               or KERNELS[:1])
            s = yield Decision("stride", tuple(x for x in STRIDES if self._fits(total(f, k, x))) or STRIDES[-1:])
            p = yield Decision("pool", tuple(x for x in POOLS if self._fits(total(f, k, s, pool=x != "none")))
                               or POOLS[1:2])
            cost, h, w = _conv_cost(c, f, k, s, h, w)
            spent, c = spent + cost, f
            layers.append({"type": "conv", "filters": f, "kernel": k, "stride": s})
            if p != "none":
                layers.append({"type": "pool", "op": p, "size": 2, "stride": 2})
                h, w = _pool(h, w)
        n_fc = yield Decision("fc_layers", tuple(n for n in FC_LAYERS if self._fits(spent + _cheapest_tail(
            c, h, w, 0, n))) or FC_LAYERS[:1])
        units: list[int] = []
        for j in range(n_fc):
            left = n_fc - j - 1
            u = yield Decision("units", tuple(
                x for x in CNN_UNITS
                if self._fits(spent + _head_cost(c, h, w, units + [x] + [CNN_UNITS[0]] * left))) or CNN_UNITS[:1])
            units.append(u)
            layers.append({"type": "fc", "units": u})
        extras, train = yield from _tail()
        return ModelSpec(self.name, {"layers": layers, **extras}, train)

    def encode(self, spec: ModelSpec) -> list[Action] | None:
        if spec.space != self.name:
            return None
        layers = list(spec.arch.get("layers", []))
        acts: list[Action] = []
        convs: list[list[Action]] = []
        fcs: list[int] = []
        for layer in layers:
            kind = layer.get("type")
            if kind == "conv":
                convs.append([layer.get("filters"), layer.get("kernel"), layer.get("stride"), "none"])
            elif kind == "pool" and convs and convs[-1][3] == "none" and not fcs \
                    and layer.get("size") == 2 and layer.get("stride") == 2:
                convs[-1][3] = layer.get("op")
            elif kind == "fc":
                fcs.append(layer.get("units"))
            else:
                return None
        acts.append(len(convs))
        for block in convs:
            acts += block
        acts.append(len(fcs))
        acts += fcs
        tail = _tail_actions(spec.arch, spec.train)
        return _checked(self, acts + tail, spec) if tail is not None else None


class MLPSpace(SearchSpace):
    """The ``mlp`` model space as a conditional program (module docstring)."""

    name = "mlp"

    def state_actions(self) -> dict[str, tuple]:
        return {"hidden_layers": HIDDEN_LAYERS, "units": MLP_UNITS, **TAIL_STATES}

    def program(self) -> Program:
        n = yield Decision("hidden_layers", HIDDEN_LAYERS)
        hidden = []
        for _ in range(n):
            hidden.append((yield Decision("units", MLP_UNITS)))
        extras, train = yield from _tail()
        return ModelSpec(self.name, {"hidden": hidden, **extras}, train)

    def encode(self, spec: ModelSpec) -> list[Action] | None:
        if spec.space != self.name or not isinstance(spec.arch.get("hidden"), list):
            return None
        tail = _tail_actions(spec.arch, spec.train)
        if tail is None:
            return None
        return _checked(self, [len(spec.arch["hidden"])] + list(spec.arch["hidden"]) + tail, spec)


def _checked(space: SearchSpace, actions: list[Action], spec: ModelSpec) -> list[Action] | None:
    try:
        w = space.replay(actions)
    except ValueError:
        return None
    return actions if w.result == spec else None


#: The model spaces the backend can search, by name (the spec's ``space``).
MODEL_SPACES: dict[str, Callable[[], SearchSpace]] = {"cnn": CNNSpace, "mlp": MLPSpace}


def model_space(name: str) -> SearchSpace:
    """A fresh model space (`CNNSpace` or `MLPSpace`) by name; ValueError for any other name."""
    if name not in MODEL_SPACES:
        raise ValueError(f"the transfer controller has no search space {name!r}; known: {', '.join(MODEL_SPACES)}")
    return MODEL_SPACES[name]()


class MergedSpace:
    """Several spaces behind one start state (`START`), states shared by name (Borsos et al., Figure 1)."""

    def __init__(self, spaces: Iterable[SearchSpace]):
        self.spaces: dict[str, SearchSpace] = {}
        for s in spaces:
            self.add(s)

    def add(self, space: SearchSpace) -> None:
        """Add ``space`` under its name (adding the same object again is a no-op); ValueError for a different space of a
        name already taken."""
        if space.name in self.spaces and self.spaces[space.name] is not space:
            raise ValueError(f"two different spaces named {space.name!r}")
        self.spaces[space.name] = space

    def walker(self, space: str) -> Walker:
        """A walk of the merged space for the sampled ``space``: the start state offers only that space."""
        sub = self.spaces[space]

        def program() -> Program:
            yield Decision(START, (space,))
            return (yield from sub.program())

        return Walker(program())

    def state_actions(self, space: str) -> dict[str, tuple]:
        """Every state a walk of ``space`` can visit in the merged space, with the actions offered there: `START`
        (offering only ``space``), then the space's own."""
        return {START: (space,), **self.spaces[space].state_actions()}
