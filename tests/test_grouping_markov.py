"""MH grouper: the posterior against a direct computation, the updates, recovery of synthetic groups, α's effect,
save/restore, input checks and degenerate input (warnings are errors here)."""
import json
import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.metrics import adjusted_rand_score

from trautoml.decision import REASONS
from trautoml.grouping import MarkovBFGrouper, grouper_from_dict, make_grouper

from fakes import B, T, synthetic_stream

pytestmark = pytest.mark.filterwarnings("error")


def naive_log_posterior(g: MarkovBFGrouper, x: np.ndarray) -> np.ndarray:
    """Eq. 4–8 cluster by cluster with scipy's multivariate normal."""
    k_total = len(g._centres)
    n_i, n = g.n_groups, g.n_observed
    w = 1.0 - math.exp(-g.gamma * n_i)
    s0_sq = g.sigma0_sq / g.K ** (1.0 / B)
    out = np.empty(k_total)
    for k in range(k_total):
        gi = g._group_of_k[k]
        if gi < 0:
            out[k] = math.log((1 - w) / (k_total - n_i)) + stats.multivariate_normal(g._centres[k],
                                                                                      s0_sq * np.eye(B)).logpdf(x)
        else:
            mu, sigma = g.group_params(f"g{gi + 1}")
            out[k] = math.log(w * len(g.groups()[f"g{gi + 1}"]) / n) + stats.multivariate_normal(mu, sigma).logpdf(x)
    return out - logsumexp(out)


def test_first_dataset_founds_a_group():
    g = MarkovBFGrouper()
    a = g.observe(np.full((T, B), 0.5) + np.random.default_rng(0).normal(0, 0.01, (T, B)))
    assert a.group == "g1" and a.founded and a.reason == "empty-cluster" and a.test is None
    assert a.map_group is None and a.index == 0
    assert g.groups() == {"g1": [0]} and g.n_observed == 1


def test_posterior_matches_a_direct_computation():
    rng = np.random.default_rng(1)
    _, data = synthetic_stream(rng, n=25)
    g = MarkovBFGrouper(K=50, seed=3)
    for X in data:
        ref = naive_log_posterior(g, X.mean(0)) if g.n_observed else None
        a = g.observe(X)
        if ref is not None:
            top2 = np.sort(ref)[::-1][:2]
            assert a.log_posterior == pytest.approx(top2[0], abs=1e-8)
            assert a.runner_up_log_posterior == pytest.approx(top2[1], abs=1e-8)
            empty = g._group_of_k[: len(ref)] < 0
            empty[a.extra["cluster"]] = a.founded      # the chosen cluster was empty before if it was founded
            assert a.log_posterior_new == pytest.approx(logsumexp(ref[empty]), abs=1e-8)


def test_updates_follow_eq_12_to_14_plus_the_documented_regularisation():
    rng = np.random.default_rng(2)
    members = [0.6 + rng.normal(0, 0.015, (T, B)) for _ in range(5)]
    g = MarkovBFGrouper(alpha=1e-12)      # never rejects: all five join g1
    for X in members:
        g.observe(X)
    assert g.groups() == {"g1": [0, 1, 2, 3, 4]}
    xs = np.array([X.mean(0) for X in members])
    mu, sigma = g.group_params("g1")
    scatter = (xs - xs.mean(0)).T @ (xs - xs.mean(0)) / 5
    trial_cov = np.mean([(X - X.mean(0)).T @ (X - X.mean(0)) / T for X in members], axis=0)
    np.testing.assert_allclose(mu, xs.mean(0), atol=1e-12)
    # Σ = S + C̄/T + f·I: the scatter of eq. 13 plus the noise of a member's mean
    np.testing.assert_allclose(sigma, scatter + trial_cov / T + g.cov_floor * np.eye(B), atol=1e-10)
    # a fresh group's Σ is the noise of the founding dataset's mean (eq. 14's trial covariance / T) plus the floor
    g1 = MarkovBFGrouper()
    g1.observe(members[0])
    np.testing.assert_allclose(g1.group_params("g1")[1],
                               (members[0] - xs[0]).T @ (members[0] - xs[0]) / T / T + g1.cov_floor * np.eye(B),
                               atol=1e-10)
    # trial_cov="trial" keeps the members' single-trial covariance (the earlier rule)
    g2 = MarkovBFGrouper(alpha=1e-12, trial_cov="trial")
    for X in members:
        g2.observe(X)
    np.testing.assert_allclose(g2.group_params("g1")[1], scatter + trial_cov + g2.cov_floor * np.eye(B), atol=1e-10)


def test_covariance_update_against_a_hand_computation():
    # two members of T = 3 trials, B = 2: every number below is worked out by hand
    x1 = np.array([[0.5, 0.4], [0.6, 0.4], [0.7, 0.7]])     # mean (0.6, 0.5)
    x2 = np.array([[0.8, 0.6], [0.8, 0.8], [0.8, 0.7]])     # mean (0.8, 0.7)
    # C1 = (1/3)·[[0.02, 0.03], [0.03, 0.06]];  C2 = (1/3)·[[0, 0], [0, 0.02]]
    # S = (1/2)·((−0.1, −0.1)(−0.1, −0.1)ᵀ + (0.1, 0.1)(0.1, 0.1)ᵀ) = [[0.01, 0.01], [0.01, 0.01]]
    # C̄/T = (C1 + C2)/2/3 = [[0.02, 0.03], [0.03, 0.08]] / 18
    g = MarkovBFGrouper(alpha=1e-12, cov_floor=1e-4, K=10, paired=False)
    g.observe(x1)
    g.observe(x2)
    assert g.groups() == {"g1": [0, 1]}
    mu, sigma = g.group_params("g1")
    want = np.array([[0.01, 0.01], [0.01, 0.01]]) + np.array([[0.02, 0.03], [0.03, 0.08]]) / 18 + 1e-4 * np.eye(2)
    np.testing.assert_allclose(mu, [0.7, 0.6], atol=1e-12)
    np.testing.assert_allclose(sigma, want, rtol=1e-8, atol=1e-12)


def test_datasets_from_one_distribution_share_a_group():
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        g = MarkovBFGrouper(seed=seed)
        for _ in range(20):
            g.observe(0.7 + rng.normal(0, 0.015, (T, B)))
        sizes = sorted(map(len, g.groups().values()), reverse=True)
        assert sizes[0] >= 18, g.groups()


def test_well_separated_groups_in_random_order_are_recovered():
    for seed in range(3):
        labels, data = synthetic_stream(np.random.default_rng(seed))
        g = MarkovBFGrouper(seed=seed)
        assignments = [g.observe(X) for X in data]
        assert adjusted_rand_score(labels, g.labels()) >= 0.9
        assert {a.reason for a in assignments} <= set(REASONS)
        # an empty cluster never beats the group a dataset came from once that group exists (σ0² = 3e-4)
        seen = set()
        for lab, a in zip(labels, assignments):
            if lab in seen:
                assert a.map_group is not None
            seen.add(lab)


def test_larger_alpha_gives_more_groups():
    def mean_groups(alpha):
        counts = []
        for seed in range(20):
            _, data = synthetic_stream(np.random.default_rng(seed), n_groups=4, n=40, sd=0.02, tau=0.005)
            g = MarkovBFGrouper(alpha=alpha, seed=seed)
            for X in data:
                g.observe(X)
            counts.append(g.n_groups)
        return np.mean(counts)

    small, large = mean_groups(0.001), mean_groups(0.2)
    assert large > small + 1.0, (small, large)


@pytest.mark.parametrize("K", [1000, 4])
def test_save_and_restore_makes_the_same_future_decisions(K):
    labels, data = synthetic_stream(np.random.default_rng(5), n=80, tau=0.005)
    full = MarkovBFGrouper(alpha=0.05, K=K, seed=9)
    first = [full.observe(X).to_dict() for X in data[:40]]
    half = MarkovBFGrouper(alpha=0.05, K=K, seed=9)
    assert [half.observe(X).to_dict() for X in data[:40]] == first
    restored = grouper_from_dict(json.loads(json.dumps(half.to_dict())))
    assert isinstance(restored, MarkovBFGrouper) and restored.groups() == half.groups()
    rest_full = [full.observe(X).to_dict() for X in data[40:]]
    rest_restored = [restored.observe(X).to_dict() for X in data[40:]]
    assert rest_restored == rest_full
    assert any(d["reason"] == "test-rejected" for d in first + rest_full)   # the RNG mattered
    assert restored.to_dict() == full.to_dict()
    if K == 4:
        assert full.n_groups >= 4 and len(full._centres) > 4                 # surplus clusters were added


def test_empty_grouper_round_trips():
    g = grouper_from_dict(json.loads(json.dumps(MarkovBFGrouper(seed=4).to_dict())))
    ref = MarkovBFGrouper(seed=4)
    X = 0.5 + np.random.default_rng(0).normal(0, 0.01, (T, B))
    assert g.observe(X).to_dict() == ref.observe(X).to_dict()


def test_bad_input_is_refused_without_changing_state():
    g = MarkovBFGrouper()
    g.observe(0.5 + np.random.default_rng(0).normal(0, 0.01, (T, B)))
    state = json.dumps(g.to_dict())
    bad = [np.full((T, B + 1), 0.5), np.full((B, B), 0.5), np.full(B, 0.5), np.full((T, B), np.nan),
           np.full((T, B), np.inf), np.full((T, B), 1e9)]
    messages = ["B = 6", "more trials than landmarkers", "T × B", "NaN", "NaN", "beyond"]
    for X, msg in zip(bad, messages):
        with pytest.raises(ValueError, match=msg):
            g.observe(X)
    assert json.dumps(g.to_dict()) == state and g.n_observed == 1
    with pytest.raises(ValueError):
        MarkovBFGrouper(alpha=0.0)
    with pytest.raises(ValueError):
        MarkovBFGrouper(K=1)


def test_degenerate_input_gives_no_nan_and_no_warning():
    g = MarkovBFGrouper()
    rng = np.random.default_rng(7)
    inputs = [np.full((T, B), 0.5), np.full((T, B), 0.5), np.full((T, B), 0.5001),      # identical trials
              np.zeros((T, B)), np.ones((T, B)), np.zeros((T, B)),                      # at the range ends
              np.full((T, B), 0.9) + rng.normal(0, 0.01, (T, B)),
              np.full((T, B), 0.9) + rng.normal(0, 0.01, (T, B)),                       # a 2-member cluster
              np.full((T, B), 0.1) + np.eye(T, B) * 0.01,                                # rank-deficient trials
              np.full((T, B), -3.0), np.full((T, B), 1e5)]                              # far outside [0, 1]
    for X in inputs:
        a = g.observe(X)
        assert np.isfinite(a.log_posterior) and np.isfinite(a.runner_up_log_posterior)
        assert np.isfinite(a.log_posterior_new) and a.log_posterior <= 1e-12
        if a.test is not None:
            assert np.isfinite(a.test.F) and 0.0 <= a.test.p_value <= 1.0
        assert a.explain()
    groups = g.labels()
    assert groups[0] == groups[1]           # identical datasets share a group
    assert groups[2] != groups[0]           # 0.0001 apart with no spread at all: a different mean
    assert groups[3] == groups[5] != groups[4]
    assert groups[6] == groups[7]


def test_explanation_names_the_group_the_posterior_and_the_test():
    labels, data = synthetic_stream(np.random.default_rng(3), n=30)
    g = MarkovBFGrouper()
    out = [g.observe(X) for X in data]
    joined = next(a for a in out if a.reason == "test-accepted")
    text = joined.explain()
    assert joined.group in text and "log posterior" in text and "p = " in text and "α = 0.005" in text
    assert len(text.splitlines()) <= 2
    assert "empty" in out[0].explain()


def test_factory_and_group_ids():
    g = make_grouper("mh", alpha=0.01, K=100)
    assert isinstance(g, MarkovBFGrouper) and g.alpha == 0.01 and g.K == 100
    labels, data = synthetic_stream(np.random.default_rng(4), n=40)
    for X in data:
        g.observe(X)
    ids = list(g.groups())
    assert ids == [f"g{i + 1}" for i in range(len(ids))]
    assert sorted(i for m in g.groups().values() for i in m) == list(range(40))
    with pytest.raises(ValueError, match="unknown grouper"):
        make_grouper("nope")


@pytest.mark.slow
def test_ten_thousand_observes_take_under_ten_cpu_seconds():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "bench_grouping.py"
    spec = importlib.util.spec_from_file_location("bench_grouping", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main([])
    assert out["cpu_seconds"] < 10.0 and out["adjusted_rand_index"] > 0.95


# -- profiles that stop early (first_look) --------------------------------------------------------------------------
MU4 = np.array([0.3, 0.5, 0.6, 0.8])


def _draw(rng, mu, t=10, sd=0.02, shared=None):
    x = mu + rng.normal(0, sd, (t, len(mu)))
    return x if shared is None else x + shared


def test_settled_stops_about_four_in_five_members_and_no_stranger():
    rng = np.random.default_rng(3)
    stopped, strangers = 0, 0
    for _ in range(200):
        g = MarkovBFGrouper(first_look=6, K=50)
        first = _draw(rng, MU4)
        assert not g.settled(first[:6])            # nothing to join yet
        g.observe(first)
        x = _draw(rng, MU4)
        if g.settled(x[:6]):
            stopped += 1
            a = g.observe(x[:6])                   # the decision on the first look alone
            assert not a.founded and a.reason == "test-accepted" and a.test.n1 == 6
        strangers += g.settled(_draw(rng, MU4 + 0.1)[:6])
    assert 0.7 <= stopped / 200 <= 0.9, stopped / 200     # P(p₁ > 0.2) = 0.8 under H0
    assert strangers == 0


def test_settled_changes_nothing_and_needs_a_first_look():
    rng = np.random.default_rng(4)
    g = MarkovBFGrouper(first_look=6)
    g.observe(_draw(rng, MU4))
    before = json.dumps(g.to_dict())
    x = _draw(rng, MU4)
    answers = {g.settled(x[:6]) for _ in range(3)}
    assert len(answers) == 1 and json.dumps(g.to_dict()) == before
    assert not g.settled(x[:5])                    # fewer trials than the first look
    plain = MarkovBFGrouper()
    plain.observe(_draw(rng, MU4))
    assert plain.first_look is None and not plain.settled(x[:6])
    unpaired = MarkovBFGrouper(first_look=6, paired=False)
    unpaired.observe(_draw(rng, MU4))
    assert not unpaired.settled(x[:6])
    with pytest.raises(ValueError, match="first_look"):
        MarkovBFGrouper(first_look=1)
    with pytest.raises(ValueError, match="futility"):
        MarkovBFGrouper(futility=0.0)


def test_the_guard_averages_the_members_with_the_most_trials_in_both_looks():
    from trautoml.grouping.bftest import two_look_test

    rng = np.random.default_rng(5)
    g = MarkovBFGrouper(first_look=6, K=50)
    founders = [_draw(rng, MU4), _draw(rng, MU4)]
    for f in founders:
        g.observe(f)
    short = _draw(rng, MU4)[:6]                    # a member that stopped at its first look
    assert not g.observe(short).founded
    x = _draw(rng, MU4 + 0.01)
    a = g.observe(x)
    want = two_look_test(x, np.mean(founders, axis=0), 6, g.alpha)
    assert a.test == want and a.test.first_n == 6


def test_two_look_grouping_keeps_its_type_one_error_with_early_stops():
    # the whole procedure as the pipeline runs it (first look, settled → stop, else the full profile), at α = 0.05
    # against a one-member group, unequal covariances and trial deviations shared across datasets
    rng = np.random.default_rng(6)
    l_new = np.linalg.cholesky(np.diag([1.0, 2.0, 0.5, 1.5]) * 0.015 ** 2)
    l_old = np.linalg.cholesky((np.eye(4) * 0.8 + 0.2) * 0.01 ** 2)
    rejected = tested = stops = 0
    for _ in range(2500):
        shared = rng.normal(0, 0.008, (10, 4))
        g = MarkovBFGrouper(alpha=0.05, first_look=6, K=50)
        g.observe(MU4 + shared + rng.normal(size=(10, 4)) @ l_old.T)
        x = MU4 + shared + rng.normal(size=(10, 4)) @ l_new.T
        settled = g.settled(x[:6])
        a = g.observe(x[:6] if settled else x)
        stops += settled
        tested += a.test is not None
        rejected += a.reason == "test-rejected"
    assert tested >= 2490                          # the group was the MAP cluster: the guard decided
    assert abs(rejected / tested - 0.05) <= 0.013, rejected / tested
    assert stops / 2500 >= 0.7, stops / 2500


def test_first_look_is_saved_and_an_older_state_restores_with_one_look():
    rng = np.random.default_rng(7)
    g = MarkovBFGrouper(first_look=6)
    g.observe(_draw(rng, MU4))
    d = g.to_dict()
    assert MarkovBFGrouper.from_dict(d).first_look == 6
    for key in ("first_look", "futility"):
        del d["params"][key]
    assert MarkovBFGrouper.from_dict(d).first_look is None


def test_a_first_look_does_not_settle_when_the_rest_of_the_trials_could_move_the_map_cluster():
    # two groups 0.05 apart on the first landmarker; a dataset 0.003 from their midpoint, on g1's side: the posterior
    # gives g1 ≥ 0.95, yet the 4 trials still to come move the mean by ±0.0026 (sd) and often across the midpoint
    g = MarkovBFGrouper(first_look=6, K=50)
    noise = np.random.default_rng(8).normal(0, 0.01, (10, 4))
    noise -= noise.mean(0)
    for shift in (0.0, 0.05):
        g.observe(MU4 + [shift, 0, 0, 0] + noise)
    assert g.n_groups == 2
    x0 = MU4 + [0.022, 0, 0, 0] + noise[:6] - noise[:6].mean(0)
    lp, _ = g._log_posterior(x0.mean(0))
    k1 = int(np.argmax(lp))
    assert g._group_of_k[k1] == 0 and math.exp(lp[k1]) >= 0.95
    assert not g._map_holds(x0, k1, 10) and not g.settled(x0)
    centred = MU4 + noise[:6] - noise[:6].mean(0)    # right on g1's mean: the rest cannot move it to g2
    lp, _ = g._log_posterior(centred.mean(0))
    assert g._map_holds(centred, int(np.argmax(lp)), 10)


def test_settled_and_observe_agree_even_when_the_futility_bound_is_below_alpha():
    # with α = 0.3 above futility 0.2 a first look at p = 0.25 is rejected by observe: settled must not stop there
    rng = np.random.default_rng(9)
    checked = 0
    for _ in range(200):
        g = MarkovBFGrouper(alpha=0.3, futility=0.2, first_look=6, K=50)
        g.observe(_draw(rng, MU4))
        x = _draw(rng, MU4)
        if g.settled(x[:6]):
            checked += 1
            assert g.observe(x[:6]).reason == "test-accepted"
    assert checked > 50
