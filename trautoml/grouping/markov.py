"""MH grouping: Markov sequential clustering guarded by a Behrens–Fisher test (paper 002 §2.2–2.4, Algorithm 1).

Model (paper 002 §2.2, eq. 3–14). K surplus clusters in the feature space [0, 1]^B. An empty cluster k has a
random centre μ₀ᵏ ~ U[0, 1]^B and covariance Σ₀ = σ0²·I / K^(1/B) (eq. 11). I = the non-empty clusters. Dataset n,
with trial matrix X (T × B) and mean vector x = mean over trials, has

* prior (eq. 6–7): w·|Vᵏ|/(n − 1) for a non-empty cluster, (1 − w)/(K − |I|) for an empty one, w = 1 − exp(−γ|I|);
* likelihood (eq. 5): N(x | μᵏ, Σᵏ);
* posterior ∝ prior × likelihood, normalised over all K clusters (eq. 4, 8), in log space.

Decision (Algorithm 1), keeping only the MAP path (the paper's greedy approximation):

* MAP cluster empty → the dataset founds that cluster (reason ``"empty-cluster"``). The first dataset always does:
  with |I| = 0, w = 0 and only empty clusters have prior mass.
* MAP cluster non-empty → Behrens–Fisher test (:mod:`.bftest`) of X against the cluster's members; kept → join
  (``"test-accepted"``); rejected → found a new group in an empty cluster drawn uniformly at random
  (``"test-rejected"``). By default the test is paired: Y = eq. 15's per-trial averages over the members (N2 = T),
  in trial order (see "The guard" below). Unpaired (``paired=False``), Y holds every member's T trial rows
  (N2 = Σ T) in random order: the same H0, with all the information the members give.

Updates (eq. 12–14) after the decision, for the chosen cluster only: μ = mean of its members' x and
Σ = S + C̄/T + f·I (``trial_cov="mean"``, the default), where

* S = (1/|V|)·Σᵢ (xᵢ − μ)(xᵢ − μ)ᵀ, the members' scatter (eq. 13);
* C̄ = mean over the members of their own trial covariance Cᵢ = (1/T)·Σₜ (xₜ − x)(xₜ − x)ᵀ, divided by T: the
  likelihood scores a dataset's *mean* of T trials, whose noise is Cᵢ/T, not Cᵢ. For 2–3 members S has rank 1–2
  and C̄/T fills the other directions with the noise a mean shows, so Σ never collapses below it and never
  exceeds eq. 13's scatter by more than it. Eq. 14 gives a cluster of one member its trial covariance C; we give
  it C/T, the same rule at |V| = 1 (a dataset's mean is known to C/T, not C);
* f = ``cov_floor`` (default 0.1·σ0², sd ≈ 0.0055 for σ0² = 3e-4): makes Σ positive definite even when the trials
  are identical (deterministic landmarkers), at a width below any realistic trial noise so it changes nothing else
  (a further 1e-10 × the largest variance guards against rounding for inputs far outside [0, 1]).

``trial_cov="trial"`` keeps the earlier Σ = S + C̄ + f·I (the members' single-trial covariance in every cluster,
about T times the noise of a mean). Measured with ``bench/sim_join_rate.py`` (B = 4, T = 10, a 4-member group,
trial sd 0.03): the join rate against distance for both, in the README ("The guard's power, the group covariance
and the accuracy guard").

The guard (``paired=True``, the default) is the paired form of eq. 15 (`.bftest.paired_test`): the new dataset's
trial t against the members' average of trial t, since trial t uses the same seed and images on every dataset.
The members' average of trial t is taken over the members with the most trials (every member when all have the
same T); with fewer than B + 1 paired trials the unpaired test above is used. ``paired=False`` is the unpaired test
with Y in random order.

Profiles that stop early (``first_look``; paper 002 §2.3 leaves T fixed, issue: profile adaptively). A profile is
taken in two looks: the first ``first_look`` trials, then the rest. `settled` tells the pipeline whether the rest
can change the decision. It cannot when (a) the MAP cluster is a group with posterior ≥ 0.95, (b) it stays the MAP
cluster for the means the rest of the trials could give (the posterior alone is overconfident at a first look: the
groups' Σ is made for the mean of all T trials), and (c) the guard's first look keeps H0 with p > ``futility``,
since the guard then tests in two looks (`.bftest.two_look_test`: reject only when the first look's p ≤ futility
and the full profile's p < α₂, α₂ calibrated so that the Type-I error stays α). Such a dataset joins on its first
look and keeps that many trials; every other dataset, founders included, is profiled in full, so every group keeps
members with all T trials for the paired test. Measured with ``bench/sim_two_look.py`` (2,000 draws): B = 4,
T = 10, a first look at 6 trials, futility 0.2 and α = 0.005 keep the single look's power (0.89 against 0.90 at 3
sd of the paired difference, 0.51 against 0.50 at 2 sd), and 80 % of the datasets of the group pass (c).

Engineering choices:

* Empty clusters all share Σ₀, so their log-likelihoods are one vectorised distance over the K × B centre matrix;
  non-empty clusters keep the inverse of their Cholesky factor, so theirs is one batched mat-vec. Per observe the
  cost is O(K·B + |I|·B²), plus the test, which draws T rows of the cluster's trials (running sum for the rest).
* Welford updates keep μ and S exact to rounding without revisiting the members.
* If a founding would use up the last empty cluster, one more random empty cluster is added (K grows by one), so
  a later dataset can always found a group; Σ₀ keeps the configured K.
* Input: every dataset must have T > B trials (the test needs them) and the same B as the first one; values beyond
  ±1e6 are refused. Within that, no NaN and no warning (tests run with warnings as errors).
* State (:meth:`to_dict`) is plain JSON: parameters, the centre matrix, every dataset's trials with its cluster,
  and the generator's bit-generator state. :meth:`from_dict` replays the updates, so a restored grouper makes the
  same decisions as the uninterrupted one, bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .base import Assignment, Grouper, group_id, rng_from_state, rng_state
from .bftest import _bf_core, _two_look_core

_LOG_2PI = math.log(2.0 * math.pi)

#: `MarkovBFGrouper.settled` lets a profile stop at its first look only when the MAP cluster is a group with at least
#: this posterior probability, the guard's first look keeps H0, and the MAP cluster stays the same in all but
#: `SETTLE_FLIPS` of `SETTLE_DRAWS` draws of the mean the whole profile could have.
SETTLE_POSTERIOR = 0.95
SETTLE_DRAWS = 200
SETTLE_FLIPS = 2


class MarkovBFGrouper(Grouper):
    """Online MH grouping (see the module doc). ``observe(trials)`` takes a T × B trial matrix, T > B.

    ``alpha``: the Behrens–Fisher test's significance level; ``gamma``: the prior's rate (w = 1 − exp(−γ|I|));
    ``K``: the number of surplus clusters; ``sigma0_sq``: σ0², the empty clusters' variance before the K^(1/B)
    scaling; ``seed``: the generator's seed (the centres and every later draw); ``cov_floor``: f, the variance added
    to every group's covariance (default 0.1·σ0²); ``trial_cov``: ``"mean"`` (C̄/T in Σ) or ``"trial"`` (C̄);
    ``paired``: the guard pairs trial t with the members' trial t (eq. 15's order kept) or draws a random order;
    ``first_look``: the trials after which a profile may stop (`settled`; the paired guard then tests in two looks,
    `.bftest.two_look_test`), None for one look on all trials; ``futility``: the first look's p-value above which
    H0 is kept there."""

    name = "mh"

    def __init__(self, alpha: float = 0.005, gamma: float = 0.2, K: int = 1000, sigma0_sq: float = 3e-4,
                 seed: int = 0, cov_floor: float | None = None, trial_cov: str = "mean",
                 paired: bool = True, first_look: int | None = None, futility: float = 0.2) -> None:
        super().__init__()
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if not gamma > 0.0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        if int(K) != K or K < 2:
            raise ValueError(f"K must be an integer ≥ 2, got {K}")
        if not sigma0_sq > 0.0:
            raise ValueError(f"sigma0_sq must be > 0, got {sigma0_sq}")
        self.alpha, self.gamma, self.K, self.sigma0_sq, self.seed = float(alpha), float(gamma), int(K), \
            float(sigma0_sq), int(seed)
        self.cov_floor = 0.1 * self.sigma0_sq if cov_floor is None else float(cov_floor)
        if not self.cov_floor > 0.0:
            raise ValueError(f"cov_floor must be > 0, got {cov_floor}")
        if trial_cov not in ("mean", "trial"):
            raise ValueError(f"trial_cov must be 'mean' (C̄/T) or 'trial' (C̄), got {trial_cov!r}")
        self.trial_cov, self.paired = trial_cov, bool(paired)
        if first_look is not None and (int(first_look) != first_look or first_look < 2):
            raise ValueError(f"first_look must be an integer ≥ 2 or None, got {first_look}")
        if not 0.0 < futility < 1.0:
            raise ValueError(f"futility must be in (0, 1), got {futility}")
        self.first_look = None if first_look is None else int(first_look)
        self.futility = float(futility)
        self.rng = np.random.default_rng(self.seed)
        self._trials: list[np.ndarray] = []   # every dataset's trial matrix (for the state)
        self._clusters: list[int] = []        # every dataset's cluster index

    # -- set-up --------------------------------------------------------------------------------------------------
    def _init_dim(self, b: int, centres: np.ndarray | None = None) -> None:
        self.dim = b
        self._s0_sq = self.sigma0_sq / self.K ** (1.0 / b)   # Σ₀ = s0²·I
        self._set_centres(self.rng.uniform(0.0, 1.0, size=(self.K, b)) if centres is None else centres)
        self._group_of_k = np.full(len(self._centres), -1, dtype=np.int64)
        self._const_empty = -0.5 * b * (_LOG_2PI + math.log(self._s0_sq))
        cap = 16
        self._k_of_group = np.zeros(cap, dtype=np.int64)
        self._mu = np.zeros((cap, b))
        self._winv = np.zeros((cap, b, b))      # L⁻¹ with Σ = L Lᵀ
        self._logdet = np.zeros(cap)
        self._size = np.zeros(cap)
        self._m2: list[np.ndarray] = []        # Σ (xᵢ − μ)(xᵢ − μ)ᵀ, Welford
        self._csum: list[np.ndarray] = []      # Σ of the members' own trial covariances
        self._ybuf: list[np.ndarray] = []      # the members' trial vectors, row buffer
        self._ny: list[int] = []
        self._ysum: list[np.ndarray] = []
        # the paired guard: per group, trial count -> (sum of the trial matrices of the members with that many
        # trials, how many members that is)
        self._by_count: list[dict[int, list]] = []

    def _set_centres(self, centres: np.ndarray) -> None:
        self._centres = centres
        self._half_sq_centres = (-0.5 / self._s0_sq) * np.einsum("kb,kb->k", centres, centres)

    def _grow(self) -> None:
        for name in ("_k_of_group", "_mu", "_winv", "_logdet", "_size"):
            a = getattr(self, name)
            setattr(self, name, np.concatenate([a, np.zeros_like(a)]))

    # -- the model -----------------------------------------------------------------------------------------------
    def _log_posterior(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Normalised log posterior of every cluster (length K) and the log of the empty clusters' total."""
        assert self.dim is not None  # fixed by the first dataset, before any cluster exists
        n_i = self.n_groups
        inv = 1.0 / self._s0_sq
        # empty clusters: prior (1 − w)/(K − |I|) with 1 − w = exp(−γ|I|); likelihood N(x | μ₀ᵏ, s0²·I), with
        # ‖x − μ₀ᵏ‖² = ‖μ₀ᵏ‖² − 2 μ₀ᵏ·x + ‖x‖² so the K × B part is one mat-vec
        lp = self._centres @ (x * inv) + self._half_sq_centres
        lp += (self._const_empty - self.gamma * n_i - math.log(len(self._centres) - n_i) - 0.5 * inv * (x @ x))
        if not n_i:
            m = lp.max()
            lse = m + math.log(np.exp(lp - m).sum())
            lp -= lse
            return lp, 0.0
        # non-empty: prior w·|Vᵏ|/(n − 1); likelihood N(x | μᵏ, Σᵏ) through the cached L⁻¹
        r = np.matmul(self._winv[:n_i], (x - self._mu[:n_i])[:, :, None])[:, :, 0]
        log_w = math.log(-math.expm1(-self.gamma * n_i))
        lp_i = (log_w - math.log(self.n_observed) + np.log(self._size[:n_i])
                - 0.5 * (self.dim * _LOG_2PI + self._logdet[:n_i] + np.einsum("kb,kb->k", r, r)))
        ks = self._k_of_group[:n_i]
        lp[ks] = -np.inf                        # exp(−inf) = 0, no warning: the empty clusters' total first
        m = lp.max()
        log_new = m + math.log(np.exp(lp - m).sum())
        m_i = lp_i.max()
        log_old = m_i + math.log(np.exp(lp_i - m_i).sum())
        lse = max(log_new, log_old) + math.log1p(math.exp(-abs(log_new - log_old)))
        lp[ks] = lp_i
        lp -= lse
        return lp, log_new - lse

    def _add(self, k: int, X: np.ndarray) -> int:
        """Update cluster k with dataset X (eq. 12–14 plus the regularisation); returns its group index."""
        assert self.dim is not None  # fixed by the first dataset, before any cluster exists
        t = len(X)
        x = X.mean(axis=0)
        dev = X - x
        c = dev.T @ dev / t                     # the dataset's own trial covariance
        if self.trial_cov == "mean":
            c /= t                              # ... of its mean
        g = int(self._group_of_k[k])
        founding = g < 0
        if founding:
            g = self.n_groups
            if g == len(self._size):
                self._grow()
            self._group_of_k[k] = g
            self._k_of_group[g] = k
            self._mu[g] = x
            self._m2.append(np.zeros((self.dim, self.dim)))
            self._csum.append(c)
            self._ybuf.append(np.empty((max(64, 4 * t), self.dim)))
            self._ny.append(0)
            self._ysum.append(np.zeros(self.dim))
            self._by_count.append({})
            self._size[g] = 1
        else:
            n = self._size[g] + 1
            delta = x - self._mu[g]
            self._mu[g] += delta / n
            self._m2[g] += np.outer(delta, x - self._mu[g])
            self._csum[g] += c
            self._size[g] = n
        n = self._size[g]
        sigma = (self._m2[g] + self._csum[g]) / n
        sigma = 0.5 * (sigma + sigma.T)         # Welford's outer products are symmetric only to rounding
        # the floor, plus a relative 1e-10 so that rounding cannot break positive definiteness at large scales
        sigma[np.diag_indices(self.dim)] += self.cov_floor + 1e-10 * float(np.diag(sigma).max())
        low = np.linalg.cholesky(sigma)
        self._winv[g] = np.linalg.inv(low)       # (scipy's solve_triangular costs ms per call here)
        self._logdet[g] = 2.0 * np.log(np.diag(low)).sum()
        ny = self._ny[g]
        if ny + t > len(self._ybuf[g]):
            buf = np.empty((2 * (ny + t), self.dim))
            buf[:ny] = self._ybuf[g][:ny]
            self._ybuf[g] = buf
        self._ybuf[g][ny:ny + t] = X
        self._ny[g] = ny + t
        self._ysum[g] += X.sum(axis=0)
        entry = self._by_count[g].setdefault(t, [np.zeros((t, self.dim)), 0])
        entry[0] += X
        entry[1] += 1
        if founding and g + 1 == len(self._centres):   # the last empty cluster was used: keep one in reserve
            self._set_centres(np.vstack([self._centres, self.rng.uniform(0.0, 1.0, size=(1, self.dim))]))
            self._group_of_k = np.append(self._group_of_k, -1)
        self._trials.append(X)
        self._clusters.append(k)
        return g

    # -- the decision --------------------------------------------------------------------------------------------
    def observe(self, trials) -> Assignment:
        """Group one dataset from its T × B landmarker trial matrix (T > B)."""
        X = self._check(trials, allow_vector=False)
        t, b = X.shape
        if t <= b:
            raise ValueError(f"mh: the Behrens–Fisher guard needs more trials than landmarkers: got T = {t} for "
                             f"B = {b} (need T ≥ {b + 1})")
        if self.dim is None:
            self._init_dim(b)
        lp, log_new = self._log_posterior(X.mean(axis=0))
        k1 = int(np.argmax(lp))
        top = lp[k1]
        lp[k1] = -np.inf
        k2 = int(np.argmax(lp))
        lp[k1] = top
        g1, g2 = int(self._group_of_k[k1]), int(self._group_of_k[k2])
        test = None
        if g1 < 0:
            k, reason = k1, "empty-cluster"
        else:
            test = self._guard(X, g1)
            if test.reject:
                free = np.flatnonzero(self._group_of_k < 0)
                k, reason = int(free[self.rng.integers(len(free))]), "test-rejected"
            else:
                k, reason = k1, "test-accepted"
        index = self.n_observed
        g = self._add(k, X)
        gid, founded = self._record(g)
        return Assignment(index=index, group=gid, founded=founded, reason=reason, method=self.name, test=test,
                          log_posterior=float(top), runner_up_log_posterior=float(lp[k2]),
                          map_group=group_id(g1) if g1 >= 0 else None,
                          runner_up_group=group_id(g2) if g2 >= 0 else None, log_posterior_new=float(log_new),
                          extra={"cluster": k})

    def settled(self, trials) -> bool:
        """Whether a profile may stop at these trials (its first look, ``first_look`` rows): `observe` would join
        the MAP cluster's group, which holds at least `SETTLE_POSTERIOR` of the posterior and stays the MAP cluster
        for the means the rest of the trials could give (`_map_holds`), and the guard's first look keeps H0
        (p > ``futility``, and > α), so more trials could not make it reject (`.bftest.two_look_test`). False
        without a first look, for the unpaired guard, when the MAP cluster is empty (a founder's profile is
        completed anyway) and whenever more trials could change the decision. Changes nothing."""
        if self.first_look is None or not self.paired or self.dim is None:
            return False
        X = self._check(trials, allow_vector=False)
        if len(X) < self.first_look:
            return False
        X = X[:self.first_look]
        lp, _ = self._log_posterior(X.mean(axis=0))
        k1 = int(np.argmax(lp))
        g1 = int(self._group_of_k[k1])
        if g1 < 0 or math.exp(lp[k1]) < SETTLE_POSTERIOR:
            return False
        full = max(self._by_count[g1])
        if min(len(X), full) <= self.dim:
            return False
        return self._guard(X, g1).p_value > self._keep_bound and self._map_holds(X, k1, full)

    @property
    def _keep_bound(self) -> float:
        """The first look's p-value above which H0 is kept for good: ``futility``, or α if that is larger (the
        first look alone tests at α, so a p between them would be rejected there)."""
        return max(self.futility, self.alpha)

    def _map_holds(self, X: np.ndarray, k: int, full: int) -> bool:
        """Whether cluster k stays the MAP cluster for the mean the whole profile (``full`` trials) could have; k
        must stay the MAP in all but `SETTLE_FLIPS` of `SETTLE_DRAWS` draws (a fixed seed: the same trials, the same
        answer). The posterior alone is overconfident here, since the groups' Σ is made for the mean of ``full``
        trials: seen on the demo stream, a 6-trial mean put a texture set in the shapes group with posterior
        0.99997 and the 10-trial mean in another group with 0.9999.

        The draws are the full mean's posterior predictive: the rest of the trials move the mean by
        t_ν(0, Ĉ·(1/n − 1/full)), a multivariate t whose covariance Ĉ pools the n trials' scatter with that of the
        members of k's group (the dataset joins it only if it shares their trial noise; ν = the pooled degrees of
        freedom − B + 1, a Jeffreys prior on the covariance). The first version drew from N(0, C·(1/n − 1/full)) with
        C the n trials' own covariance, as if a 6-trial covariance of 4 landmarkers were known: near the groups'
        boundary it kept 1.5–2.3 % of datasets whose full profile went elsewhere against the 1 % it states
        (`tests/test_first_look.py` measures both)."""
        assert self.dim is not None  # fixed by the first dataset, before any cluster exists
        n = len(X)
        if n >= full:
            return True
        x = X.mean(axis=0)
        dev = X - x
        scatter, df = dev.T @ dev, n - 1
        for Y, kk in zip(self._trials, self._clusters):
            if kk == k:
                d = Y - Y.mean(axis=0)
                scatter, df = scatter + d.T @ d, df + len(Y) - 1
        nu = df - self.dim + 1
        scale = scatter / nu * (1.0 / n - 1.0 / full)
        scale[np.diag_indices(self.dim)] += 1e-12
        rng = np.random.default_rng(0)
        z = rng.standard_normal((SETTLE_DRAWS, self.dim)) @ np.linalg.cholesky(scale).T
        draws = z * np.sqrt(nu / rng.chisquare(nu, SETTLE_DRAWS))[:, None]
        flips = 0
        for d in draws:
            lp, _ = self._log_posterior(x + d)
            flips += int(np.argmax(lp)) != k
            if flips > SETTLE_FLIPS:
                return False
        return True

    def _guard(self, X: np.ndarray, g: int):
        """The Behrens–Fisher test of X against group g: paired (see the module doc), in two looks with a
        ``first_look``; unpaired with ``paired=False`` or too few paired trials."""
        assert self.dim is not None  # fixed by the first dataset, before any cluster exists
        if self.paired:
            most = max(self._by_count[g])
            n = min(len(X), most)
            if n > self.dim:
                # Y's row t averages trial t over the members with the most trials, the same members at every
                # look, so the looks' statistics have the joint law two_look_test is calibrated on
                total, count = self._by_count[g][most]
                r = _two_look_core(X[:n], total[:n] / count, self.first_look or n, self.alpha, self.futility)
                if n == self.first_look and n < most and r.p_value > self._keep_bound:  # a profile that stopped here
                    r = replace(r, first_n=n, first_p=r.p_value, futility=self.futility)
                return r
        return _bf_core(X, self._ybuf[g][:self._ny[g]], self._ysum[g], self.alpha, self.rng)

    # -- inspection ----------------------------------------------------------------------------------------------
    def group_params(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """(μ, Σ) of a group as the likelihood uses them (Σ includes the regularisation)."""
        g = int(group[1:]) - 1
        if not 0 <= g < self.n_groups:
            raise KeyError(group)
        low_inv = self._winv[g]
        prec = low_inv.T @ low_inv
        return self._mu[g].copy(), np.linalg.inv(prec)

    # -- state ---------------------------------------------------------------------------------------------------
    def params(self) -> dict:
        """The constructor's arguments (saved with the state)."""
        return {"alpha": self.alpha, "gamma": self.gamma, "K": self.K, "sigma0_sq": self.sigma0_sq,
                "seed": self.seed, "cov_floor": self.cov_floor, "trial_cov": self.trial_cov, "paired": self.paired,
                "first_look": self.first_look, "futility": self.futility}

    def to_dict(self) -> dict:
        """The state as plain JSON: parameters, the centre matrix, every dataset's trials with its cluster, and the
        generator's state."""
        return {**self._base_state(), "params": self.params(),
                "centres": None if self.dim is None else self._centres.tolist(),
                "datasets": [{"trials": X.tolist(), "cluster": k} for X, k in zip(self._trials, self._clusters)],
                "rng": rng_state(self.rng)}

    @classmethod
    def from_dict(cls, d: dict) -> MarkovBFGrouper:
        """A grouper restored from `to_dict`'s ``d`` by replaying the updates: it makes the same future decisions, bit
        for bit (ValueError for another grouper's or an inconsistent state)."""
        # a state written before trial_cov / paired / first_look existed was grouped with C̄, the unpaired test and
        # one look
        self = cls(**{"trial_cov": "trial", "paired": False, "first_look": None, **d["params"]})
        if d.get("type") != self.name:
            raise ValueError(f"state is for grouper {d.get('type')!r}, not {self.name!r}")
        if d["dim"] is not None:
            # the full centre matrix, rows added by growth included: the replay then never needs to grow it
            self._init_dim(d["dim"], np.array(d["centres"], dtype=np.float64))
            for rec in d["datasets"]:
                self._record(self._add(rec["cluster"], np.array(rec["trials"], dtype=np.float64)))
            if self._labels != list(d["labels"]):
                raise ValueError("inconsistent state: the replayed datasets do not give the stored groups")
        self.rng = rng_from_state(d["rng"])
        return self
