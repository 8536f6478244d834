"""Behrens–Fisher test (Scheffé's solution): size under H0 with unequal covariances, power, invariance, edge cases."""
import numpy as np
import pytest
from scipy import stats

from trautoml.grouping import BFTestResult, behrens_fisher_test, power, trials_for_power
from trautoml.grouping.bftest import paired_test, two_look_level, two_look_test

pytestmark = pytest.mark.filterwarnings("error")

ALPHA = 0.05
DRAWS = 4000
TOL = 4 * np.sqrt(ALPHA * (1 - ALPHA) / DRAWS)   # 4 binomial sd ≈ 0.0138


def unequal_covariances(rng, b, ratio):
    """Σ1 a random full matrix; Σ2 a differently rotated one with a spread of scales, ``ratio`` times as large."""
    a = rng.normal(size=(b, b))
    s1 = (a @ a.T / b + 0.1 * np.eye(b)) * 0.01 ** 2
    q, _ = np.linalg.qr(rng.normal(size=(b, b)))
    s2 = q @ np.diag(np.linspace(0.5, 2.0, b) ** 2) @ q.T * ratio * 0.01 ** 2
    return np.linalg.cholesky(s1), np.linalg.cholesky(s2)


def rejection_rate(test, b, n1, n2, cov_ratio, shift=0.0, draws=DRAWS, seed=0):
    rng = np.random.default_rng(seed)
    l1, l2 = unequal_covariances(rng, b, cov_ratio)
    mu = rng.uniform(0.3, 0.8, size=b)
    rejected = 0
    for i in range(draws):
        x = mu + shift * 0.01 + rng.normal(size=(n1, b)) @ l1.T
        y = mu + rng.normal(size=(n2, b)) @ l2.T
        rejected += test(x, y, i)
    return rejected / draws


def scheffe(x, y, i):
    return behrens_fisher_test(x, y, ALPHA, seed=i).reject


def pooled_hotelling(x, y, i):
    """The textbook two-sample T² with a pooled covariance: valid only for equal covariances (negative control)."""
    n1, n2, b = len(x), len(y), x.shape[1]
    d = x.mean(0) - y.mean(0)
    s = ((x - x.mean(0)).T @ (x - x.mean(0)) + (y - y.mean(0)).T @ (y - y.mean(0))) / (n1 + n2 - 2)
    t2 = n1 * n2 / (n1 + n2) * d @ np.linalg.solve(s, d)
    f = (n1 + n2 - b - 1) / (b * (n1 + n2 - 2)) * t2
    return stats.f.sf(f, b, n1 + n2 - b - 1) < ALPHA


@pytest.mark.parametrize("b,n1", [(6, 8), (3, 10)])
@pytest.mark.parametrize("n2_factor", [1, 3])
@pytest.mark.parametrize("cov_ratio", [0.05, 20.0])
def test_size_under_h0_with_unequal_covariances(b, n1, n2_factor, cov_ratio):
    rate = rejection_rate(scheffe, b, n1, n2_factor * n1, cov_ratio, draws=DRAWS // 2 if b == 3 else DRAWS)
    tol = TOL * (np.sqrt(2) if b == 3 else 1)
    assert abs(rate - ALPHA) <= tol, f"rejection rate {rate:.4f} under H0, expected {ALPHA} ± {tol:.4f}"


def test_size_check_catches_a_test_that_ignores_unequal_covariances():
    # Same check, a test that assumes equal covariances: the small sample has the large covariance → too many
    # rejections. Shows the size check above can fail.
    rate = rejection_rate(pooled_hotelling, 6, 8, 24, 0.05)
    assert rate - ALPHA > TOL


def test_power_rises_with_the_mean_shift():
    rates = [rejection_rate(scheffe, 6, 8, 16, 1.0, shift=s, draws=500, seed=1) for s in (0.0, 1.0, 2.0, 4.0)]
    assert all(b > a for a, b in zip(rates, rates[1:])), rates
    assert rates[0] < 0.1 and rates[-1] > 0.8, rates


def test_invariant_to_adding_the_same_vector_to_both_samples():
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 0.02, size=(8, 6))
    y = rng.normal(0.52, 0.03, size=(24, 6))
    c = rng.uniform(-0.4, 0.4, size=6)
    r0 = behrens_fisher_test(x, y, 0.05, seed=7)
    r1 = behrens_fisher_test(x + c, y + c, 0.05, seed=7)
    assert r1.F == pytest.approx(r0.F, rel=1e-6) and r1.p_value == pytest.approx(r0.p_value, rel=1e-6)


def test_statistic_matches_the_formula_written_out():
    rng = np.random.default_rng(4)
    n1, n2, b = 9, 20, 4
    x = rng.normal(0.5, 0.02, size=(n1, b))
    y = rng.normal(0.5, 0.03, size=(n2, b))
    res = behrens_fisher_test(x, y, 0.05, seed=11)
    ys = y[np.random.default_rng(11).choice(n2, size=n1, replace=False)]
    z = np.array([x[i] - np.sqrt(n1 / n2) * ys[i] + ys.sum(0) / np.sqrt(n1 * n2) - y.sum(0) / n2 for i in range(n1)])
    zbar = z.mean(0)
    a = sum(np.outer(zi - zbar, zi - zbar) for zi in z)
    f = (n1 - b) / b * n1 * zbar @ np.linalg.inv(a) @ zbar
    assert res.F == pytest.approx(f, rel=1e-6)
    assert res.df == (b, n1 - b) and (res.n1, res.n2) == (n1, n2) and not res.swapped
    assert res.p_value == pytest.approx(stats.f.sf(f, b, n1 - b), rel=1e-6)
    assert isinstance(res, BFTestResult) and res.alpha == 0.05


def test_roles_swap_when_x_is_the_larger_sample():
    rng = np.random.default_rng(5)
    x = rng.normal(0.5, 0.02, size=(24, 6))
    y = rng.normal(0.5, 0.02, size=(8, 6))
    res = behrens_fisher_test(x, y, 0.05, seed=2)
    assert res.swapped and (res.n1, res.n2) == (8, 24) and res.df == (6, 2)
    assert res.F == behrens_fisher_test(y, x, 0.05, seed=2).F


@pytest.mark.parametrize("n1,n2", [(6, 20), (5, 5), (20, 6)])
def test_too_few_trials_are_refused(n1, n2):
    x, y = np.full((n1, 6), 0.5), np.full((n2, 6), 0.5)
    with pytest.raises(ValueError, match="more trials than features"):
        behrens_fisher_test(x, y, 0.05)


def test_bad_input_is_refused():
    x = np.full((8, 3), 0.5)
    with pytest.raises(ValueError, match="same number of features"):
        behrens_fisher_test(x, np.full((8, 4), 0.5), 0.05)
    with pytest.raises(ValueError, match="NaN"):
        behrens_fisher_test(np.where(np.eye(8, 3) > 0, np.nan, x), x, 0.05)
    with pytest.raises(ValueError, match="2-D"):
        behrens_fisher_test(x[0], x, 0.05)


def test_identical_trials_with_equal_means_are_kept():
    x = np.full((8, 6), 0.7)
    res = behrens_fisher_test(x, np.full((16, 6), 0.7), 0.005)
    assert res.F < 1e-12 and res.p_value == pytest.approx(1.0) and not res.reject   # F = 0 up to rounding


def test_identical_trials_with_different_means_are_rejected():
    x = np.full((8, 6), 0.7)
    y = np.full((16, 6), 0.7)
    y[:, 2] = 0.701                    # one landmarker, a tenth of a point apart, no spread at all
    res = behrens_fisher_test(x, y, 0.005)
    assert np.isfinite(res.F) and res.reject and res.p_value < 1e-4


def test_a_constant_landmarker_does_not_break_the_test():
    rng = np.random.default_rng(6)
    x = rng.normal(0.6, 0.02, size=(8, 6))
    y = rng.normal(0.6, 0.02, size=(16, 6))
    x[:, 0] = y[:, 0] = 0.1            # a landmarker stuck at chance on both datasets
    res = behrens_fisher_test(x, y, 0.005)
    assert np.isfinite(res.F) and 0.0 < res.p_value <= 1.0
    x[:, 0] = 0.2                      # ... at different chance levels: a certain difference
    assert behrens_fisher_test(x, y, 0.005).reject


def test_seed_fixes_the_random_order_and_a_generator_is_advanced():
    rng = np.random.default_rng(8)
    x, y = rng.normal(0.5, 0.02, size=(8, 6)), rng.normal(0.5, 0.02, size=(40, 6))
    assert behrens_fisher_test(x, y, 0.05, seed=3) == behrens_fisher_test(x, y, 0.05, seed=3)
    gen = np.random.default_rng(0)
    assert behrens_fisher_test(x, y, 0.05, seed=gen).F != behrens_fisher_test(x, y, 0.05, seed=gen).F
    res = behrens_fisher_test(x, y, 0.05, seed=3)
    assert BFTestResult.from_dict(res.to_dict()) == res
    assert "F(6,2)" in res.explain() and "α = 0.05" in res.explain()


@pytest.mark.parametrize("b,n1,n2,distance", [(4, 10, 10, 1.5), (6, 8, 8, 3.0), (3, 6, 30, 1.0)])
def test_power_formula_matches_simulated_rejection_rates(b, n1, n2, distance):
    """Means Δ Mahalanobis units apart under one random covariance: the rejection rate of the test itself agrees
    with the noncentral-F power within 4 binomial standard deviations."""
    rng = np.random.default_rng(b * 100 + n1)
    a = rng.normal(size=(b, b))
    cov = (a @ a.T / b + 0.1 * np.eye(b)) * 0.01 ** 2
    chol = np.linalg.cholesky(cov)
    direction = rng.normal(size=b)
    shift = direction * distance / np.sqrt(direction @ np.linalg.solve(cov, direction))  # δᵀΣ⁻¹δ = Δ²
    mu = rng.uniform(0.3, 0.8, size=b)
    draws, alpha = 3000, 0.05
    rejected = sum(behrens_fisher_test(mu + shift + rng.normal(size=(n1, b)) @ chol.T,
                                       mu + rng.normal(size=(n2, b)) @ chol.T, alpha, seed=i).reject
                   for i in range(draws))
    expected = power(b, n1, n2, distance, alpha)
    assert abs(rejected / draws - expected) < 4 * np.sqrt(expected * (1 - expected) / draws), (rejected, expected)


def test_power_is_the_size_at_no_difference_and_grows_with_trials_and_distance():
    assert power(6, 8, 8, 0.0, 0.05) == 0.05
    assert power(4, 10, 10, 2.0, 0.05) < power(4, 16, 16, 2.0, 0.05) < power(4, 16, 16, 3.0, 0.05)
    assert power(4, 10, 10, 2.0, 0.05) < power(4, 10, 100, 2.0, 0.05)  # a larger group is known better
    with pytest.raises(ValueError, match="B < n1"):
        power(6, 6, 8, 1.0, 0.05)


def test_trials_for_power_is_the_smallest_sufficient_t():
    t = trials_for_power(4, 2.0, 0.005)
    assert power(4, t, t, 2.0, 0.005) >= 0.8 > power(4, t - 1, t - 1, 2.0, 0.005)
    assert trials_for_power(4, 2.0, 0.005, group_trials=200) < t  # against a large group fewer trials suffice
    with pytest.raises(ValueError, match="no T"):
        trials_for_power(6, 0.01, 0.005, max_trials=50)


# ---- the paired form (eq. 15 with the trial order kept)
def paired_draws(rng, b, t, members, shift, l_new, l_members, l_shared):
    """A new dataset and a group of ``members`` datasets, T trials each; trial t shares a deviation (``l_shared``)
    across all of them, as the landmarkers' seeds and images do. The members' means differ; the new dataset's mean is
    their average plus ``shift`` (0 = H0)."""
    mu_members = rng.uniform(0.3, 0.8, size=(members, b))
    shared = rng.normal(size=(t, b)) @ l_shared.T
    x = mu_members.mean(0) + shift + shared + rng.normal(size=(t, b)) @ l_new.T
    ys = [m + shared + rng.normal(size=(t, b)) @ l_m.T for m, l_m in zip(mu_members, l_members)]
    return x, np.mean(ys, axis=0)


@pytest.mark.parametrize("b,t,members", [(4, 10, 1), (4, 10, 3), (6, 8, 2)])
def test_paired_size_stays_at_alpha_with_unequal_covariances_and_correlated_trials(b, t, members):
    # the bar: within ±1.3 points of α = 0.05 over 2,500 draws (3 binomial sd), unequal covariances
    rng = np.random.default_rng(7)
    l_new, l_first = unequal_covariances(rng, b, 20.0)
    l_members = [l_first * (1 + k) for k in range(members)]
    l_shared = np.linalg.cholesky(np.eye(b) * 0.006 ** 2 + 0.003 ** 2)
    rejected = sum(paired_test(*paired_draws(rng, b, t, members, 0.0, l_new, l_members, l_shared), ALPHA).reject
                   for _ in range(2500))
    assert abs(rejected / 2500 - ALPHA) <= 0.013, rejected / 2500


def test_paired_test_has_more_power_than_a_random_order_when_trials_correlate():
    rng = np.random.default_rng(8)
    b, t = 4, 10
    own = np.linalg.cholesky(np.eye(b) * 0.02 ** 2)
    shared = np.linalg.cholesky(np.eye(b) * 0.02 ** 2)   # half of each trial's variance is trial t's own
    hits = np.zeros(2)
    for i in range(600):
        x, ybar = paired_draws(rng, b, t, 1, 0.02, own, [own], shared)
        hits += [paired_test(x, ybar, ALPHA).reject, behrens_fisher_test(x, ybar, ALPHA, seed=i).reject]
    assert hits[0] / 600 > hits[1] / 600 + 0.2, hits / 600


def test_paper_preset_has_power_at_three_trial_sd():
    # the paper preset's B and T (trautoml.presets) against a one-member group, Δ = 3 trial-sd, no correlation help
    from trautoml.presets import get_preset

    p = get_preset("paper")
    b, t = p.n_models, p.n_trials
    rng = np.random.default_rng(9)
    eye = np.eye(b)
    rejected = 0
    for _ in range(2000):
        u = rng.normal(size=b)
        x, ybar = paired_draws(rng, b, t, 1, 3.0 * u / np.linalg.norm(u), eye, [eye], 0 * eye)
        rejected += paired_test(x, ybar, p.alpha).reject
    assert rejected / 2000 >= 0.8, rejected / 2000
    assert power(b, t, t, 3.0, p.alpha) >= 0.8


def test_paired_test_refuses_unpaired_shapes_and_too_few_trials():
    with pytest.raises(ValueError, match="one shape"):
        paired_test(np.zeros((8, 3)), np.zeros((9, 3)), ALPHA)
    with pytest.raises(ValueError, match="more trials than features"):
        paired_test(np.zeros((3, 3)), np.zeros((3, 3)), ALPHA)


# -- two looks (profiles that stop early) ---------------------------------------------------------------------------
@pytest.mark.parametrize("b,t,first,members", [(4, 10, 6, 1), (4, 10, 6, 3), (6, 15, 10, 2)])
def test_two_look_size_stays_at_alpha_with_unequal_covariances_and_correlated_trials(b, t, first, members):
    # the bar for the sequential procedure: within ±1.3 points of α = 0.05 over 2,500 draws
    rng = np.random.default_rng(17)
    l_new, l_first = unequal_covariances(rng, b, 20.0)
    l_members = [l_first * (1 + k) for k in range(members)]
    l_shared = np.linalg.cholesky(np.eye(b) * 0.006 ** 2 + 0.003 ** 2)
    results = [two_look_test(*paired_draws(rng, b, t, members, 0.0, l_new, l_members, l_shared), first, ALPHA)
               for _ in range(2500)]
    rejected = sum(r.reject for r in results)
    assert abs(rejected / 2500 - ALPHA) <= 0.013, rejected / 2500
    # and most of them could have stopped at the first look: p₁ > futility there (P = 0.8 under H0)
    stopped = sum(r.first_p > r.futility for r in results) / 2500
    assert 0.77 <= stopped <= 0.83, stopped


def test_two_looks_keep_the_power_of_one_look():
    # the small preset's looks (B 4, first 6 of T 10) at its α: rejection rates at 3 sd of the paired difference
    rng = np.random.default_rng(18)
    b, t, eye = 4, 10, np.eye(4)
    hits = np.zeros(2)
    for _ in range(1500):
        u = rng.normal(size=b)
        x, ybar = paired_draws(rng, b, t, 1, 3.0 * np.sqrt(2) * u / np.linalg.norm(u), eye, [eye], 0 * eye)
        hits += [two_look_test(x, ybar, 6, 0.005).reject, paired_test(x, ybar, 0.005).reject]
    rates = hits / 1500
    assert rates[1] > 0.85 and abs(rates[0] - rates[1]) <= 0.03, rates


def test_two_looks_reject_only_past_both_bounds():
    rng = np.random.default_rng(19)
    for i in range(300):
        x, ybar = rng.normal(size=(10, 4)), rng.normal(size=(10, 4)) + 0.3 * (i % 3)
        r = two_look_test(x, ybar, 6, 0.05)
        assert r.reject == (r.first_p <= r.futility and r.p_value < r.level)
        assert r.first_p == pytest.approx(paired_test(x[:6], ybar[:6], 0.05).p_value)
        assert r.p_value == pytest.approx(paired_test(x, ybar, 0.05).p_value)
    assert "first look (6 trials)" in r.explain() and "α₂" in r.explain()
    assert BFTestResult.from_dict(r.to_dict()) == r


def test_two_look_level_is_fixed_and_a_first_look_outside_b_to_n_is_one_look():
    assert two_look_level(4, 6, 10, 0.05, 0.2) == two_look_level.__wrapped__(4, 6, 10, 0.05, 0.2)
    # binding futility: fewer datasets reach the second look, so its level can exceed α
    assert two_look_level(4, 6, 10, 0.05, 0.2) > 0.05
    x, ybar = np.random.default_rng(0).normal(size=(2, 10, 4))
    for first in (4, 10, 12):
        assert two_look_test(x, ybar, first, 0.05) == paired_test(x, ybar, 0.05)
    with pytest.raises(ValueError, match="B < first < n"):
        two_look_level(4, 4, 10, 0.05, 0.2)
    with pytest.raises(ValueError, match="futility"):
        two_look_test(x, ybar, 6, 0.05, futility=1.0)
