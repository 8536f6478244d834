"""Model specs: JSON round trip, stable keys, building by space name, fitting a group's spec to a joining dataset."""
from __future__ import annotations

import json

import pytest

from search_backends.enas.spaces import fit_cells_arch
from trautoml.models.spec import ModelSpec, adapt_spec, build_module

CNN = ModelSpec("cnn", {"layers": [{"type": "conv", "filters": 8, "kernel": 3, "stride": 1}], "activation": "relu",
                        "norm": "none", "dropout": 0.0}, {"lr": 0.01})


def test_json_round_trip_and_stable_key():
    again = ModelSpec.from_dict(json.loads(json.dumps(CNN.to_dict())))
    assert again == CNN and again.key() == CNN.key() and hash(again) == hash(CNN)
    assert ModelSpec("cnn", CNN.arch, {"lr": 0.02}).key() != CNN.key()
    with pytest.raises(ValueError, match="not a model spec"):
        ModelSpec.from_dict({"arch": {}})


def test_unknown_space_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown model space 'dense'.*cnn"):
        build_module(ModelSpec("dense"), (1, 8, 8), 2)


def test_a_chain_cnn_is_reused_verbatim():
    assert adapt_spec(CNN, (3, 96, 96), 100) is CNN


def test_a_cell_spec_is_restacked_for_the_joining_dataset_through_its_entry_point():
    normal = [{"inputs": [0, 1], "ops": ["sep3", "identity"]}, {"inputs": [1, 2], "ops": ["avg3", "sep5"]}]
    reduction = [{"inputs": [0, 0], "ops": ["max3", "sep3"]}, {"inputs": [2, 1], "ops": ["sep5", "avg3"]}]
    group = ModelSpec("enas-cells", fit_cells_arch(normal, reduction, (1, 28, 28), 10, channels=16,
                                                   cells_per_stage=1), {"lr": 0.05})
    joined = adapt_spec(group, (3, 96, 96), 10)
    assert joined.arch["normal"] == normal and joined.arch["reduction"] == reduction
    assert joined.arch["reductions"] > group.arch["reductions"]
    assert joined.train == group.train
