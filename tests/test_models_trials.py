import pickle
import random
from functools import partial

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from search_backends.base import SearchBudget, SearchTask, TrialRequest
from search_backends.hyperband import Hyperband
from search_backends.random_search import RandomSearch
from trautoml.data.dataset import Dataset
from trautoml.executor import SerialExecutor
from trautoml.models.cnn import sample_cnn_spec
from trautoml.models.spec import ModelSpec
from trautoml.models.trials import run_trial

SMALL_CNN = ModelSpec("cnn", {"layers": [{"type": "conv", "filters": 16, "kernel": 3, "stride": 1},
                                         {"type": "pool", "op": "max", "size": 2, "stride": 2},
                                         {"type": "fc", "units": 32}],
                              "activation": "relu", "norm": "batch", "dropout": 0.1},
                      {"optimizer": "adam", "lr": 3e-3, "batch_size": 32})


@pytest.fixture(scope="module", autouse=True)
def few_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # what one executor worker gets; also keeps the timings honest
    yield
    torch.set_num_threads(n)


def digits() -> Dataset:
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(0).permutation(len(y))
    tr, va, te = idx[:1200], idx[1200:1500], idx[1500:]
    return Dataset("digits", x[tr], y[tr], x[va], y[va], x[te], y[te], num_classes=10)


def synthetic(shape, n=96, classes=3) -> Dataset:
    """Images whose brightness gives the class: learnable, any shape."""
    rng = np.random.default_rng(0)
    y = np.arange(n, dtype=np.int64) % classes
    x = (rng.random((n, *shape), dtype=np.float32) * 0.5 + y[:, None, None, None] * 0.25).astype(np.float32)
    return Dataset("syn", x, y, x, y, x, y, num_classes=classes)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 96, 96)])
def test_real_training_on_every_input_size(shape):
    ds = synthetic(shape, n=96 if shape[1] <= 32 else 30)  # a 96x96 epoch is ~10x dearer on CPU
    for spec in [SMALL_CNN, sample_cnn_spec(random.Random(shape[1])),
                 ModelSpec("mlp", {"hidden": [32], "activation": "elu", "norm": "batch", "dropout": 0.0})]:
        t = run_trial(TrialRequest(spec, 1.0, seed=0), ds, device="cpu")
        assert t.status == "ok", t.error
        assert 0.0 <= t.val_accuracy <= 1.0 and 0.0 <= t.test_accuracy <= 1.0 and t.wall_seconds > 0


def test_run_trial_reports_and_is_deterministic():
    ds = digits()
    req = TrialRequest(SMALL_CNN, 1.0, seed=3)
    a, b = run_trial(req, ds, device="cpu"), run_trial(req, ds, device="cpu")
    assert a.status == "ok" and a.error is None and not a.cached
    assert a.val_accuracy > 0.5  # chance is 0.1
    assert (a.spec, a.resource, a.seed) == (SMALL_CNN, 1.0, 3)
    assert (a.val_accuracy, a.test_accuracy) == (b.val_accuracy, b.test_accuracy)


def test_failures_become_failed_trials():
    ds = synthetic((1, 8, 8))
    bad = [ModelSpec("cnn", {"layers": [{"type": "conv", "filters": 0, "kernel": 3, "stride": 1}],
                             "activation": "relu", "norm": "none", "dropout": 0.0}),
           ModelSpec("no-such-space", {}),
           ModelSpec("cnn", SMALL_CNN.arch, {"optimizer": "rmsprop"})]
    for spec in bad:
        t = run_trial(TrialRequest(spec, 1.0), ds, device="cpu")
        assert t.status == "failed" and t.val_accuracy == 0.0 and t.error
    assert "filters" in run_trial(TrialRequest(bad[0], 1.0), ds).error
    assert "no-such-space" in run_trial(TrialRequest(bad[1], 1.0), ds).error


def test_picklable_for_an_executor():
    fn = partial(run_trial, dataset=synthetic((1, 8, 8)), device="cpu")
    fn2 = pickle.loads(pickle.dumps(fn))
    trials = SerialExecutor().map(fn2, [TrialRequest(SMALL_CNN, 0.5, s) for s in range(2)])
    assert [t.seed for t in trials] == [0, 1] and all(t.status == "ok" for t in trials)
    assert pickle.loads(pickle.dumps(trials[0])).to_dict() == trials[0].to_dict()


@pytest.mark.parametrize("backend", [RandomSearch(), Hyperband(eta=3)])
def test_quick_real_search_on_digits(backend):
    ds = digits()
    run = partial(run_trial, dataset=ds, device="cpu")
    task = SearchTask(dataset=ds, budget=SearchBudget(max_trials=3, max_epochs=2.0, min_epochs=0.25),
                      run_trials=lambda reqs: SerialExecutor().map(run, reqs), seed=0)
    res = backend.search(task)
    assert res.best.space == "cnn" and res.best_resource == 2.0
    assert res.best_val_accuracy > 0.5  # chance is 0.1
    assert sum(t.resource for t in res.trials) <= 3 * 2.0 + 1e-9
