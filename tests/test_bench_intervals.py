"""The benchmark's intervals (trautoml.bench.intervals): coverage on synthetic streams with a known TRE and cost
ratio, paired differences that see a real gap and not a null one, and the noise band of standalone seeds."""
from __future__ import annotations

import numpy as np
import pytest

from trautoml.bench.intervals import (Interval, paired_ratio_difference, paired_tre_difference,
                                      ratio_interval, tre_interval)

TRUE_TRE = 0.08


def synthetic_rel(rng, orders=3, datasets=14, tre=TRUE_TRE, dataset_sd=0.15, order_sd=0.05):
    """Relative errors of a stream drawn from a population of datasets whose mean relative error is ``tre``: a
    dataset effect (which datasets the stream holds) plus an order-by-dataset effect (how the order went)."""
    effect = rng.normal(tre, dataset_sd, size=datasets)
    return effect + rng.normal(0, order_sd, size=(orders, datasets))


@pytest.mark.parametrize("orders", [1, 3])
def test_tre_interval_covers_the_true_tre_at_about_its_nominal_rate(orders):
    rng = np.random.default_rng(orders)
    reps = 300
    hits = 0  # one interval per replication, each on its own stream
    for i in range(reps):
        iv = tre_interval(synthetic_rel(rng, orders=orders), draws=400, seed=i)
        hits += iv.low <= TRUE_TRE <= iv.high
    # nominal 0.95; a percentile bootstrap on 14 datasets runs a little short (≈ 0.92); 300 reps: sd 0.013
    assert 0.89 <= hits / reps <= 0.99, hits / reps


def test_cost_ratio_interval_covers_the_true_ratio():
    rng = np.random.default_rng(7)
    hits, reps = 0, 200
    for i in range(reps):
        ref = rng.uniform(50, 150, size=14)                       # each dataset's standalone cost
        # a method paying 0.4 of standalone on average, dataset by dataset noisy, the same in every order
        cost = np.tile(ref * rng.normal(0.4, 0.15, size=14).clip(0.01), (3, 1))
        iv = ratio_interval(cost, ref, draws=400, seed=i)
        hits += iv.low <= 0.4 <= iv.high
    assert 0.88 <= hits / reps <= 0.995, hits / reps


def test_paired_difference_sees_a_real_gap_and_not_a_null_one():
    rng = np.random.default_rng(3)
    base = synthetic_rel(rng)
    # a second row 0.1 worse on every dataset, plus a little noise of its own: a real gap
    worse = base + 0.1 + rng.normal(0, 0.02, size=base.shape)
    gap = paired_tre_difference(base, worse)
    assert gap.excludes_zero_below() and gap.value == pytest.approx(-0.1, abs=0.02)
    # unpaired, the two TRE intervals overlap: the datasets' shared spread hides the gap
    assert not tre_interval(base).disjoint(tre_interval(worse))
    # a row equal to the base up to noise is not "better"
    same = base + rng.normal(0, 0.02, size=base.shape)
    assert not paired_tre_difference(base, same).excludes_zero_below()
    assert not paired_tre_difference(same, base).excludes_zero_below()


def test_paired_cost_difference():
    rng = np.random.default_rng(4)
    ref = rng.uniform(50, 150, size=12)
    cheap, dear = np.tile(ref * 0.4, (3, 1)), np.tile(ref * 0.6, (3, 1))
    diff = paired_ratio_difference(cheap, dear, ref)
    assert diff.value == pytest.approx(-0.2) and diff.excludes_zero_below()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="orders × datasets"):
        tre_interval(np.ones(5))
    with pytest.raises(ValueError, match="one positive cost per dataset"):
        ratio_interval(np.ones((2, 3)), np.ones(4))
    assert str(Interval(0.1, 0.0, 0.2)) == "0.100 [0.000, 0.200]"
