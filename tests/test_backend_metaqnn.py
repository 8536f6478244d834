"""MetaQNN: epsilon schedule, state-space limits, Q-learning with replay, convergence, warm start, persistence."""
import json
import random
from functools import partial

import numpy as np
import pytest

from search_backends.base import SearchBudget, SearchTask, Trial
from search_backends.metaqnn import (PAPER_EPSILON_SCHEDULE, Q_FILE, TERMINATE, MetaQNN, Memory, QTable,
                                     StateSpace, actions_to_layers, epsilon_schedule, layers_to_actions)
from search_backends.registry import get_backend
from trautoml.data.dataset import Dataset
from trautoml.models.cnn import cnn_layer_shapes, cnn_macs, validate_cnn_arch
from trautoml.models.spec import ModelSpec, build_module
from trautoml.models.trials import run_trial


def dataset(side=8, channels=1, n=40, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) % classes
    x = rng.random((n, channels, side, side), dtype=np.float32) * 0.2
    x[:, :, : side // 2] += y[:, None, None, None].astype(np.float32) * 0.8  # learnable: class lights the top
    return Dataset("tiny", x, y, x.copy(), y.copy(), x.copy(), y.copy(), classes)


def conv(f, k=3):
    return {"type": "conv", "filters": f, "kernel": k, "stride": 1}


POOL = {"type": "pool", "op": "max", "size": 2, "stride": 2}
FC128 = {"type": "fc", "units": 128}
#: The known optimum of the synthetic landscape: conv64-conv64-pool-fc128-terminate.
OPT = [conv(64), conv(64), POOL, FC128]
SMALL_SPACE = dict(filters=(32, 64), kernels=(3,), pools=((2, 2),), fc_units=(128, 64), max_depth=5)


def synthetic_reward(layers) -> float:
    """A reward MetaQNN's state can express. Its state keeps only (type, depth, size bin, the layer's own
    parameters, fc count), so the terminal transition cannot tell which earlier layers led to it, and a reward on
    earlier layers only reaches the greedy policy as an average. The landscape therefore depends on what the
    terminating state knows: deeper is better up to 4 layers, and terminating from a 128-unit fc layer at depth 4
    (OPT's terminal state; OPT is the first such network the test names) is best, 0.9."""
    bonus = 0.2 if len(layers) == 4 and layers[-1] == FC128 else 0.0
    return round(0.3 + 0.1 * min(len(layers), 4) + bonus, 6)


class Runner:
    """Fake run_trials: reward = fn(arch layers); records every spec it is asked to train."""

    def __init__(self, fn=synthetic_reward):
        self.fn, self.specs = fn, []

    def __call__(self, requests):
        out = []
        for r in requests:
            self.specs.append(r.spec)
            acc = self.fn(r.spec.arch["layers"])
            out.append(Trial(r.spec, r.resource, r.seed, acc, acc, 0.0))
        return out


def task(runner, max_trials=20, side=8, **kw):
    return SearchTask(dataset(side), SearchBudget(max_trials=max_trials, max_epochs=1.0), runner, **kw)


# ------------------------------------------------------------------------------------------- epsilon schedule

@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 20, 37, 100, 500, 2700])
def test_epsilon_schedule_shape(n):
    sched = epsilon_schedule(n)
    eps = [e for e, _ in sched]
    counts = [c for _, c in sched]
    assert sum(counts) == n and all(c > 0 for c in counts)
    assert eps == sorted(eps, reverse=True) and len(set(eps)) == len(eps)  # epsilon only ever decreases
    assert eps[0] == 1.0 and min(eps) >= 0.1
    below = counts[1:]
    assert below == sorted(below)  # more (never fewer) episodes at each lower epsilon
    if n >= 10:
        assert eps[-1] == 0.1
        assert counts[0] == max(counts)  # the paper's large exploration share at epsilon 1


def test_epsilon_schedule_is_the_papers_table_at_full_size():
    assert epsilon_schedule(2700) == [(e, c) for e, c in PAPER_EPSILON_SCHEDULE]
    s = dict(epsilon_schedule(100))
    assert s[1.0] == 56 and sum(c for e, c in s.items() if e <= 0.6) > sum(c for e, c in s.items() if 0.6 < e < 1)


def test_warm_schedule_skips_pure_exploration():
    sched = epsilon_schedule(30, warm=True)
    assert sum(c for _, c in sched) == 30 and max(e for e, _ in sched) < 1.0 and sched[-1][0] == 0.1
    assert epsilon_schedule(0) == [] and epsilon_schedule(5, warm=True)[-1] == (0.1, 1)


# ---------------------------------------------------------------------------------------------- state space

def simulate(space: StateSpace, path):
    """(layer, size before it) along a path."""
    state, size = space.start()
    out = []
    for a in path[:-1]:
        out.append((a, size, state))
        state, size = space.step(state, size, a)
    return out


@pytest.mark.parametrize("side,channels", [(8, 1), (28, 1), (32, 3), (96, 3)])
def test_state_space_limits(side, channels):
    b = MetaQNN()
    b.space = space = b.new_space((channels, side, side))
    t = space.threshold
    assert space.max_depth == (8 if side <= 32 else 12)
    rng = random.Random(side)
    for _ in range(400):
        path = b.sample_path(1.0, rng)
        assert path[-1] == TERMINATE and TERMINATE not in path[:-1] and len(path) >= 2
        layers = path[:-1]
        assert len(layers) <= space.max_depth
        kinds = [a[0] for a in layers]
        assert kinds[0] != "pool"
        assert all(not (x == "pool" and y == "pool") for x, y in zip(kinds, kinds[1:]))
        assert kinds.count("fc") <= 2
        first_fc = kinds.index("fc") if "fc" in kinds else len(kinds)
        assert all(k == "fc" for k in kinds[first_fc:])  # conv/pool first, then fc
        fc_units = [a[1] for a in layers if a[0] == "fc"]
        assert fc_units == sorted(fc_units, reverse=True)
        for a, size, _state in simulate(space, path):
            if a[0] == "pool":
                assert size >= t >= 4 and size >= 3  # never pools a 1-3 px representation
            if a[0] == "conv":
                assert (size >= 2 * t and a[2] < 2 * t) or (t <= size < 2 * t and a[2] < t)
            if a[0] == "fc" and a is layers[first_fc]:
                assert size < 2 * t  # fc only once the representation is small
        # the builder agrees with the simulated sizes, and the spec is a valid cnn spec
        spec = b.to_spec(path)
        validate_cnn_arch(spec.arch)
        shapes = cnn_layer_shapes(spec.arch, (channels, side, side))
        assert None not in shapes  # no pool the builder would have to skip
        state, size, sizes = *space.start(), []
        for a in layers:
            state, size = space.step(state, size, a)
            if a[0] != "fc":
                sizes.append(size)
        assert [s[1] for s in shapes] == sizes


def test_action_sets_depend_on_the_state_only_and_terminate_rules():
    space = StateSpace(input_size=28)
    start, size = space.start()
    assert TERMINATE not in space.actions(start)  # no empty network
    s1, _ = space.step(start, size, ("conv", 32, 3, 1))
    assert TERMINATE in space.actions(s1)
    deep = ("conv", space.max_depth, "L", 32, 3, 0)
    assert space.actions(deep) == [TERMINATE]
    fc2 = ("fc", 5, "-", 64, 0, 2)
    assert space.actions(fc2) == [TERMINATE]  # at most two fc layers
    fc1 = ("fc", 4, "-", 64, 0, 1)
    assert [a for a in space.actions(fc1) if a[0] == "fc"] == [("fc", 64)]  # widths never grow
    assert not [a for a in space.actions(s1) if a[0] == "fc"]  # 28 px is still "large": no fc yet


def test_layers_actions_round_trip_and_foreign_layers():
    path = tuple(layers_to_actions(OPT))
    assert path[-1] == TERMINATE and actions_to_layers(path) == OPT
    assert layers_to_actions([{"type": "pool", "op": "avg", "size": 2, "stride": 2}]) is None
    assert StateSpace(input_size=8, **SMALL_SPACE).walk(layers_to_actions([conv(48)])) is None  # not in space


# ----------------------------------------------------------------------------------------- Q-learning/replay

def test_replay_updates_q_along_the_path_last_transition_first():
    b = MetaQNN(**SMALL_SPACE)
    b.space = b.new_space((1, 8, 8))
    path = tuple(layers_to_actions(OPT))
    other = tuple(layers_to_actions([conv(32)]))
    b.memory = [Memory(path, 0.9)]
    b.replay(random.Random(0), n=1)
    states = b.space.walk(path)
    # terminal transition: 0.5 + 0.01 * (0.9 - 0.5); the one before backs up max Q of the next state (0.504)
    assert b.q.get(states[-1], TERMINATE) == pytest.approx(0.504)
    assert b.q.get(states[-2], path[-2]) == pytest.approx(0.5 + 0.01 * (0.504 - 0.5))
    assert b.q.get(states[0], path[0]) > 0.5
    # a path that was not replayed keeps the initial value everywhere
    assert b.q.get(b.space.walk(other)[-1], TERMINATE) == 0.5
    # more replay of a 0.9 network moves its terminal Q monotonically towards 0.9
    before = b.q.get(states[-1], TERMINATE)
    b.replay(random.Random(1), n=300)
    after = b.q.get(states[-1], TERMINATE)
    assert before < after < 0.9 and after == pytest.approx(0.5 + 0.4 * (1 - 0.99 ** 301))


def test_replay_samples_from_the_whole_memory():
    b = MetaQNN(**SMALL_SPACE)
    b.space = b.new_space((1, 8, 8))
    low, high = tuple(layers_to_actions([conv(32)])), tuple(layers_to_actions([conv(64)]))
    b.memory = [Memory(low, 0.1), Memory(high, 0.9)]
    b.replay(random.Random(0), n=200)
    q_low = b.q.get(b.space.walk(low)[-1], TERMINATE)
    q_high = b.q.get(b.space.walk(high)[-1], TERMINATE)
    assert q_low < 0.5 < q_high
    start = b.space.start()[0]
    assert b.q.get(start, high[0]) > b.q.get(start, low[0])


def test_q_learning_converges_to_the_best_path():
    runner = Runner()
    b = MetaQNN(**SMALL_SPACE)
    res = b.search(task(runner, max_trials=120, seed=0))
    greedy = actions_to_layers(b.greedy_path())
    best = synthetic_reward(OPT)
    assert synthetic_reward(greedy) == best  # the greedy policy ends where OPT ends
    assert greedy[-1] == FC128 and len(greedy) == len(OPT)
    assert res.best_val_accuracy == best and synthetic_reward(res.best.arch["layers"]) == best
    # learning, not luck: what the agent samples at low epsilon (repeats included: the replay memory in order)
    # scores far better than the random networks of epsilon 1
    n_random = dict(res.info["epsilon_schedule"])[1.0]
    random_phase = [t.val_accuracy for t in res.trials[:n_random]]
    late = [m.reward for m in b.memory[-50:]]
    assert np.mean(late) > np.mean(random_phase) + 0.1
    # the Q-values along the greedy path beat every alternative at each step
    state, size = b.space.start()
    for a in b.greedy_path():
        acts = b.space.actions(state)
        assert b.q.get(state, a) == max(b.q.get(state, x) for x in acts)
        state, size = b.space.step(state, size, a)


def test_repeated_architectures_reuse_their_reward():
    runner = Runner()
    b = MetaQNN(**SMALL_SPACE)
    res = b.search(task(runner, max_trials=60, seed=3))
    keys = [json.dumps(s.arch["layers"]) for s in runner.specs]
    assert len(keys) == len(set(keys)) == len(res.trials) == res.info["unique_models"]
    assert res.info["repeats"] > 0  # sampled again at low epsilon, never retrained
    assert len(b.memory) == res.info["unique_models"] + res.info["repeats"]


def test_exhausted_space_stops_instead_of_looping():
    b = MetaQNN(filters=(16,), kernels=(3,), pools=(), fc_units=(), max_depth=2, max_resamples=30)
    res = b.search(task(Runner(), max_trials=50))
    assert res.info["unique_models"] == 2  # conv-term and conv-conv-term are all there is
    assert res.info["exhausted_levels"]


def test_max_macs_skips_large_networks():
    runner = Runner()
    cap = 200_000
    res = MetaQNN(max_macs=cap).search(task(runner, max_trials=15, side=28))
    assert all(cnn_macs(s.arch, (1, 28, 28), 2) <= cap for s in runner.specs)
    assert res.info["too_large"] > 0


# ------------------------------------------------------------------------------------- warm start, persistence

def test_warm_start_specs_seed_the_memory_and_q_table():
    warm = ModelSpec("cnn", {"layers": OPT, "activation": "relu", "norm": "batch", "dropout": 0.0}, {"lr": 0.01})
    foreign = ModelSpec("cnn", {"layers": [conv(48)], "activation": "relu", "norm": "none", "dropout": 0.0})
    other_space = ModelSpec("mlp", {"hidden": [32]})
    runner = Runner()
    b = MetaQNN(**SMALL_SPACE)
    res = b.search(task(runner, max_trials=12, warm_start=[warm, foreign, other_space], seed=1))
    assert runner.specs[:2] == [warm, foreign]  # trained first, as given (their own hyper-parameters)
    assert other_space not in runner.specs
    path = tuple(layers_to_actions(OPT))
    assert b.memory[0] == Memory(path, 0.9) and all(m.actions != layers_to_actions([conv(48)]) for m in b.memory)
    assert res.info["warm_start_models"] == 2 and max(e for e, _ in res.info["epsilon_schedule"]) < 1.0
    assert sum(c for _, c in res.info["epsilon_schedule"]) == 10
    assert b.q.get(b.space.walk(path)[-1], TERMINATE) > 0.5
    assert res.best == warm  # the best model found is returned as trained


def test_q_table_persists_across_searches(tmp_path):
    b = MetaQNN(**SMALL_SPACE)
    res = b.search(task(Runner(), max_trials=20, state_dir=tmp_path, seed=2))
    saved = tmp_path / Q_FILE
    assert saved.is_file() and not res.info["q_table_loaded"]
    data = json.loads(saved.read_text())
    assert data["format"] == 1 and len(data["memory"]) == len(b.memory)
    # round trip: the file reproduces the table exactly
    assert QTable.from_dict(data["table"]).to_dict() == b.q.to_dict()
    again = MetaQNN(**SMALL_SPACE)
    assert again.load(saved) and again.q.to_dict() == b.q.to_dict()
    # a later search starts from it (warm schedule) and saves the updated table back
    res2 = MetaQNN(**SMALL_SPACE).search(task(Runner(), max_trials=10, state_dir=tmp_path, seed=3))
    assert res2.info["q_table_loaded"] and max(e for e, _ in res2.info["epsilon_schedule"]) < 1.0
    assert json.loads(saved.read_text())["table"] != data["table"]


# ------------------------------------------------------------------------------------------ real training

def test_metaqnn_specs_train_on_tiny_data_and_registry_name():
    ds = dataset(side=8, n=48)
    b = get_backend("metaqnn")
    assert isinstance(b, MetaQNN) and b.name == "metaqnn"
    run = partial(run_trial, dataset=ds)
    res = b.search(SearchTask(ds, SearchBudget(max_trials=3, max_epochs=0.5), lambda reqs: [run(r) for r in reqs]))
    assert len(res.trials) == 3 and all(t.status == "ok" for t in res.trials)
    assert res.best.space == "cnn" and res.best_resource == 0.5
    assert build_module(res.best, ds.input_shape, ds.num_classes) is not None
