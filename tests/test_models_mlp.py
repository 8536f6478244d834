import json
import random

import pytest
import torch
from torch import nn

from trautoml.models.mlp import MAX_INPUT_FEATURES, build_mlp, sample_mlp_spec, validate_mlp_arch
from trautoml.models.spec import ModelSpec, build_module


def arch(hidden, **kw):
    return {"hidden": hidden, "activation": "relu", "norm": "none", "dropout": 0.0, **kw}


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 96, 96)])
@pytest.mark.parametrize("a", [arch([]), arch([64, 32], norm="batch", dropout=0.2, activation="leaky_relu")])
def test_forward_shape(shape, a):
    m = build_mlp(a, shape, 5)
    m.eval()
    assert m(torch.rand(4, *shape)).shape == (4, 5)


def test_large_inputs_are_pooled_small_ones_kept_whole():
    big = build_mlp(arch([16]), (3, 96, 96), 10)
    assert isinstance(big[0], nn.AdaptiveAvgPool2d) and big[2].in_features == 3 * 32 * 32 <= MAX_INPUT_FEATURES
    cifar = build_mlp(arch([16]), (3, 32, 32), 10)
    assert isinstance(cifar[0], nn.Flatten) and cifar[1].in_features == 3072


def test_dropout_never_on_raw_pixels():
    m = build_mlp(arch([16, 16], dropout=0.5), (1, 8, 8), 3)
    kinds = [type(x) for x in m]
    assert kinds[:2] == [nn.Flatten, nn.Linear] and kinds.count(nn.Dropout) == 2


@pytest.mark.parametrize("bad,field", [
    (arch([0]), r"hidden\[0\]"),
    (arch([8, "x"]), r"hidden\[1\]"),
    (arch(8), "hidden"),
    (arch([8], activation="swish"), "activation"),
    (arch([8], norm="group"), "norm"),
    (arch([8], dropout=-0.1), "dropout"),
    ({**arch([8]), "layers": []}, "layers"),
])
def test_bad_arch_raises_naming_the_field(bad, field):
    with pytest.raises(ValueError, match=field):
        build_mlp(bad, (1, 28, 28), 10)


def test_sampler_and_round_trip():
    rng = random.Random(0)
    specs = [sample_mlp_spec(rng) for _ in range(100)]
    for s in specs:
        assert s.space == "mlp" and 1 <= len(s.arch["hidden"]) <= 3
        validate_mlp_arch(s.arch)
        assert ModelSpec.from_dict(json.loads(s.to_json())) == s
    s = specs[0]
    m = build_module(s, (3, 32, 32), 4)  # through the entry point "mlp"
    m.train()
    m(torch.rand(2, 3, 32, 32)).sum().backward()
