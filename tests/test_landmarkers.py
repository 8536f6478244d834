"""Landmarkers: sampling, the network family, and profiles on synthetic data (real data: test_landmarkers_signal)."""
import json
import math

import numpy as np
import pytest
import torch

from landmarkers import (LANDMARKER_SEED, SPACE, Profile, ProfileBudget, build_landmarker, landmarker_specs, profile,
                         sample_landmarkers, trial_seed)
from landmarkers.models import (HEAD_GRID, MAX_SIDE, block_plan, cost, forward_macs, shrink, shrink_array,
                                working_size)
from landmarkers.profile import trial_dataset
from landmarkers.sampling import MAX_COST
from trautoml.data.dataset import Dataset
from trautoml.executor import LocalExecutor, SerialExecutor
from trautoml.models.spec import ModelSpec, build_module

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 96, 96), (1, 9, 13), (3, 40, 64)]
EXTREMES = [
    {"depth": 3, "width": 32, "kernel": 5, "stride": 2, "skip": True},
    {"depth": 3, "width": 8, "kernel": 3, "stride": 1, "skip": True},
    {"depth": 1, "width": 8, "kernel": 5, "stride": 1, "skip": False},
    {"depth": 2, "width": 17, "kernel": 3, "stride": 2, "skip": False},
]
TINY = ProfileBudget(epochs=1.0, max_train=96, max_eval=64)


def synthetic(n_train=300, n_val=120, shape=(1, 12, 12), classes=3, seed=0, name="syn"):
    """Class-dependent blobs plus noise: learnable, so accuracies are not all at chance."""
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, *shape)).astype(np.float32)

    def split(n):
        y = rng.integers(0, classes, n).astype(np.int64)
        x = np.clip(0.7 * protos[y] + 0.3 * rng.random((n, *shape)), 0, 1).astype(np.float32)
        return x, y

    (xt, yt), (xv, yv), (xs, ys) = split(n_train), split(n_val), split(20)
    return Dataset(name, xt, yt, xv, yv, xs, ys, classes)


# ---------------------------------------------------------------------------------------------------- sampling
def test_same_seed_same_specs_different_seed_different_specs():
    a, b = sample_landmarkers(6, seed=0), sample_landmarkers(6, seed=0)
    assert a == b and [s.to_json() for s in a] == [s.to_json() for s in b]
    assert sample_landmarkers(6, seed=1) != a
    assert sample_landmarkers(7, seed=0)[:6] == a  # a prefix: adding a landmarker keeps the others
    assert len({s.key() for s in a}) == 6  # diverse: no two alike


def test_sampling_uses_no_global_random_state():
    import random

    random.seed(123)
    np.random.seed(123)
    a = sample_landmarkers(4, seed=5)
    random.seed(999)
    np.random.seed(999)
    assert sample_landmarkers(4, seed=5) == a


def test_specs_are_json_and_within_the_space():
    specs = sample_landmarkers(200, seed=3)
    for s in specs:
        assert s.space == "landmarker"
        d = json.loads(json.dumps(s.to_dict()))
        assert ModelSpec.from_dict(d) == s
        values = {**s.arch, **s.train}
        for name, dist in SPACE.items():
            v = values[name]
            if dist[0] == "choice":
                assert v in dist[1], (name, v)
            else:
                assert dist[1] * 0.999 <= v <= dist[2] * 1.001, (name, v)
        assert isinstance(s.arch["width"], int) and isinstance(s.arch["skip"], bool)
        assert cost(s.arch) <= MAX_COST
        assert s.train_params()["optimizer"] == "sgd"
    # every choice is reached, widths spread over the log range, learning rates over two decades
    for name in ("depth", "kernel", "stride", "skip", "batch_size"):
        assert {(s.arch | s.train)[name] for s in specs} == set(SPACE[name][1]), name
    widths = [s.arch["width"] for s in specs]
    assert min(widths) <= 9 and max(widths) >= 28
    lrs = np.log10([s.train["lr"] for s in specs])
    assert lrs.min() < -1.6 and lrs.max() > -0.7


def test_sampling_refuses_bad_n():
    with pytest.raises(ValueError):
        sample_landmarkers(0)


# ---------------------------------------------------------------------------------------------------- models
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("classes", [2, 100])
def test_forward_shape_on_any_input(shape, classes):
    torch.manual_seed(0)
    archs = EXTREMES + [s.arch for s in sample_landmarkers(6, LANDMARKER_SEED)]
    x = torch.rand(3, *shape)
    for arch in archs:
        m = build_landmarker(arch, shape, classes)
        out = m(x)
        assert out.shape == (3, classes), (arch, shape)
        assert torch.isfinite(out).all()
        for _, _, _, h, w in block_plan(arch, shape):
            assert h >= min(2, working_size(*shape[1:])[0]) and w >= min(2, working_size(*shape[1:])[1])


def test_built_through_the_model_space_entry_point():
    spec = sample_landmarkers(1)[0]
    m = build_module(spec, (3, 32, 32), 5)
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 5)


def test_strides_stop_at_two_by_two_and_large_inputs_are_pooled():
    arch = {"depth": 3, "width": 8, "kernel": 3, "stride": 2, "skip": False}
    assert [p[2:] for p in block_plan(arch, (1, 8, 8))] == [(2, 4, 4), (2, 2, 2), (1, 2, 2)]
    assert [p[2:] for p in block_plan(arch, (3, 96, 96))] == [(2, 16, 16), (2, 8, 8), (2, 4, 4)]
    assert working_size(96, 96) == (MAX_SIDE, MAX_SIDE) and working_size(28, 28) == (28, 28)
    assert cost(arch, (3, 96, 96)) == cost(arch, (3, 32, 32))  # resolution above 32 costs nothing more
    assert forward_macs(arch, (1, 8, 8)) > 0 and HEAD_GRID == 2


def test_pooling_in_the_parent_equals_pooling_in_the_module():
    torch.manual_seed(0)
    x = np.random.default_rng(0).random((5, 3, 96, 96), dtype=np.float32)
    small = shrink_array(x)
    assert small.shape == (5, 3, 32, 32) and small.dtype == np.float32
    assert shrink_array(small) is small  # a no-op at the working size
    m = build_landmarker(EXTREMES[0], (3, 96, 96), 4).eval()
    with torch.no_grad():
        assert torch.allclose(m(torch.from_numpy(x)), m(torch.from_numpy(small)), atol=1e-6)
    assert torch.equal(shrink(torch.from_numpy(small)), torch.from_numpy(small))


def test_bad_arch_is_refused():
    with pytest.raises(ValueError, match="lacks"):
        build_landmarker({"depth": 2}, (1, 8, 8), 3)
    with pytest.raises(ValueError, match="stride"):
        build_landmarker({**EXTREMES[0], "stride": 3}, (1, 8, 8), 3)
    with pytest.raises(ValueError, match="classes"):
        build_landmarker(EXTREMES[0], (1, 8, 8), 1)


# ---------------------------------------------------------------------------------------------------- profile
def test_trial_data_is_small_seeded_and_varies_by_trial():
    ds = synthetic(n_train=500, n_val=300, shape=(3, 48, 48))
    b = ProfileBudget(max_train=100, max_eval=50)
    d0, d0b, d1 = trial_dataset(ds, 0, 0, b), trial_dataset(ds, 0, 0, b), trial_dataset(ds, 0, 1, b)
    assert d0.x_train.shape == (100, 3, 32, 32) and d0.x_val.shape == (50, 3, 32, 32)
    assert np.array_equal(d0.x_train, d0b.x_train) and np.array_equal(d0.y_val, d0b.y_val)
    assert not np.array_equal(d0.x_train, d1.x_train)
    assert d0.num_classes == ds.num_classes
    whole = trial_dataset(ds, 0, 0, ProfileBudget(max_train=None, max_eval=10_000))
    assert len(whole.y_train) == 500 and len(whole.y_val) == 300
    assert trial_seed(0, 1, 2) == trial_seed(0, 1, 2) != trial_seed(0, 2, 1)


def test_profile_shape_range_and_json_round_trip():
    ds = synthetic()
    calls = []
    p = profile(ds, n_models=3, n_trials=2, seed=0, executor=SerialExecutor(), budget=TINY,
                progress=lambda done, total: calls.append((done, total)))
    assert p.trials.shape == (2, 3) and p.trials.dtype == np.float64
    assert ((p.trials >= 0) & (p.trials <= 1)).all()
    assert p.mean.shape == (3,) and np.allclose(p.mean, p.trials.mean(0))
    assert p.covariance.shape == (3, 3)
    assert p.wall_seconds.shape == (2, 3) and (p.wall_seconds > 0).all()
    assert p.total_seconds >= p.wall_seconds.max() and p.seed == 0 and p.budget == TINY
    assert p.specs == landmarker_specs(3) and p.dataset == "syn"
    assert p.trials.max() > 1 / ds.num_classes + 0.1  # some landmarker learns the blobs
    assert calls[0] == (0, 6) and calls[-1] == (6, 6) and [c[0] for c in calls] == sorted(c[0] for c in calls)

    q = Profile.from_json(p.to_json())
    assert np.array_equal(q.trials, p.trials) and np.array_equal(q.wall_seconds, p.wall_seconds)
    assert q.specs == p.specs and q.budget == p.budget and q.seed == p.seed and q.total_seconds == p.total_seconds
    assert json.loads(json.dumps(p.to_dict()))["mean"] == p.mean.tolist()


def test_same_seed_same_profile_other_seed_other_profile():
    ds = synthetic()
    kw = dict(n_models=2, n_trials=2, executor=SerialExecutor(), budget=TINY, device="cpu")
    a, b, c = profile(ds, seed=4, **kw), profile(ds, seed=4, **kw), profile(ds, seed=5, **kw)
    assert np.array_equal(a.trials, b.trials)
    assert not np.array_equal(a.trials, c.trials)
    # fewer landmarkers = the first columns of more (specs are a prefix, seeds do not depend on B)
    wider = profile(ds, n_models=3, seed=4, **{k: v for k, v in kw.items() if k != "n_models"})
    assert np.array_equal(wider.trials[:, :2], a.trials)


def test_a_profile_made_in_two_looks_equals_one_made_at_once_and_keeps_each_looks_seconds():
    ds = synthetic()
    kw = dict(n_models=2, seed=4, executor=SerialExecutor(), budget=TINY, device="cpu")
    whole = profile(ds, n_trials=3, **kw)
    first = profile(ds, n_trials=2, **kw)
    rest = profile(ds, n_trials=3, first_trial=2, **kw)
    both = first.extend(rest)
    assert np.array_equal(both.trials, whole.trials)          # trial t is the same whatever the call
    assert both.total_seconds == first.total_seconds + rest.total_seconds
    assert both.checkpoints == [(2, first.total_seconds), (3, both.total_seconds)]
    back = Profile.from_json(both.to_json())
    assert back.checkpoints == both.checkpoints and back.head(2).total_seconds == first.total_seconds
    assert np.array_equal(back.head(2).trials, first.trials) and back.head(3) is back
    # a profile made at once: a head's seconds are its trials' share of the measured seconds
    share = whole.wall_seconds[:2].sum() / whole.wall_seconds.sum()
    assert whole.head(2).total_seconds == pytest.approx(whole.total_seconds * share)
    assert whole.checkpoints == [(3, whole.total_seconds)]
    with pytest.raises(ValueError, match="no head"):
        whole.head(4)
    with pytest.raises(ValueError, match="same landmarkers"):
        first.extend(profile(ds, n_trials=3, first_trial=2, **{**kw, "seed": 5}))
    with pytest.raises(ValueError, match="first_trial"):
        profile(ds, n_trials=2, first_trial=2, **kw)


def test_serial_and_process_pool_give_identical_profiles():
    ds = synthetic(shape=(3, 40, 40), classes=4)  # larger than 32: exercises the parent-side pooling too
    kw = dict(n_models=3, n_trials=2, seed=1, budget=TINY, device="cpu")  # CUDA kernels need not be deterministic
    serial = profile(ds, executor=SerialExecutor(), **kw)
    pool = LocalExecutor(2)
    try:
        pooled = profile(ds, executor=pool, progress=lambda d, t: None, **kw)
    finally:
        pool.close()
    assert np.array_equal(serial.trials, pooled.trials)
    assert serial.to_dict()["specs"] == pooled.to_dict()["specs"]


def test_profile_with_given_specs_and_refusals():
    ds = synthetic()
    specs = [ModelSpec("landmarker", EXTREMES[3], {"lr": 0.05, "batch_size": 32})]
    p = profile(ds, n_trials=1, executor=SerialExecutor(), budget=TINY, specs=specs)
    assert p.trials.shape == (1, 1) and p.specs == specs
    with pytest.raises(ValueError):
        profile(ds, n_trials=0, executor=SerialExecutor())
    with pytest.raises(ValueError):
        profile(ds, seed=-1, executor=SerialExecutor())
    with pytest.raises(ValueError):
        ProfileBudget(epochs=0)
    with pytest.raises(ValueError):
        ProfileBudget(max_train=0)
    with pytest.raises(ValueError, match="T x B"):
        Profile(trials=np.zeros((2, 3)), specs=specs, wall_seconds=np.zeros((2, 3)), total_seconds=0.0, seed=0)


def test_budget_round_trip():
    b = ProfileBudget(epochs=0.5, max_train=None, max_eval=200)
    assert ProfileBudget.from_dict(json.loads(json.dumps(b.to_dict()))) == b
    assert ProfileBudget() == ProfileBudget(1.0, 1024, 1000)
    assert math.isclose(ProfileBudget().epochs, 1.0)
