"""Slow toy checks of the transfer controllers (run with ``pytest -m slow``)."""
import math

import pytest

from search_backends.transfer.toys import run_double_xor, run_transfer_toy


@pytest.mark.slow
def test_transformer_reaches_the_double_xor_threshold_for_most_seeds():
    """Borsos et al. §4.1: moving average (50) of the reward >= 0.9 within 2,000 samples, paper settings."""
    runs = [run_double_xor("transformer", seed, budget=2000) for seed in range(5)]
    assert sum(math.isfinite(r) for r in runs) >= 4, runs


@pytest.mark.slow
def test_lstm_reaches_the_double_xor_threshold_for_most_seeds():
    runs = [run_double_xor("lstm", seed, budget=2000) for seed in range(5)]
    assert sum(math.isfinite(r) for r in runs) >= 4, runs


@pytest.mark.slow
@pytest.mark.parametrize("cross_space", [False, True])
def test_transfer_toy_runs_and_transfer_reaches_the_threshold(cross_space):
    out = run_transfer_toy("transformer", 0, cross_space=cross_space, pretrain=600, budget=300)
    assert set(out) == {"transfer", "scratch", "random"} and all(len(v) == 2 for v in out.values())
    assert min(out["transfer"]) < math.inf
