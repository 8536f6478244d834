"""A model = architecture + training hyper-parameters (paper 002, footnote 1), as a JSON-serialisable spec.

``space`` names the family of architectures; the function that turns ``arch`` into a torch module is looked up
by that name among the entry points of group ``trautoml.model_spaces`` (see pyproject.toml). A search backend that
brings its own space (ENAS cells, say) registers a builder there, and the core builds its models unchanged.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

from trautoml.registry import Registry

#: Training hyper-parameters every spec carries, with the defaults used where a spec omits one.
DEFAULT_TRAIN: dict[str, Any] = {
    "optimizer": "sgd",        # sgd (with Nesterov momentum) | adam
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "batch_size": 64,
    "init_scale": 1.0,         # multiplies the default (Kaiming) initial weights
}


@dataclass(frozen=True)
class ModelSpec:
    """One model: ``space`` names the family of architectures (the builder registered under that name in
    `MODEL_SPACES`), ``arch`` the architecture in that space's format, ``train`` the training hyper-parameters that
    override `DEFAULT_TRAIN`. Hashable; two specs are equal when their canonical JSON (`to_json`) is."""

    space: str
    arch: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)

    def train_params(self) -> dict:
        """The training hyper-parameters in full: `DEFAULT_TRAIN` updated with ``train``."""
        return {**DEFAULT_TRAIN, **self.train}

    def to_dict(self) -> dict:
        """The spec as plain JSON (copies of ``arch`` and ``train``)."""
        return {"space": self.space, "arch": copy.deepcopy(self.arch), "train": copy.deepcopy(self.train)}

    @classmethod
    def from_dict(cls, d: object) -> ModelSpec:
        """The spec `to_dict` wrote (``d``); ValueError when ``d`` is not a spec."""
        if not isinstance(d, dict) or "space" not in d:
            raise ValueError(f"not a model spec: {d!r}")
        return cls(space=str(d["space"]), arch=dict(d.get("arch", {})), train=dict(d.get("train", {})))

    def to_json(self) -> str:
        """The spec as canonical JSON (sorted keys, no spaces): the text `key` digests."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        """Short stable digest of the spec, for caches and MLflow names."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSpec) and self.to_json() == other.to_json()


Builder = Callable[[dict, tuple[int, int, int], int], "Any"]
#: Model spaces by name: ``builder(arch, input_shape, num_classes) -> torch module`` (entry-point group
#: ``trautoml.model_spaces``).
MODEL_SPACES = Registry("model space", "trautoml.model_spaces")
#: Spec adapters by space name: fit a group's spec to a joining dataset (entry-point group
#: ``trautoml.spec_adapters``); a space without one is reused verbatim.
SPEC_ADAPTERS = Registry("spec adapter", "trautoml.spec_adapters")


def register_space(name: str, builder: Builder) -> None:
    """Register a builder at run time (tests, notebooks). Installed packages use the entry-point group instead."""
    MODEL_SPACES.register(name, builder)


def space_builder(name: str) -> Builder:
    """The builder of model space ``name`` (ValueError naming the known spaces)."""
    return MODEL_SPACES.get(name)


def adapt_spec(spec: ModelSpec, input_shape: tuple[int, int, int], num_classes: int) -> ModelSpec:
    """A group's spec fitted to a dataset that joins the group (paper 002 §1 ii, "transfer of basic cells").

    A space may register an adapter in the entry-point group ``trautoml.spec_adapters`` (``enas-cells`` stacks
    the group's normal and reduction cells to the new dataset's depth and width). Spaces without one are reused
    verbatim: a chain CNN already fits any input shape and class count.
    """
    if spec.space not in SPEC_ADAPTERS:
        return spec
    return SPEC_ADAPTERS.get(spec.space)(spec, (*input_shape,), int(num_classes))  # a tuple, also from a list


def build_module(spec: ModelSpec, input_shape: tuple[int, int, int], num_classes: int):
    """The one place a torch module is built from (spec, input shape, class count)."""
    return space_builder(spec.space)(spec.arch, (*input_shape,), int(num_classes))  # a tuple, also from a list
