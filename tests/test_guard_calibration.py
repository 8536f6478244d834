"""The accuracy guard states its false-alarm rate (`trautoml.decide.GUARD_ALPHA`): checked by simulation.

Streams are drawn from the guard's own model with known coefficients: n searched datasets whose skill is
a + b·m + e (m their landmarkers' mean skill, e ~ N(0, σ²)); a group of 1–3 members; a joining dataset of the same
law. Such a reuse is as good as the profile predicts, so the guard must escalate it at GUARD_ALPHA, whatever n is.
"""
from __future__ import annotations

import numpy as np
import pytest

from trautoml import decide
from trautoml.decide import AccuracyPoint

A, B, SIGMA = 0.2, 0.6, 0.03
DRAWS = 20_000
#: 2.81 binomial sd at GUARD_ALPHA (a two-sided 0.5 % band) for DRAWS draws.
BAND = 2.81 * (decide.GUARD_ALPHA * (1 - decide.GUARD_ALPHA) / DRAWS) ** 0.5


def _points(rng, n):
    m = rng.uniform(0.3, 0.9, n)
    k = A + B * m + rng.normal(0.0, SIGMA, n)
    return [AccuracyPoint(float(x), None, float(y)) for x, y in zip(m, k)]


def _alarm_rate(seed: int, members_in_fit: bool, rule) -> float:
    rng = np.random.default_rng(seed)
    fired = 0
    for i in range(DRAWS):
        searched = _points(rng, (4, 6, 10)[i % 3])
        n_members = int(rng.integers(1, 4))
        members = searched[:n_members] if members_in_fit else _points(rng, n_members)
        new = _points(rng, 1)[0]
        pred = decide.predict_accuracy(new.level, None, members, searched)
        fired += rule(new.val, pred)
    return fired / DRAWS


def _shipped(val, pred) -> bool:
    return decide.check_reuse(val, pred, 0.0).escalate


def test_the_guard_escalates_a_good_reuse_at_its_stated_rate():
    """Anchors drawn beside the fit (the interval's assumption): the rate is GUARD_ALPHA within the band."""
    rate = _alarm_rate(1, members_in_fit=False, rule=_shipped)
    assert abs(rate - decide.GUARD_ALPHA) < BAND, rate


def test_the_guard_is_no_more_alarmed_where_the_founder_is_in_the_fit():
    """In the product the founder is one of the searched datasets the slope is fitted on: its error is partly
    fitted away, so the interval is conservative there (measured 0.018–0.020), never above the stated rate."""
    rate = _alarm_rate(2, members_in_fit=True, rule=_shipped)
    assert rate < decide.GUARD_ALPHA + BAND, rate


def test_negative_control_two_sigma_without_the_fit_uncertainty_is_outside_the_band():
    """The first version's rule, 2σ with σ estimated on n − 2 degrees of freedom and no term for the slope or the
    anchors, escalates good reuses 3–6 times as often as stated: the test can tell a miscalibrated guard."""
    rate = _alarm_rate(3, members_in_fit=False, rule=lambda val, pred: val < pred.value - 2 * pred.sigma)
    assert rate > decide.GUARD_ALPHA + BAND, rate


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_the_prediction_interval_widens_with_the_distance_from_the_anchors(shift):
    rng = np.random.default_rng(4)
    searched = _points(rng, 6)
    member = [searched[0]]
    near = decide.predict_accuracy(member[0].level, None, member, searched)
    far = decide.predict_accuracy(member[0].level + shift, None, member, searched)
    assert near.spread == pytest.approx(2 ** 0.5) and near.df == 4
    assert (far.spread > near.spread) == (shift > 0)
    assert decide.guard_tolerance(far, 0.0) == pytest.approx(
        __import__("scipy").stats.t.ppf(1 - decide.GUARD_ALPHA, 4) * far.sigma * far.spread)
