"""Size (Type-I error) of the grouping guard at the shipped α = 0.005 (paper 002 §2.3, eq. 15–16), tight enough to
see a 20 % inflation, with a negative control per procedure that the same band must reject.

What is checked, each under H0 with unequal covariances (and, for the paired forms, a trial deviation shared by
trial t across datasets, as the landmarkers' seeds and images give):

* `behrens_fisher_test` (Scheffé's solution, eq. 15 with Y in a random order, eq. 16's F against F(B, N1 − B));
* `paired_test` (eq. 15 with the trial order kept: Y = the members' per-trial averages, as §2.3 defines Y);
* `two_look_test` (the paired test in two looks with the calibrated second-look level `two_look_level`; paper 002
  §2.3 keeps T fixed, the two looks are ours).

How. Calling the public functions 400,000 times costs 12–30 s each, so the size is measured on the batched core the
functions reduce to: every one of the three statistics is Hotelling's one-sample T² on differences z (eq. 16 is T²
on eq. 15's z_i, scaled), i.e. `bftest._hotelling_p`, the batch routine `two_look_level` itself calibrates α₂ with.
The z are formed here, batched over draws, exactly as eq. 15 forms them. A separate check per procedure then runs
the public function on 20,000 further H0 draws and asserts that its p-values (both looks' for `two_look_test`) and
decisions are the batched core's on the same inputs, and that its own rejection rate lies in a (coarser) band: the
size measured on the core is the size of the public path.

The band. Rejections are binomial: at N draws the rate has sd √(α(1 − α)/N). A rate passes when it is within
K_SD = 4 sd of α (a correct procedure fails that with probability 6e-5; the seeds are fixed, so the test is
deterministic). With N = 400,000 pooled draws, sd = 1.12e-4 and the band is α ± 4.46e-4 (±8.9 % of α). A procedure
of size 1.2·α = 0.006 (sd 1.22e-4) lies 4.5 of its sd beyond the band's edge: a 20 % inflation is caught with
probability > 0.99999; 13.7 % is caught with probability ≥ 0.977 (its rate is 2 sd beyond the edge); deflation
alike. For `two_look_test` the calibrated α₂ carries its own Monte Carlo error (`CALIBRATION_DRAWS` = 400,000
draws, the same sd again), so its band is 4·√2 sd = ±6.3e-4 (±12.6 %): a 20 % inflation is still 3.0 sd beyond
the edge (caught with probability 0.999), 17.5 % with probability ≥ 0.977. Each configuration alone (100,000 or
200,000 draws) must also lie within its own 4-sd band (±8.9e-4 at 100,000: a 40 % inflation of one
configuration that pooling would dilute).

The negative controls (each must lie outside the same band, on the same draws):

* every procedure at 1.2·α (for `two_look_test`: α₂ calibrated for 1.2·α), the 20 % inflation the band must see;
* `behrens_fisher_test`: the textbook two-sample Hotelling T² with a pooled covariance (valid for equal
  covariances only);
* `paired_test`: eq. 16's F with its denominator degrees of freedom off by one, F(B, n − B + 1), a plausible slip
  (exact size 0.0067–0.022 for the configurations here);
* `two_look_test`: two looks each at α, no calibration (reject if p₁ < α or p₂ < α).

Runtime: 22 s for the whole file on one core (measured: `taskset -c 0 pytest tests/test_grouping_size.py` with
one BLAS thread, on a 2-core machine at load ≈ 6 from other work; 14 s of CPU), four `two_look_level` calibrations
(≈ 1.2 s each) included. Nothing here is marked slow.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import fdtrc

from trautoml.grouping.bftest import (CALIBRATION_DRAWS, _CALIBRATION_SEED, _hotelling_p, behrens_fisher_test,
                                      paired_test, two_look_level, two_look_test)
from trautoml.presets import get_preset

pytestmark = pytest.mark.filterwarnings("error")

ALPHA = 0.005          # the presets' α (test_the_presets_ship_the_alpha_checked_here)
FUTILITY = 0.2
K_SD = 4
CHUNK = 20_000         # draws simulated at once (memory: ≤ 20,000 × 45 × 6 floats per array)
PUBLIC_DRAWS = 20_000  # draws on which the public function must agree with the batched core


def binomial_sd(p: float, draws: int) -> float:
    return float(np.sqrt(p * (1 - p) / draws))


def band(draws: int, calibration_draws: int = 0) -> float:
    """Half-width of the acceptance band around α: K_SD binomial sd (plus a calibrated level's own error)."""
    var = ALPHA * (1 - ALPHA) / draws
    if calibration_draws:
        var += ALPHA * (1 - ALPHA) / calibration_draws
    return K_SD * float(np.sqrt(var))


def in_band(rate: float, half: float) -> bool:
    return abs(rate - ALPHA) <= half


def assert_same_p(public, core):
    """The public function's p-values are the batched core's up to the ridge `bftest._scheffe_F` adds to A (the core,
    like `two_look_level`'s calibration, has none). The ridge only shrinks F, so p can only grow. Measured on these
    draws: a median relative shift of 1e-7 or less, at most 1.0e-3 where 2 denominator degrees of freedom are left
    (B = 6 on 8 trials; B = 4 on the first look's 6), where A's smallest eigenvalue can come near the ridge's
    absolute part N1·RESOLUTION²; far too little to move a decision (checked separately: they are all equal)."""
    public, core = np.asarray(public, dtype=float), np.asarray(core)
    rel = (public - core) / core
    assert rel.min() >= -1e-9, rel.min()
    assert np.median(rel) < 1e-6 and rel.max() < 1e-2, (np.median(rel), rel.max())


# ---- H0 simulators, batched over draws -----------------------------------------------------------------------------
def unequal_covariances(rng, b, ratio):
    """Cholesky factors of Σ1 (a random full matrix) and Σ2 (differently rotated, a spread of scales, ``ratio``
    times as large); trial-sd about 0.01, as landmarker accuracies. Same construction as test_grouping_bftest."""
    a = rng.normal(size=(b, b))
    s1 = (a @ a.T / b + 0.1 * np.eye(b)) * 0.01 ** 2
    q, _ = np.linalg.qr(rng.normal(size=(b, b)))
    s2 = q @ np.diag(np.linspace(0.5, 2.0, b) ** 2) @ q.T * ratio * 0.01 ** 2
    return np.linalg.cholesky(s1), np.linalg.cholesky(s2)


def bf_h0(seed, b, n1, n2, ratio, draws):
    """Chunks (X, Y) of H0 draws for the unpaired test: X (R × n1 × B) the new dataset's trials, Y (R × n2 × B) all
    the group's trial vectors, one mean, covariances Σ1 and Σ2 (``ratio`` < 1: the small sample has the large
    covariance, where a pooled covariance over-rejects)."""
    rng = np.random.default_rng(seed)
    l1, l2 = unequal_covariances(rng, b, ratio)
    mu = rng.uniform(0.3, 0.8, size=b)
    for start in range(0, draws, CHUNK):
        r = min(CHUNK, draws - start)
        yield mu + rng.standard_normal((r, n1, b)) @ l1.T, mu + rng.standard_normal((r, n2, b)) @ l2.T


def paired_h0(seed, b, t, members, draws):
    """Chunks (X, Ybar) of H0 draws for the paired test: a new dataset and ``members`` datasets of T trials; trial t
    shares a deviation across all of them; the members' means differ, the new dataset's mean is their average; the
    new dataset's covariance, and each member's, differ (as `paired_draws` in test_grouping_bftest, batched)."""
    rng = np.random.default_rng(seed)
    l_new, l_first = unequal_covariances(rng, b, 20.0)
    l_members = [l_first * (1 + k) for k in range(members)]
    l_shared = np.linalg.cholesky(np.eye(b) * 0.006 ** 2 + 0.003 ** 2)
    mu_members = rng.uniform(0.3, 0.8, size=(members, b))
    for start in range(0, draws, CHUNK):
        r = min(CHUNK, draws - start)
        shared = rng.standard_normal((r, t, b)) @ l_shared.T
        x = mu_members.mean(0) + shared + rng.standard_normal((r, t, b)) @ l_new.T
        ybar = np.mean([m + shared + rng.standard_normal((r, t, b)) @ l_m.T for m, l_m in zip(mu_members, l_members)],
                       axis=0)
        yield x, ybar


# ---- the statistics, batched ---------------------------------------------------------------------------------------
def scheffe_p(X, head, Y_total, n2):
    """p-values of eq. 15–16 for a batch: X (R × n1 × B), ``head`` the n1 rows of Y in the random order
    (R × n1 × B), ``Y_total`` the sum of all n2 rows of Y (R × B). z_i = x_i − √(n1/n2)·y_i + Σ_{j≤n1} y_j/√(n1·n2)
    − Σ_{j≤n2} y_j/n2, then F = (n1 − B)/B · n1 · z̄ᵀA⁻¹z̄ ~ F(B, n1 − B): Hotelling's T² on the z_i."""
    n1 = X.shape[1]
    z = X - np.sqrt(n1 / n2) * head + (head.sum(axis=1) / np.sqrt(n1 * n2) - Y_total / n2)[:, None, :]
    return _hotelling_p(z)


def pooled_hotelling_p(X, Y):
    """Negative control: the two-sample Hotelling T² with a pooled covariance, F((n1 + n2 − B − 1)/(B(n1 + n2 − 2))
    T²) ~ F(B, n1 + n2 − B − 1), exact only when both covariances are equal."""
    _, n1, b = X.shape
    n2 = Y.shape[1]
    d = X.mean(axis=1) - Y.mean(axis=1)
    dx, dy = X - X.mean(axis=1, keepdims=True), Y - Y.mean(axis=1, keepdims=True)
    s = (np.einsum("rnb,rnc->rbc", dx, dx) + np.einsum("rnb,rnc->rbc", dy, dy)) / (n1 + n2 - 2)
    t2 = n1 * n2 / (n1 + n2) * np.einsum("rb,rb->r", d, np.linalg.solve(s, d[:, :, None])[:, :, 0])
    return fdtrc(b, n1 + n2 - b - 1, (n1 + n2 - b - 1) / (b * (n1 + n2 - 2)) * t2)


def hotelling_F(z):
    """Eq. 16's F for a batch of differences z (R × n × B)."""
    _, n, b = z.shape
    zbar = z.mean(axis=1)
    d = z - zbar[:, None, :]
    A = np.einsum("rnb,rnc->rbc", d, d)
    return (n - b) / b * n * np.einsum("rb,rb->r", zbar, np.linalg.solve(A, zbar[:, :, None])[:, :, 0])


def assert_size_with_controls(name: str, rates: dict, per_config: dict, draws_each: int) -> None:
    """The first of ``rates`` (pooled over the configurations) lies in its band, each configuration's in its own,
    and every other rate (the negative controls) outside the pooled band: the band has the power it claims."""
    half = band(draws_each * len(per_config))
    ours, *controls = rates.values()
    print(name, rates, per_config, f"band ±{half:.2e}")
    assert in_band(ours, half), (rates, per_config, half)
    assert all(in_band(r, band(draws_each)) for r in per_config.values()), (per_config, band(draws_each))
    assert not any(in_band(c, half) for c in controls), (rates, half)


def test_the_presets_ship_the_alpha_checked_here():
    assert {get_preset(name).alpha for name in ("small", "paper")} == {ALPHA}


# ---- behrens_fisher_test -------------------------------------------------------------------------------------------
# (B, n1, n2, covariance ratio): B 3–6 landmarkers, T = n1 = 8–15 trials (the paper's 8, `paper` 15, `small` 10),
# a group of 1–3 members (n2 = 1–3 × T); ratio 0.05: the new dataset's covariance is the larger, 20: the group's.
BF_CONFIGS = [(6, 15, 45, 0.05), (6, 8, 16, 20.0), (4, 10, 30, 0.05), (3, 12, 12, 20.0)]
BF_DRAWS = 100_000     # per configuration: 400,000 pooled


def test_behrens_fisher_size_at_the_shipped_alpha_with_unequal_covariances():
    """Scheffé's solution (paper 002 §2.3, eq. 15–16) is exact under H0 whatever the two covariances: pooled over
    four preset-like configurations its size at α = 0.005 is within ±8.9 % of α (a 20 % inflation lies outside);
    the same band rejects the pooled-covariance T² and the test itself at 1.2·α."""
    ours, at_12, pooled, per_config = 0, 0, 0, {}
    for k, (b, n1, n2, ratio) in enumerate(BF_CONFIGS):
        hits = 0
        for X, Y in bf_h0(100 + k, b, n1, n2, ratio, BF_DRAWS):
            # the rows of Y are i.i.d., so its first n1 rows are distributed as n1 rows drawn in a random order
            p = scheffe_p(X, Y[:, :n1], Y.sum(axis=1), n2)
            hits += int(np.sum(p < ALPHA))
            at_12 += int(np.sum(p < 1.2 * ALPHA))
            pooled += int(np.sum(pooled_hotelling_p(X, Y) < ALPHA))
        per_config[(b, n1, n2, ratio)] = hits / BF_DRAWS
        ours += hits
    draws = BF_DRAWS * len(BF_CONFIGS)
    assert_size_with_controls("behrens_fisher_test", {"scheffe": ours / draws, "scheffe at 1.2α": at_12 / draws,
                                                      "pooled T²": pooled / draws}, per_config, BF_DRAWS)


def test_behrens_fisher_public_function_is_the_batched_core():
    """`behrens_fisher_test` on 20,000 H0 draws (5,000 per configuration): its p-values and decisions are
    `scheffe_p`'s on the same rows in the same random order (``default_rng(seed).choice(n2, n1, replace=False)``,
    the order the function draws), and its own rate is within its 4-sd band (±2.0e-3 at 20,000 draws)."""
    each = PUBLIC_DRAWS // len(BF_CONFIGS)
    rejected = 0
    for k, (b, n1, n2, ratio) in enumerate(BF_CONFIGS):
        (X, Y), = bf_h0(200 + k, b, n1, n2, ratio, each)
        results = [behrens_fisher_test(X[i], Y[i], ALPHA, seed=i) for i in range(each)]
        order = np.array([np.random.default_rng(i).choice(n2, size=n1, replace=False) for i in range(each)])
        p = scheffe_p(X, np.take_along_axis(Y, order[:, :, None], axis=1), Y.sum(axis=1), n2)
        p_public = np.array([r.p_value for r in results])
        assert_same_p(p_public, p)
        assert [r.reject for r in results] == list(p < ALPHA)
        assert all(r.df == (b, n1 - b) and r.alpha == ALPHA and not r.swapped for r in results)
        rejected += sum(r.reject for r in results)
    print("public rate", rejected / PUBLIC_DRAWS)
    assert in_band(rejected / PUBLIC_DRAWS, band(PUBLIC_DRAWS)), rejected / PUBLIC_DRAWS


# ---- paired_test ---------------------------------------------------------------------------------------------------
# (B, T, members): the `small` preset (4, 10) against 1 and 3 members, `paper` (6, 15), the paper's (6, 8).
PAIRED_CONFIGS = [(4, 10, 1), (4, 10, 3), (6, 15, 2), (6, 8, 2)]
PAIRED_DRAWS = 100_000


def test_paired_size_at_the_shipped_alpha_with_unequal_covariances_and_correlated_trials():
    """The paired form (eq. 15 with the trial order kept, Y = the members' per-trial averages of paper 002 §2.3)
    is exact: z_t = x_t − ȳ_t are i.i.d. normal whatever the covariances and the shared trial deviation. Pooled
    size within ±8.9 % of α; the same band rejects the test at 1.2·α and eq. 16 with F(B, n − B + 1)."""
    ours, at_12, off_by_one, per_config = 0, 0, 0, {}
    for k, (b, t, members) in enumerate(PAIRED_CONFIGS):
        hits = 0
        for x, ybar in paired_h0(300 + k, b, t, members, PAIRED_DRAWS):
            F = hotelling_F(x - ybar)
            p = fdtrc(b, t - b, F)
            np.testing.assert_allclose(p, _hotelling_p(x - ybar), rtol=1e-9, atol=1e-15)
            hits += int(np.sum(p < ALPHA))
            at_12 += int(np.sum(p < 1.2 * ALPHA))
            off_by_one += int(np.sum(fdtrc(b, t - b + 1, F) < ALPHA))
        per_config[(b, t, members)] = hits / PAIRED_DRAWS
        ours += hits
    draws = PAIRED_DRAWS * len(PAIRED_CONFIGS)
    assert_size_with_controls("paired_test", {"paired": ours / draws, "paired at 1.2α": at_12 / draws,
                                              "F(B, n−B+1)": off_by_one / draws}, per_config, PAIRED_DRAWS)


def test_paired_public_function_is_the_batched_core():
    """`paired_test` on 20,000 H0 draws: p-values and decisions are `_hotelling_p`'s on z = X − Ȳ; rate in band."""
    each = PUBLIC_DRAWS // len(PAIRED_CONFIGS)
    rejected = 0
    for k, (b, t, members) in enumerate(PAIRED_CONFIGS):
        (x, ybar), = paired_h0(400 + k, b, t, members, each)
        results = [paired_test(x[i], ybar[i], ALPHA) for i in range(each)]
        p = _hotelling_p(x - ybar)
        assert_same_p([r.p_value for r in results], p)
        assert [r.reject for r in results] == list(p < ALPHA)
        assert all(r.df == (b, t - b) and r.alpha == ALPHA for r in results)
        rejected += sum(r.reject for r in results)
    print("public rate", rejected / PUBLIC_DRAWS)
    assert in_band(rejected / PUBLIC_DRAWS, band(PUBLIC_DRAWS)), rejected / PUBLIC_DRAWS


# ---- two_look_test -------------------------------------------------------------------------------------------------
# (B, first look, T, members): the `small` preset's looks (6 of 10) and `paper`'s (10 of 15), futility 0.2.
TWO_LOOK_CONFIGS = [(4, 6, 10, 2), (6, 10, 15, 2)]
TWO_LOOK_DRAWS = 200_000   # per configuration: 400,000 pooled
TWO_LOOK_SEED = 500        # not `two_look_level`'s calibration seed: these draws are fresh


def two_look_p(x, ybar, first):
    """Both looks' p-values for a batch: the paired test on the first ``first`` trials and on all of them."""
    z = x - ybar
    return _hotelling_p(z[:, :first]), _hotelling_p(z)


def test_two_look_size_at_the_shipped_alpha_with_the_calibrated_second_level():
    """`two_look_test` rejects when p₁ ≤ futility and p₂ < α₂ (`two_look_level`); its size at α = 0.005 on fresh
    H0 draws (unequal covariances, shared trial deviations: the level is computed on standard normal z, valid for
    all covariances by invariance) is within ±12.6 % of α, the band of 400,000 draws widened for α₂'s own
    calibration error. The same band rejects α₂ calibrated for 1.2·α and two uncalibrated looks at α each. (The
    futility rule with α₂ = α, uncalibrated, is not a control: at α = 0.005 a draw with p₂ < α almost always has
    p₁ ≤ 0.2, so α₂ is barely above α and that rate, 0.0049, is within the band.)"""
    assert TWO_LOOK_SEED != _CALIBRATION_SEED
    counts = dict.fromkeys(("two looks", "α₂ for 1.2α", "each look at α", "α₂ = α", "stopped at look 1"), 0)
    per_config = {}
    for k, (b, first, t, members) in enumerate(TWO_LOOK_CONFIGS):
        level = two_look_level(b, first, t, ALPHA, FUTILITY)
        level_12 = two_look_level(b, first, t, 1.2 * ALPHA, FUTILITY)
        hits = 0
        for x, ybar in paired_h0(TWO_LOOK_SEED + k, b, t, members, TWO_LOOK_DRAWS):
            p1, p2 = two_look_p(x, ybar, first)
            go_on = p1 <= FUTILITY
            hits += int(np.sum(go_on & (p2 < level)))
            counts["α₂ for 1.2α"] += int(np.sum(go_on & (p2 < level_12)))
            counts["each look at α"] += int(np.sum((p1 < ALPHA) | (p2 < ALPHA)))
            counts["α₂ = α"] += int(np.sum(go_on & (p2 < ALPHA)))
            counts["stopped at look 1"] += int(np.sum(~go_on))
        per_config[(b, first, t)] = (hits / TWO_LOOK_DRAWS, level)
        counts["two looks"] += hits
    draws = TWO_LOOK_DRAWS * len(TWO_LOOK_CONFIGS)
    rates = {name: c / draws for name, c in counts.items()}
    half = band(draws, CALIBRATION_DRAWS)
    print("two_look_test", rates, per_config, f"band ±{half:.2e}")
    assert in_band(rates["two looks"], half), (rates, per_config, half)
    assert all(in_band(r, band(TWO_LOOK_DRAWS, CALIBRATION_DRAWS)) for r, _ in per_config.values()), per_config
    # p₁ is uniform under H0: 80 % stop at the first look (4 sd of 400,000 draws: ±0.0025)
    assert abs(rates["stopped at look 1"] - (1 - FUTILITY)) <= K_SD * binomial_sd(FUTILITY, draws), rates
    assert not in_band(rates["α₂ for 1.2α"], half), (rates, half)
    assert not in_band(rates["each look at α"], half), (rates, half)


def test_two_look_public_function_is_the_batched_core():
    """`two_look_test` on 20,000 H0 draws: both looks' p-values, the level and the decision are the batched core's
    (p₁ ≤ futility and p₂ < `two_look_level`); its own rate is in its band (±2.0e-3 at 20,000 draws)."""
    each = PUBLIC_DRAWS // len(TWO_LOOK_CONFIGS)
    rejected = 0
    for k, (b, first, t, members) in enumerate(TWO_LOOK_CONFIGS):
        (x, ybar), = paired_h0(600 + k, b, t, members, each)
        results = [two_look_test(x[i], ybar[i], first, ALPHA, FUTILITY) for i in range(each)]
        p1, p2 = two_look_p(x, ybar, first)
        level = two_look_level(b, first, t, ALPHA, FUTILITY)
        assert_same_p([r.first_p for r in results], p1)
        assert_same_p([r.p_value for r in results], p2)
        assert all(r.level == level and r.first_n == first and r.alpha == ALPHA for r in results)
        assert [r.reject for r in results] == list((p1 <= FUTILITY) & (p2 < level))
        rejected += sum(r.reject for r in results)
    print("public rate", rejected / PUBLIC_DRAWS)
    assert in_band(rejected / PUBLIC_DRAWS, band(PUBLIC_DRAWS, CALIBRATION_DRAWS)), rejected / PUBLIC_DRAWS
