"""Search from a predefined model: backbones the tests train or save themselves, nothing downloaded."""
import random
from functools import partial

import numpy as np
import pytest
import torch

from search_backends.base import SearchBudget, SearchTask
from search_backends.predefined import (PredefinedNet, PredefinedSearch, build_predefined, make_predefined_task_space,
                                        sample_head, truncate)
from trautoml.data.dataset import Dataset
from trautoml.models.spec import ModelSpec, build_module
from trautoml.models.train import train_and_evaluate
from trautoml.models.trials import run_trial

HEAD = {"layers": [{"type": "conv", "filters": 8, "kernel": 3, "stride": 1}, {"type": "fc", "units": 16}],
        "activation": "relu", "norm": "batch", "dropout": 0.0}
BACKBONE_SPEC = ModelSpec("cnn", {"layers": [{"type": "conv", "filters": 8, "kernel": 3, "stride": 1},
                                             {"type": "pool", "op": "max", "size": 2, "stride": 2},
                                             {"type": "conv", "filters": 12, "kernel": 3, "stride": 1},
                                             {"type": "fc", "units": 16}],
                                  "activation": "relu", "norm": "batch", "dropout": 0.0}, {"lr": 0.05})


def dataset(side=12, channels=1, n=64, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) % classes
    x = rng.random((n, channels, side, side), dtype=np.float32) * 0.3
    for c in range(classes):  # class c lights band c: learnable in a few steps
        x[y == c, :, c * side // classes:(c + 1) * side // classes] += 0.7
    return Dataset(f"tiny{channels}", x, y, x.copy(), y.copy(), x.copy(), y.copy(), classes)


@pytest.fixture(scope="module")
def cnn_backbone(tmp_path_factory):
    """A small cnn the test trains itself on grey 12x12 data and saves as a state dict."""
    ds = dataset()
    res = train_and_evaluate(BACKBONE_SPEC, ds, epochs=2, seed=0, keep_module=True)
    path = tmp_path_factory.mktemp("backbone") / "cnn_state.pt"
    torch.save(res.module.state_dict(), path)
    # children: conv, bn, relu, pool, conv, bn, relu, flatten, linear, ...; keep the two conv blocks
    return {"kind": "file", "path": str(path), "spec": BACKBONE_SPEC.to_dict(), "input_shape": [1, 12, 12],
            "num_classes": 3, "cut": 7}, res.module.state_dict()


@pytest.fixture(scope="module")
def resnet_backbone(tmp_path_factory):
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(weights=None)  # no download: random weights, saved locally
    with torch.no_grad():
        for m in model.modules():  # give BatchNorm non-default statistics, so "unchanged" means something
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("resnet") / "resnet18.pth"
    torch.save(model.state_dict(), path)
    return {"kind": "torchvision", "name": "resnet18", "weights": str(path), "cut": "layer1"}, model.state_dict()


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def arch(backbone, freeze, head=HEAD, **extra):
    return {"backbone": backbone, "freeze": freeze, "head": head, **extra}


def trunk_state(module: PredefinedNet) -> dict:
    return {k: v.detach().clone() for k, v in module.trunk.state_dict().items()}


def test_file_backbone_loads_the_saved_weights(cnn_backbone):
    backbone, saved = cnn_backbone
    model = build_predefined(arch(backbone, True), (1, 12, 12), 3)
    assert isinstance(model, PredefinedNet) and len(model.trunk) == 7
    for k, v in model.trunk.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert model(torch.zeros(4, 1, 12, 12)).shape == (4, 3)
    # the frozen trunk computes exactly what the original network's first 7 modules compute (in eval mode)
    original = build_module(BACKBONE_SPEC, (1, 12, 12), 3)
    original.load_state_dict(saved)
    original.eval()
    model.train()  # train mode on the whole model must not change the frozen trunk's behaviour
    x = torch.rand(5, 1, 12, 12)
    with torch.no_grad():
        assert torch.allclose(model.trunk(x), original[:7](x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.trunk.modules())


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_backbone_is_unchanged_and_fine_tuned_one_changes(cnn_backbone, freeze):
    backbone, saved = cnn_backbone
    spec = ModelSpec("predefined", arch(backbone, freeze), {"lr": 0.05})
    ds = dataset(seed=1)
    before = build_predefined(spec.arch, ds.input_shape, ds.num_classes)
    head_before = {k: v.clone() for k, v in before.head.state_dict().items()}
    res = train_and_evaluate(spec, ds, epochs=2, seed=0, keep_module=True)
    after = trunk_state(res.module)
    if freeze:
        for k, v in after.items():  # weights and BatchNorm statistics, exactly
            assert torch.equal(v, saved[k]), k
        assert not any(p.requires_grad for p in res.module.trunk.parameters())
    else:
        changed = [k for k, v in after.items() if v.is_floating_point() and not torch.equal(v, saved[k])]
        assert any(k.endswith("weight") for k in changed) and any("running_mean" in k for k in changed)
    head_after = res.module.head.state_dict()
    assert any(not torch.equal(head_after[k], head_before[k]) for k in head_before if "weight" in k)


def test_resnet_backbone_colour_and_grey_inputs(resnet_backbone):
    backbone, saved = resnet_backbone
    for channels in (3, 1):  # grey inputs are duplicated into the colour backbone
        ds = dataset(side=16, channels=channels, n=32)
        spec = ModelSpec("predefined", arch(backbone, True), {"optimizer": "adam", "lr": 1e-3})
        res = train_and_evaluate(spec, ds, epochs=1, seed=0, keep_module=True)
        for k, v in trunk_state(res.module).items():
            assert torch.equal(v, saved[k]), k
        assert list(dict(res.module.trunk.named_children())) == ["conv1", "bn1", "relu", "maxpool", "layer1"]


def test_dotted_and_integer_cuts(resnet_backbone):
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(weights=None)
    t = truncate(model, "layer2.0")
    assert list(dict(t.named_children())) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2"]
    assert len(t.layer2) == 1 and set(t.state_dict()) <= set(model.state_dict())
    assert len(truncate(model, 3)) == 3
    with pytest.raises(ValueError, match="no child 'layer9'"):
        truncate(model, "layer9")


def test_clear_errors(tmp_path, resnet_backbone, cnn_backbone):
    backbone, _ = resnet_backbone
    missing = {**backbone, "weights": str(tmp_path / "nope.pth")}
    with pytest.raises(FileNotFoundError, match="nope.pth.*nothing is downloaded"):
        build_predefined(arch(missing, True), (3, 16, 16), 3)
    with pytest.raises(ValueError, match="backbone.kind"):
        build_predefined(arch({"kind": "hub", "cut": 1}, True), (3, 16, 16), 3)
    wrong = {**backbone, "name": "resnet34"}  # resnet18 weights for a resnet34 trunk
    with pytest.raises(ValueError, match="lack .* tensor"):
        build_predefined(arch(wrong, True), (3, 16, 16), 3)
    file_backbone, _ = cnn_backbone
    colour = {**file_backbone, "input_shape": [3, 12, 12]}  # built for 3 channels, weights are for 1
    with pytest.raises(ValueError, match="shape mismatch"):
        build_predefined(arch(colour, True), (3, 12, 12), 3)


def test_sampled_heads_build_on_any_backbone_output(cnn_backbone):
    backbone, _ = cnn_backbone
    sample = make_predefined_task_space(backbone, True)
    rng = random.Random(0)
    for _ in range(10):
        spec = sample(rng)
        assert spec.space == "predefined" and spec.train["init_scale"] == 1.0
        units = [layer["units"] for layer in spec.arch["head"]["layers"] if layer["type"] == "fc"]
        assert units == sorted(units, reverse=True)
        out = build_module(spec, (1, 12, 12), 3)(torch.zeros(2, 1, 12, 12))
        assert out.shape == (2, 3)
    assert len({str(sample_head(rng)) for _ in range(20)}) > 10


@pytest.mark.parametrize("inner", ["random", "hyperband"])
def test_head_search_runs_on_tiny_data(cnn_backbone, inner):
    backbone, saved = cnn_backbone
    ds = dataset(seed=2)
    run = partial(run_trial, dataset=ds)
    warm = ModelSpec("predefined", arch(backbone, True), {"lr": 0.05})
    other = ModelSpec("cnn", BACKBONE_SPEC.arch)
    opts = {"eta": 2} if inner == "hyperband" else {}
    backend = PredefinedSearch(backbone, freeze=True, inner=inner, **opts)
    budget = SearchBudget(max_trials=2, max_epochs=1.0, min_epochs=0.5)
    res = backend.search(SearchTask(ds, budget, lambda reqs: [run(r) for r in reqs], warm_start=[warm, other]))
    assert all(t.status == "ok" for t in res.trials), [t.error for t in res.trials]
    assert res.trials[0].spec == warm and all(t.spec.space == "predefined" for t in res.trials)
    assert res.best.space == "predefined" and res.best.arch["backbone"] == backbone
    assert res.info["mechanism"] == "predefined" and res.info["inner"] == inner
    final = train_and_evaluate(res.best, ds, res.best_resource, seed=0, keep_module=True)
    for k, v in trunk_state(final.module).items():
        assert torch.equal(v, saved[k]), k
    assert final.val_accuracy > 1 / 3  # better than chance on the 3-class toy data


@pytest.mark.parametrize("inner, message", [("metaqnn", "cannot search a given sampler"),
                                            ("nope", "unknown search backend 'nope'; available: ")])
def test_an_inner_backend_that_cannot_search_the_head_space_is_refused(cnn_backbone, inner, message):
    with pytest.raises(ValueError, match=message):
        PredefinedSearch(cnn_backbone[0], inner=inner)


@pytest.mark.slow  # ~15 s: a fresh MLflow SQLite store (~7 s) and a pt2 export (~5 s)
def test_mlflow_backbone(tmp_path, cnn_backbone):
    """A model logged the way trautoml logs its models (traced pt2 + model_spec.json in the run), read back."""
    pytest.importorskip("mlflow")
    from trautoml.tracking import Tracker

    _, saved = cnn_backbone
    module = build_module(BACKBONE_SPEC, (1, 12, 12), 3)
    module.load_state_dict(saved)
    tracker = Tracker.for_workspace(tmp_path)
    run_id = tracker.start_dataset_run("backbone-data", "0" * 64, {})
    model_uri = tracker.log_model(run_id, module, np.zeros((2, 1, 12, 12), np.float32))
    tracker.client.log_text(run_id, BACKBONE_SPEC.to_json(), "model_spec.json")
    for uri in (model_uri, f"runs:/{run_id}/model"):
        backbone = {"kind": "mlflow", "model_uri": uri, "tracking_uri": tracker.tracking_uri, "cut": 7,
                    "input_shape": [1, 12, 12]}
        model = build_predefined(arch(backbone, True), (1, 12, 12), 3)
        for k, v in model.trunk.state_dict().items():
            assert torch.equal(v, saved[k]), k
        assert model(torch.zeros(2, 1, 12, 12)).shape == (2, 3)
