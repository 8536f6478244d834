"""ENAS: controller learning, weight sharing, derived architectures, an end-to-end search, transfer of cells."""
import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from search_backends.base import SearchBudget, SearchTask, Trial
from search_backends.enas import ENAS, build_cells, build_macro, stack_cells
from search_backends.enas.controller import MacroController, MicroController, Reinforce
from search_backends.enas.ops import CELL_OPS, MACRO_OPS
from search_backends.enas.spaces import (fit_cells_arch, macro_reduce_after, reductions_for, validate_cells_arch,
                                         validate_macro_arch, width_for)
from search_backends.enas.supernet import MacroNet, MicroNet
from search_backends.registry import get_backend
from trautoml.data.dataset import Dataset
from trautoml.models.spec import ModelSpec, build_module
from trautoml.models.train import train_and_evaluate

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 9, 13)]

CELL = [{"inputs": [0, 1], "ops": ["sep3", "identity"]},
        {"inputs": [2, 0], "ops": ["avg3", "sep5"]},
        {"inputs": [1, 3], "ops": ["max3", "sep3"]}]
RCELL = [{"inputs": [1, 0], "ops": ["max3", "sep5"]},
         {"inputs": [2, 1], "ops": ["identity", "avg3"]},
         {"inputs": [2, 3], "ops": ["sep3", "identity"]}]
MACRO_LAYERS = [{"op": "conv3", "skips": []}, {"op": "sep5", "skips": [0]}, {"op": "max3", "skips": [1]},
                {"op": "avg3", "skips": [0, 2]}, {"op": "conv5", "skips": []}]


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    p = np.random.default_rng(0).permutation(len(y))
    x, y = x[p], y[p]
    return Dataset("digits", x[:1200], y[:1200], x[1200:1500], y[1200:1500], x[1500:], y[1500:], 10)


def macro_arch(layers=MACRO_LAYERS, channels=8, reduce_after=(2, 4)):
    return {"layers": copy.deepcopy(layers), "channels": channels, "reduce_after": list(reduce_after),
            "dropout": 0.0}


def cells_arch(shape=(1, 28, 28), k=10, channels=8):
    return fit_cells_arch(CELL, RCELL, shape, k, channels=channels, cells_per_stage=1)


# ------------------------------------------------------------------------------------------------------ controller

@pytest.mark.parametrize("kind", ["macro", "micro"])
def test_controller_raises_mean_reward_on_a_synthetic_reward(kind):
    """REINFORCE over the real sampling code: reward = share of op choices equal to one target op."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    if kind == "macro":
        ctl, target = MacroController(4), "sep3"  # op 2 of MACRO_OPS

        def reward(s):
            return sum(layer["op"] == target for layer in s.arch["layers"]) / 4
    else:
        ctl, target = MicroController(2), "avg3"

        def reward(s):
            ops = [op for cell in s.arch.values() for node in cell for op in node["ops"]]
            return sum(op == target for op in ops) / len(ops)
    trainer = Reinforce(ctl)  # defaults: Adam 3.5e-3, tanh 2.5, temperature 5, baseline decay 0.99

    def mean_reward(n=100):
        with torch.no_grad():
            return float(np.mean([reward(ctl.sample(gen)) for _ in range(n)]))

    before = mean_reward()
    for _ in range(80):
        samples = [ctl.sample(gen) for _ in range(4)]
        trainer.update(samples, [reward(s) for s in samples])
    after = mean_reward()
    assert before < 0.4  # about 1/len(ops) at the start
    assert after > before + 0.4 and after > 0.75
    assert trainer.updates == 80 and trainer.baseline > 0.6


def test_controller_samples_valid_archs():
    gen = torch.Generator().manual_seed(3)
    macro, micro = MacroController(5), MicroController(3)
    for _ in range(20):
        s = macro.sample(gen)
        validate_macro_arch(macro_arch(s.arch["layers"], reduce_after=[2]))
        assert float(s.log_prob.detach()) < 0 and float(s.entropy.detach()) > 0 and float(s.penalty.detach()) >= 0
        t = micro.sample(gen)
        validate_cells_arch(fit_cells_arch(t.arch["normal"], t.arch["reduction"], (1, 8, 8), 3, channels=8,
                                           cells_per_stage=1))
        assert float(t.log_prob.detach()) < 0 and float(t.entropy.detach()) > 0
        s.log_prob.backward()  # differentiable into the controller's parameters
        assert macro.op_soft.weight.grad is not None


def test_tanh_constant_bounds_the_logits():
    """2.5·tanh keeps every choice's probability above e^-5 / K even for a saturated controller."""
    ctl = MacroController(3, temperature=None)
    with torch.no_grad():
        ctl.op_soft.weight.fill_(100.0)
    s = ctl.sample(torch.Generator().manual_seed(0))
    n_decisions = 3 + 1 + 2  # ops, then 1 and 2 skip bits
    assert float(-s.log_prob.detach()) <= n_decisions * (5.0 + np.log(len(MACRO_OPS))) + 1e-4


# ----------------------------------------------------------------------------------------------- weight sharing

def _grads(net, arch, x, y):
    net.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x, arch), y).backward()
    return {n: p.grad for n, p in net.named_parameters()}


def test_macro_children_that_pick_the_same_op_share_its_parameters():
    torch.manual_seed(0)
    net = MacroNet((1, 8, 8), 3, 5, 8, [2, 4])
    a = {"layers": [dict(op="conv3", skips=[]), dict(op="sep5", skips=[0]), dict(op="avg3", skips=[]),
                    dict(op="conv5", skips=[1, 2]), dict(op="max3", skips=[0])]}
    b = {"layers": [dict(op="sep3", skips=[]), dict(op="sep5", skips=[]), dict(op="conv3", skips=[1]),
                    dict(op="conv5", skips=[]), dict(op="avg3", skips=[3])]}
    shared = net.ops[1]["sep5"][0].weight  # layer 2's sep5: picked by both children
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    ga, gb = _grads(net, a, x, y), _grads(net, b, x, y)
    name = next(n for n, p in net.named_parameters() if p is shared)
    assert ga[name] is not None and gb[name] is not None and ga[name].abs().sum() > 0 and gb[name].abs().sum() > 0
    assert ga["ops.0.conv3.0.weight"] is not None and gb["ops.0.conv3.0.weight"] is None  # only a's op
    assert ga["ops.0.sep3.0.weight"] is None and gb["ops.0.sep3.0.weight"] is not None
    assert ga["ops.1.conv5.0.weight"] is None and gb["ops.1.conv5.0.weight"] is None  # nobody's
    # a step on child a moves the shared op, so child b's function changes through it
    before = shared.detach().clone()
    _grads(net, a, x, y)
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    assert not torch.equal(before, shared.detach())


def test_micro_children_that_pick_the_same_op_share_its_parameters():
    torch.manual_seed(0)
    net = MicroNet((1, 8, 8), 3, 3, 1, 8, 1)
    other = copy.deepcopy(CELL)
    other[1] = {"inputs": [1, 2], "ops": ["max3", "sep5"]}   # node 3, slot 1: sep5 as in CELL, on another input
    other[2] = {"inputs": [3, 3], "ops": ["sep5", "sep3"]}   # node 4: slot 0 differs, slot 1 sep3 as in CELL
    a, b = {"normal": CELL, "reduction": RCELL}, {"normal": other, "reduction": RCELL}
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    ga, gb = _grads(net, a, x, y), _grads(net, b, x, y)
    for name in ("cells.0.ops.1.1.sep5.1.weight", "cells.0.ops.2.1.sep3.1.weight", "cells.0.ops.0.0.sep3.1.weight"):
        assert ga[name] is not None and gb[name] is not None and ga[name].abs().sum() > 0
    assert ga["cells.0.ops.2.0.sep5.1.weight"] is None and gb["cells.0.ops.2.0.sep5.1.weight"] is not None
    assert ga["cells.0.ops.2.0.sep3.1.weight"] is None and gb["cells.0.ops.2.0.sep3.1.weight"] is None
    # the reduction cell's stride-2 op on a cell input and its stride-1 twin on an inner node are distinct
    assert "cells.1.ops.1.0.sep3_s2.1.weight" in ga and "cells.1.ops.1.0.sep3.1.weight" in ga


def _inherit(child, supernet):
    """Copy the super-network's weights into a standalone child (column blocks for the cell projections)."""
    sup = dict(supernet.named_parameters())
    with torch.no_grad():
        for name, p in child.named_parameters():
            src = sup[name]
            if name.endswith("project.weight"):
                sub = child.get_submodule(name[: -len(".weight")])
                whole = supernet.get_submodule(name[: -len(".weight")])
                cols = [torch.arange(sub.c_in) + sub.c_in * whole.candidates.index(i) for i in sub.candidates]
                src = src[:, torch.cat(cols)]
            p.copy_(src)


@pytest.mark.parametrize("space", ["macro", "cells"])
def test_a_derived_child_is_the_network_the_supernet_ran(space):
    """Same weights, same batch statistics (train mode): the standalone child computes what its path in the
    super-network computed, so the child judged during the search is the child that is retrained."""
    torch.manual_seed(0)
    enas = ENAS(space, layers=5, nodes=3, channels=8)
    net, ctl, structure = enas.build((1, 28, 28), 10)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 28, 28)
    for _ in range(3):
        child = ctl.sample(gen).arch
        spec = enas.derive_spec(child, structure, (1, 28, 28), 10)
        standalone = build_module(spec, (1, 28, 28), 10)
        assert sum(p.numel() for p in standalone.parameters()) < sum(p.numel() for p in net.parameters())
        _inherit(standalone, net)
        net.train(), standalone.train()
        assert torch.allclose(net(x, child), standalone(x), atol=1e-5)


# ------------------------------------------------------------------------------------------ derived architectures

@pytest.mark.parametrize("shape", SHAPES)
def test_derived_archs_build_through_the_entry_points_for_every_shape(shape):
    for spec in (ModelSpec("enas-macro", macro_arch()), ModelSpec("enas-cells", cells_arch(shape, 5))):
        m = build_module(spec, shape, 5)
        m.train()
        out = m(torch.rand(3, *shape))
        assert out.shape == (3, 5)
        out.sum().backward()
        m.eval()
        assert torch.isfinite(m(torch.rand(2, *shape))).all()


def test_standalone_children_hold_only_their_ops():
    m = build_macro(macro_arch(), (1, 28, 28), 10)
    assert [list(d.keys()) for d in m.ops] == [[layer["op"]] for layer in MACRO_LAYERS]
    # reduction after layer 2 keeps node 2 (next input) and node 0, 1 (skips of layers 3, 4); after 4: node 4
    assert sorted(m.reducers["2"].keys()) == ["0", "1", "2"] and sorted(m.reducers["4"].keys()) == ["4"]
    c = build_cells(cells_arch(), (1, 28, 28), 10)
    assert [list(d.keys()) for d in c.cells[0].ops[0]] == [["sep3"], ["identity"]]
    assert [list(d.keys()) for d in c.cells[1].ops[0]] == [["max3_s2"], ["sep5_s2"]]  # reduction: cell inputs
    assert c.cells[0].project.candidates == [4]  # loose ends of CELL
    assert c.kinds == ["normal", "reduction", "normal", "reduction", "normal"]


@pytest.mark.parametrize("space", ["enas-macro", "enas-cells"])
def test_a_derived_arch_trains_above_chance_on_digits(digits, space):
    arch = macro_arch(reduce_after=[2]) if space == "enas-macro" else cells_arch((1, 8, 8))
    spec = ModelSpec(space, arch, {"lr": 0.1, "weight_decay": 1e-4, "batch_size": 64})
    res = train_and_evaluate(spec, digits, 3, seed=0)
    assert not res.diverged
    assert res.val_accuracy > 0.5 and res.test_accuracy > 0.5  # chance: 0.1


@pytest.mark.parametrize("bad, field", [
    ({"layers": [{"op": "conv7", "skips": []}]}, "layers[0].op"),
    ({"layers": [{"op": "conv3", "skips": [0]}]}, "layers[0].skips"),
    ({"layers": [{"op": "conv3", "skips": []}, {"op": "conv3", "skips": [1]}]}, "layers[1].skips"),
    ({"channels": 7}, "channels"),
    ({"reduce_after": [9]}, "reduce_after"),
    ({"extra": 1}, "extra"),
])
def test_macro_validation_names_the_bad_field(bad, field):
    arch = {**macro_arch(), **bad}
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        build_macro(arch, (1, 8, 8), 3)


@pytest.mark.parametrize("bad, field", [
    ({"normal": [{"inputs": [0, 2], "ops": ["sep3", "sep3"]}]}, r"normal\[0\].inputs"),
    ({"reduction": [{"inputs": [0, 1], "ops": ["conv3", "sep3"]}]}, r"reduction\[0\].ops"),
    ({"cells_per_stage": 0}, "cells_per_stage"),
    ({"reductions": -1}, "reductions"),
    ({"dropout": 2.0}, "dropout"),
])
def test_cells_validation_names_the_bad_field(bad, field):
    with pytest.raises(ValueError, match=field):
        build_cells({**cells_arch(), **bad}, (1, 8, 8), 3)


def test_depth_rules():
    assert [reductions_for((1, s, s)) for s in (4, 8, 16, 28, 32, 64, 96)] == [1, 1, 1, 2, 2, 3, 3]
    assert macro_reduce_after(12, 2) == [4, 8]  # ENAS's pool layers for 12 layers
    assert macro_reduce_after(6, 2) == [2, 4] and macro_reduce_after(3, 3) == [1, 2]
    assert width_for(16, 10, 10) == 16 and width_for(16, 10, 2) == 8 and width_for(16, 10, 100) == 22


# ------------------------------------------------------------------------------------------------------- search

def _run_trials_on(ds, calls):
    def run_trials(requests):
        calls.extend(requests)
        out = []
        for r in requests:
            res = train_and_evaluate(r.spec, ds, r.resource, r.seed)
            out.append(Trial(r.spec, r.resource, r.seed, res.val_accuracy, res.test_accuracy, res.wall_seconds))
        return out
    return run_trials


@pytest.mark.parametrize("space", ["macro", "cells"])
def test_enas_search_end_to_end_on_digits(digits, space):
    calls: list = []
    messages: list[str] = []
    warm = ModelSpec("enas-macro", macro_arch(MACRO_LAYERS[:4], reduce_after=[2]))
    task = SearchTask(digits, SearchBudget(max_trials=4, max_epochs=1.0), _run_trials_on(digits, calls), seed=0,
                      warm_start=[warm], progress=messages.append)
    backend = get_backend("enas", space=space, layers=4, nodes=2, channels=8, controller_steps=2,
                          controller_samples=3, candidates=4)
    res = backend.search(task)
    # one real trial: the chosen child retrained from scratch at max_epochs
    assert len(calls) == 1 and calls[0].resource == 1.0 and len(res.trials) == 1
    assert res.best == calls[0].spec and res.best_resource == 1.0
    assert res.best.space == f"enas-{space}" and res.best.train["optimizer"] == "sgd"
    build_module(res.best, digits.input_shape, 10)
    (validate_macro_arch if space == "macro" else validate_cells_arch)(res.best.arch)
    info = res.info
    assert info["epochs_shared_planned"] == 1.0  # 0.25 * 4 trials * 1 epoch
    assert info["shared_steps"] == 19 and info["controller_updates"] == 2 and info["rounds"] == 1
    assert info["children_evaluated"] == 6 and info["children_sampled"] == 19 + 6 + 4
    assert 1 <= info["children_distinct"] <= 6
    assert len(info["candidates"]) == 4 + (space == "macro") and all(c["pseudo"] for c in info["candidates"])
    assert info["candidates"][0]["warm_start"] == (space == "macro")
    assert info["cost_ratio"] > 0 and info["seconds"] >= info["retrain_seconds"]
    assert any("round 1" in m for m in messages)


def test_enas_search_stops_rounds_at_the_wall_clock_cap(digits):
    calls: list = []
    task = SearchTask(digits, SearchBudget(max_trials=40, max_epochs=1.0, max_seconds=1e-3),
                      _run_trials_on(digits, calls), seed=1)
    res = ENAS("macro", layers=3, channels=8, controller_steps=1, controller_samples=2, candidates=2).search(task)
    assert res.info["rounds"] == 1 and res.stopped_early and len(calls) == 1


def test_enas_rejects_bad_options():
    with pytest.raises(ValueError, match="space"):
        ENAS("dense")
    with pytest.raises(ValueError, match="even"):
        ENAS("cells", channels=9)


# ---------------------------------------------------------------------------------------- transfer of basic cells

def test_a_joining_dataset_reuses_the_groups_cells_verbatim_restacked_for_its_own_data():
    group = ModelSpec("enas-cells", cells_arch((1, 28, 28), 10, channels=16),
                      {"optimizer": "sgd", "lr": 0.07, "momentum": 0.9, "weight_decay": 3e-4, "batch_size": 32})
    # re-stacking for the dataset the cells were searched on gives the group's spec back
    assert stack_cells(group, (1, 28, 28), 10) == group
    for shape, k, reductions, channels in [((1, 8, 8), 10, 1, 16), ((3, 96, 96), 10, 3, 16),
                                           ((3, 32, 32), 2, 2, 8), ((1, 28, 28), 100, 2, 22)]:
        joined = stack_cells(group, shape, k)
        assert joined.space == "enas-cells"
        assert joined.arch["normal"] == group.arch["normal"] and joined.arch["reduction"] == group.arch["reduction"]
        assert joined.train == group.train and joined.arch["cells_per_stage"] == group.arch["cells_per_stage"]
        assert (joined.arch["reductions"], joined.arch["channels"]) == (reductions, channels)
        assert joined.arch["fitted_to"] == {"input_shape": list(shape), "num_classes": k}
        m = build_module(joined, shape, k)
        assert m(torch.rand(2, *shape)).shape == (2, k)
        assert sum(kind == "reduction" for kind in m.kinds) == reductions
    assert stack_cells(group, (1, 8, 8), 10) != stack_cells(group, (3, 96, 96), 10)
    with pytest.raises(ValueError, match="enas-cells"):
        stack_cells(ModelSpec("enas-macro", macro_arch()), (1, 8, 8), 10)


def test_stacked_cells_train_afresh_on_the_joining_dataset(digits):
    group = ModelSpec("enas-cells", cells_arch((3, 32, 32), 10), {"lr": 0.1, "weight_decay": 1e-4})
    joined = stack_cells(group, digits.input_shape, digits.num_classes)
    res = train_and_evaluate(joined, digits, 3, seed=0, keep_module=True)
    assert res.val_accuracy > 0.5
    assert set(CELL_OPS) >= {op for node in joined.arch["normal"] for op in node["ops"]}
