import json
import random

import pytest
import torch
from torch import nn

from trautoml.models.cnn import (MAX_FLAT_FEATURES, MAX_SAMPLE_MACS, build_cnn, cnn_layer_shapes, cnn_macs,
                                 mutate_cnn_spec, sample_cnn_spec, validate_cnn_arch)
from trautoml.models.spec import ModelSpec, build_module

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 96, 96), (1, 9, 13)]


def arch(layers, **kw):
    return {"layers": layers, "activation": "relu", "norm": "none", "dropout": 0.0, **kw}


def conv(f=8, k=3, s=1):
    return {"type": "conv", "filters": f, "kernel": k, "stride": s}


def pool(op="max", p=2):
    return {"type": "pool", "op": op, "size": p, "stride": p}


def fc(u=32):
    return {"type": "fc", "units": u}


DEEP = arch([conv(16, 5), pool(), conv(32, 3, 2), pool("avg"), conv(32), pool(), conv(64), pool(), pool(), fc(64),
             fc(32)], activation="elu", norm="batch", dropout=0.3)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("a", [DEEP, arch([conv(4, 4, 3)]), arch([]), arch([fc(16)]),
                               arch([conv(64, 3)], activation="tanh")])
def test_forward_shape_for_every_input_size(shape, a):
    torch.manual_seed(0)
    m = build_cnn(a, shape, 7)
    m.eval()
    out = m(torch.rand(3, *shape))
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_sampled_specs_build_and_run_on_every_input_size(shape):
    rng = random.Random(shape[1])
    for _ in range(10):
        spec = sample_cnn_spec(rng)
        m = build_module(spec, shape, 10)  # through the entry point "cnn"
        m.train()
        m(torch.rand(2, *shape)).sum().backward()


def test_pool_that_does_not_fit_is_skipped_and_strides_stop_at_1x1():
    a = arch([conv(8, 3, 2), pool(), pool(), pool(), conv(8, 3, 4), pool()])
    assert cnn_layer_shapes(a, (1, 8, 8)) == [(8, 4, 4), (8, 2, 2), (8, 1, 1), None, (8, 1, 1), None]
    m = build_cnn(a, (1, 8, 8), 3)
    assert sum(isinstance(x, nn.MaxPool2d) for x in m.modules()) == 2
    assert cnn_layer_shapes(a, (1, 96, 96))[-2:] == [(8, 2, 2), (8, 1, 1)]
    assert sum(isinstance(x, nn.MaxPool2d) for x in build_cnn(a, (1, 96, 96), 3).modules()) == 4


@pytest.mark.parametrize("k,s", [(3, 1), (4, 1), (5, 2), (2, 2), (1, 3)])
def test_same_padding_gives_ceil_of_size_over_stride(k, s):
    m = build_cnn(arch([conv(5, k, s)]), (2, 11, 12), 2)
    feats = m[:-2](torch.rand(1, 2, 11, 12))  # up to the flatten
    assert feats.shape == (1, 5, -(-11 // s), -(-12 // s))


def test_large_feature_map_is_average_pooled_before_flatten():
    m = build_cnn(arch([conv(32)], dropout=0.0), (3, 96, 96), 10)
    assert any(isinstance(x, nn.AdaptiveAvgPool2d) for x in m.modules())
    assert m[-1].in_features <= MAX_FLAT_FEATURES and m[-1].in_features == 32 * 8 * 8
    small = build_cnn(arch([conv(8), pool()]), (1, 8, 8), 10)  # 8*4*4 = 128 features: plain flatten
    assert not any(isinstance(x, nn.AdaptiveAvgPool2d) for x in small.modules())
    assert small[-1].in_features == 128


def test_norm_and_dropout_are_placed():
    m = build_cnn(DEEP, (1, 28, 28), 10)
    kinds = [type(x) for x in m]
    assert kinds.count(nn.BatchNorm2d) == 4 and kinds.count(nn.BatchNorm1d) == 2
    assert kinds.count(nn.Dropout) == 3 and kinds[-2] is nn.Dropout and kinds[-1] is nn.Linear
    assert all(c.bias is None for c in m.modules() if isinstance(c, nn.Conv2d))


@pytest.mark.parametrize("bad,field", [
    ({"layers": [conv()], "activation": "relu", "norm": "none"}, "dropout"),
    (arch([conv()], dropout=0.9), "dropout"),
    (arch([conv()], activation="gelu"), "activation"),
    (arch([conv()], norm="layer"), "norm"),
    (arch([conv(0)]), r"layers\[0\]\.filters"),
    (arch([conv(), conv(8, 2.5)]), r"layers\[1\]\.kernel"),
    (arch([conv(8, 3, 0)]), r"layers\[0\]\.stride"),
    (arch([conv(), {"type": "pool", "op": "min", "size": 2, "stride": 2}]), r"layers\[1\]\.op"),
    (arch([conv(), pool(p=0)]), r"layers\[1\]\.size"),
    (arch([conv(), fc(), conv()]), r"layers\[2\]\.type"),
    (arch([fc(True)]), r"layers\[0\]\.units"),
    (arch([{"type": "lstm"}]), r"layers\[0\]\.type"),
    (arch([{**conv(), "padding": 1}]), r"layers\[0\].*padding"),
    ({**arch([]), "skip": True}, "skip"),
    (arch("conv"), "layers"),
    ([conv()], "dict"),
])
def test_bad_arch_raises_naming_the_field(bad, field):
    with pytest.raises(ValueError, match=field):
        build_cnn(bad, (1, 28, 28), 10)


def test_bad_shapes_and_classes():
    with pytest.raises(ValueError, match="input_shape"):
        build_cnn(arch([conv()]), (28, 28), 10)
    with pytest.raises(ValueError, match="num_classes"):
        build_cnn(arch([conv()]), (1, 28, 28), 1)


def test_sampler_ranges_and_compute_cap():
    rng = random.Random(0)
    specs = [sample_cnn_spec(rng) for _ in range(300)]
    for s in specs:
        assert s.space == "cnn"
        validate_cnn_arch(s.arch)
        layers = s.arch["layers"]
        n_conv = sum(x["type"] == "conv" for x in layers)
        n_fc = sum(x["type"] == "fc" for x in layers)
        assert 1 <= n_conv <= 4 and 0 <= n_fc <= 2 and layers[0]["type"] == "conv"
        assert all(8 <= x["filters"] <= 64 and x["kernel"] in (3, 5) for x in layers if x["type"] == "conv")
        assert all(32 <= x["units"] <= 256 for x in layers if x["type"] == "fc")
        assert cnn_macs(s.arch) <= MAX_SAMPLE_MACS
        t = s.train
        lo, hi = {"sgd": (1e-3, 0.3), "adam": (1e-4, 1e-2)}[t["optimizer"]]
        assert lo <= t["lr"] <= hi and 1e-6 <= t["weight_decay"] <= 1e-2 and 0.5 <= t["init_scale"] <= 2
        assert t["batch_size"] in (32, 64, 128) and t["momentum"] == 0.9
    assert len(set(specs)) == len(specs)
    assert {s.train["optimizer"] for s in specs} == {"sgd", "adam"}
    assert {s.arch["activation"] for s in specs} == {"relu", "elu", "leaky_relu", "tanh"}
    assert sample_cnn_spec(random.Random(5)) == sample_cnn_spec(random.Random(5))


def test_mutation_is_a_valid_different_neighbour():
    rng = random.Random(1)
    for _ in range(200):
        s = sample_cnn_spec(rng)
        m = mutate_cnn_spec(s, rng)
        assert m != s and m.space == "cnn"
        validate_cnn_arch(m.arch)
        assert cnn_macs(m.arch) <= MAX_SAMPLE_MACS
        build_cnn(m.arch, (1, 8, 8), 2)
    with pytest.raises(ValueError, match="space"):
        mutate_cnn_spec(ModelSpec("mlp", {}), rng)


def test_mutation_accepts_archs_from_outside_the_sampled_ranges():
    s = ModelSpec("cnn", arch([conv(100, 7), fc(1000)]), {"optimizer": "sgd", "lr": 0.5})
    rng = random.Random(2)
    for _ in range(50):
        validate_cnn_arch(mutate_cnn_spec(s, rng).arch)


def test_spec_json_round_trip():
    s = sample_cnn_spec(random.Random(3))
    back = ModelSpec.from_dict(json.loads(s.to_json()))
    assert back == s and back.key() == s.key()
    m1, m2 = build_module(s, (1, 28, 28), 10), build_module(back, (1, 28, 28), 10)
    assert [p.shape for p in m1.parameters()] == [p.shape for p in m2.parameters()]
