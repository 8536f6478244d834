"""The syne-tune peer backend (``synetune-zeroshot``): it keeps the backend contract, maps every configuration to a
valid ``cnn`` spec, carries its evaluations from one task to the next, and that transfer finds good configurations
sooner on tasks that share an optimum. Skipped where the ``peers`` extra is not installed."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from trautoml.search import SearchBudget, SearchTask, Trial
from trautoml.testing import check_backend, check_model_space, tiny_dataset

pytest.importorskip("syne_tune", reason="the peers extra (syne-tune) is not installed: pip install -e '.[peers]'")

from search_backends.synetune_zeroshot import ZeroShotSearch, flat_space, to_spec


def test_it_keeps_the_backend_contract():
    check_model_space(check_backend(ZeroShotSearch, budget=SearchBudget(max_trials=6, max_epochs=1.0)).best)


def test_every_flat_configuration_is_a_valid_cnn_spec():
    rng = np.random.RandomState(0)
    space = flat_space()
    for _ in range(20):
        spec = to_spec({k: v.sample(random_state=rng) for k, v in space.items()})
        assert spec.space == "cnn"
        check_model_space(spec)


def test_a_missing_syne_tune_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "syne_tune", None)
    with pytest.raises(ImportError, match=r"\.\[peers\]"):
        ZeroShotSearch()


def _shared_optimum(requests) -> list[Trial]:
    """Every task has its optimum at 2 convs of 48 filters with max pooling, whatever else the spec says."""
    out = []
    for r in requests:
        convs = [layer for layer in r.spec.arch["layers"] if layer["type"] == "conv"]
        pools = [layer for layer in r.spec.arch["layers"] if layer["type"] == "pool"]
        acc = (0.9 - 0.15 * abs(len(convs) - 2) - 0.004 * abs(convs[0]["filters"] - 48)
               - (0.0 if pools and pools[0]["op"] == "max" else 0.1))
        out.append(Trial(r.spec, r.resource, r.seed, acc, acc, 0.01))
    return out


@pytest.mark.slow  # syne-tune fits an xgboost surrogate per earlier task over 10,000 candidates: ~10 s a search
def test_transfer_finds_a_shared_optimum_sooner_than_the_first_task():
    firsts = []
    with tempfile.TemporaryDirectory() as state:
        for k in range(4):
            task = SearchTask(dataset=tiny_dataset(), budget=SearchBudget(max_trials=12, max_epochs=1.0),
                              run_trials=_shared_optimum, seed=k, task_id=f"task{k}", state_dir=Path(state))
            result = ZeroShotSearch().search(task)
            assert result.info["earlier_tasks"] == k  # the history grows by one task per search
            firsts.append(np.mean([t.val_accuracy for t in result.trials[:4]]))
    # random proposals on the first task; transferred ones after three earlier tasks
    assert firsts[3] > firsts[0] + 0.05, firsts
