"""A profile that stops at its first look keeps its promise (`MarkovBFGrouper.settled`, paper 002 §2.3 made
adaptive): a stopped dataset's decision differs from the one its full profile would get at most at the stated rate,
SETTLE_FLIPS / SETTLE_DRAWS = 1 %, at the shipped α = 0.005 — measured by simulation where it is hardest, new
datasets between two groups."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from trautoml.grouping import markov
from trautoml.grouping.markov import MarkovBFGrouper

B, T, FIRST = 4, 10, 6
SD = 0.02                     # a landmarker trial's sd
# two groups 1.5 trial-sd apart in every landmarker: close enough that the guard keeps a dataset between them at its
# first look, far enough that the grouper keeps them apart
CENTRES = np.array([[0.50, 0.60, 0.55, 0.70], [0.53, 0.63, 0.58, 0.73]])
DRAWS = 20_000
STATED = markov.SETTLE_FLIPS / markov.SETTLE_DRAWS


def _profile(rng, centre):
    return centre + SD * rng.standard_normal((T, B))


def _grouper(rng) -> MarkovBFGrouper:
    g = MarkovBFGrouper(alpha=0.005, K=100, seed=0, first_look=FIRST)
    for centre in CENTRES:
        for _ in range(2):
            g.observe(_profile(rng, centre))
    assert g.n_groups == 2
    return g


def flip_rate(draws: int, seed: int = 0, where: tuple[float, float] = (0.4, 0.6)) -> tuple[float, int]:
    """(share of the stopped datasets whose full profile is grouped otherwise, stopped datasets): each draw a new
    dataset on the segment between the two groups, u ~ U(``where``) of the way (0.4–0.6: at the boundary)."""
    rng = np.random.default_rng(seed)
    base = _grouper(rng)
    stopped = flipped = 0
    for _ in range(draws):
        u = rng.uniform(*where)
        X = _profile(rng, CENTRES[0] + u * (CENTRES[1] - CENTRES[0]))
        if not base.settled(X[:FIRST]):
            continue
        stopped += 1
        early = copy.deepcopy(base).observe(X[:FIRST])
        full = copy.deepcopy(base).observe(X)
        flipped += early.group != full.group
    return flipped / max(1, stopped), stopped


def _gaussian_map_holds(self, X, k, full):
    """The first version: draws from N(0, C·(1/n − 1/full)) with the first look's own covariance C."""
    n = len(X)
    if n >= full:
        return True
    x = X.mean(axis=0)
    dev = X - x
    cov = dev.T @ dev / (n - 1) * (1.0 / n - 1.0 / full)
    cov[np.diag_indices(self.dim)] += 1e-12
    draws = np.random.default_rng(0).standard_normal((markov.SETTLE_DRAWS, self.dim)) @ np.linalg.cholesky(cov).T
    flips = sum(int(np.argmax(self._log_posterior(x + d)[0])) != k for d in draws)
    return flips <= markov.SETTLE_FLIPS


@pytest.mark.slow
def test_a_stopped_profile_is_grouped_as_its_full_profile_but_for_the_stated_rate():
    """Measured (20,000 draws): 1.09 % of 2,943 stopped at the boundary; the first version 2.44 % of 3,729."""
    rate, stopped = flip_rate(DRAWS)
    band = 2.81 * (STATED * (1 - STATED) / stopped) ** 0.5
    assert stopped > DRAWS // 10
    assert rate <= STATED + band, (rate, stopped)


@pytest.mark.slow
def test_the_group_s_own_datasets_still_stop_at_the_first_look():
    """What the first look saves is kept: datasets drawn at the group (measured: 79 %, as before the change)."""
    _, stopped = flip_rate(2000, seed=1, where=(0.0, 0.1))
    assert stopped > 0.6 * 2000


@pytest.mark.slow
def test_negative_control_draws_that_take_the_first_looks_covariance_as_known_break_the_promise(monkeypatch):
    monkeypatch.setattr(MarkovBFGrouper, "_map_holds", _gaussian_map_holds)
    rate, stopped = flip_rate(DRAWS)
    band = 2.81 * (STATED * (1 - STATED) / stopped) ** 0.5
    assert rate > STATED + band, (rate, stopped)
