"""The guard of the grouping step: a Behrens–Fisher test of equal means (paper 002 §2.3, eq. 15–16).

H0: the new dataset's trial vectors and the group's trial vectors have the same mean; the two covariances are
unknown and may differ. We use Scheffé's solution (Anderson, *An Introduction to Multivariate Statistical
Analysis*, §5.5), as paper 002 §2.3 (eq. 15–16) applies it. With X (N1 × B) and Y (N2 × B), N1 ≤ N2, Y taken in
a random order:

    z_i = x_i − sqrt(N1/N2)·y_i + (1/sqrt(N1·N2))·Σ_{j≤N1} y_j − (1/N2)·Σ_{j≤N2} y_j,      i = 1..N1
    z̄ = mean z_i,  A = Σ_i (z_i − z̄)(z_i − z̄)ᵀ,  F = (N1 − B)/B · N1 · z̄ᵀ A⁻¹ z̄  ~  F(B, N1 − B) under H0.

The z_i are i.i.d. N(μ_X − μ_Y, Σ_X + (N1/N2)·Σ_Y), so under normal data the test is exact whatever the two
covariances: F is Hotelling's one-sample T² on the z_i, scaled. Only N1 of the N2 rows of Y enter individually;
the rest enter through the total sum. "A random order" therefore means: N1 rows of Y drawn without replacement,
in random order (exactly the first N1 of a uniform random permutation).

Choices of ours, documented here because they change results:

* **Roles.** The construction needs N1 ≤ N2. Given ``len(X) > len(Y)`` the two samples swap roles (H0 is
  symmetric); ``BFTestResult.swapped`` says so and ``n1``/``n2`` report the sizes as used (n1 ≤ n2).
* **Size.** N1 ≤ B leaves F undefined (A has rank ≤ N1 − 1 < B, and the F law needs N1 − B ≥ 1): refused with a
  ``ValueError``. With the paper's B = 6, T = 8 the test has (6, 2) degrees of freedom (the `paper` preset uses T = 15).
* **Singular A.** Landmarker accuracies can repeat exactly (a model stuck at chance gives 1/C in every trial), so A
  can be singular or even zero. We add a ridge ``δ·I`` before solving, with
  ``δ = N1·(RESOLUTION·s)² + 1e-9·trace(A)/B`` where s = max(1, largest |value|) and ``RESOLUTION = 1e-6``: mean
  differences far below 1e-6 (far below any accuracy resolution, far above float round-off) count as no
  difference, larger ones along a direction without spread count as certain differences. Consequences: identical
  means give z̄ = 0 → F = 0, p = 1 (kept); different means with zero spread give an enormous F → p ≈ 0
  (rejected). For any non-degenerate A the ridge changes F by a relative 1e-9 or less, so the test stays exact.
  No NaN, no warning, for any finite input.
* **Decision.** ``reject`` is ``p_value < alpha``, the same event as F > F_α(B, N1 − B).

The paired form (`paired_test`). Eq. 15 pairs x_i with y_{π(i)} for a random order π. Landmarker trial t uses the
same seed and the same images on every dataset, so trial t of the new dataset and trial t of the group carry a
common deviation. Keeping the trial order (π = identity) with Y = the members' per-trial averages ȳ_t (eq. 15's
N2 = T form) gives N1 = N2 = n and z_t = x_t − ȳ_t: the pairs (x_t, ȳ_t) are independent across t and identically
distributed, so the z_t are i.i.d. N(μ_X − μ_Y, Σ_X + Σ_Ȳ − C_XȲ − C_ȲX) and F is exact again, whatever the two
covariances and their cross-covariance. A positive correlation between trial t's deviations (measured +0.11 to
+0.46 per landmarker between Fashion-MNIST and its half) shrinks that covariance and buys power, and ȳ_t averages
the members' trial noise instead of adding it; H0 is the same (mean of X = mean of the members' means).

Power (`power`, `trials_for_power`). When the means differ by δ, the z_i are N(δ, Σ_X + (N1/N2)·Σ_Y) and F follows
the noncentral F(B, N1 − B, λ) with λ = N1·δᵀ(Σ_X + (N1/N2)·Σ_Y)⁻¹δ (Anderson §5.4, Hotelling's T² under the
alternative). With one covariance Σ for both samples and Δ² = δᵀΣ⁻¹δ (the mean difference in units of the
trial-to-trial spread), λ = N1·Δ²/(1 + N1/N2). The paper's B = 6, T = 8 leaves N1 − B = 2 denominator degrees of
freedom, which costs most of the power; `trials_for_power` gives the T that buys it back.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy.special import fdtrc
from scipy.stats import f as f_dist
from scipy.stats import ncf

RESOLUTION = 1e-6
_REL_RIDGE = 1e-9


@dataclass(frozen=True)
class BFTestResult:
    """Outcome of :func:`behrens_fisher_test`. ``df = (B, n1 − B)``; n1 ≤ n2 are the sample sizes as used."""

    F: float
    df: tuple[int, int]
    p_value: float
    reject: bool
    alpha: float
    n1: int
    n2: int
    swapped: bool = False
    first_n: int | None = None
    first_p: float | None = None
    futility: float | None = None
    level: float | None = None

    def explain(self) -> str:
        """One readable line: F, its degrees of freedom, p against α (or, for `two_look_test`, against α₂ with the
        first look's p against the futility bound) and the verdict."""
        verdict = "reject H0 (means differ)" if self.reject else "keep H0 (same mean)"
        if self.first_p is None:
            return (f"Behrens–Fisher F({self.df[0]},{self.df[1]}) = {self.F:.3g}, p = {self.p_value:.3g} "
                    f"{'<' if self.reject else '≥'} α = {self.alpha:g}: {verdict}")
        assert self.futility is not None  # two_look_test sets it with first_p
        first = f"{'≤' if self.first_p <= self.futility else '>'} futility {self.futility:g}"
        if self.level is None:  # the profile stopped at the first look (`two_look_test`: H0 is kept there)
            return (f"Behrens–Fisher, first look only: F({self.df[0]},{self.df[1]}) = {self.F:.3g} on {self.n1} "
                    f"trials, p = {self.first_p:.3g} {first}: {verdict}; no more trials can reject it")
        final = f"{'<' if self.p_value < self.level else '≥'} α₂ = {self.level:.3g}"
        return (f"Behrens–Fisher, two looks at α = {self.alpha:g}: first look ({self.first_n} trials) p = "
                f"{self.first_p:.3g} {first}; F({self.df[0]},{self.df[1]}) = {self.F:.3g} on {self.n1} trials, "
                f"p = {self.p_value:.3g} {final}: {verdict}")

    def to_dict(self) -> dict:
        """The result as plain JSON."""
        d = asdict(self)
        d["df"] = list(self.df)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BFTestResult:
        """The result `to_dict` wrote (``d``)."""
        return cls(**{**d, "df": tuple(d["df"])})


def _as_trials(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (trials × features), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _scheffe_F(X: np.ndarray, y_head: np.ndarray, y_total: np.ndarray, n2: int) -> float:
    """F of Scheffé's solution from X (N1 × B), the first N1 rows of Y in random order, the sum of all N2 rows."""
    n1, b = X.shape
    z = X - np.sqrt(n1 / n2) * y_head + (y_head.sum(axis=0) / np.sqrt(n1 * n2) - y_total / n2)
    zbar = z.mean(axis=0)
    d = z - zbar
    A = d.T @ d
    scale = max(1.0, float(np.abs(X).max()), float(np.abs(y_head).max()), float(np.abs(y_total).max()) / n2)
    delta = n1 * (RESOLUTION * scale) ** 2 + _REL_RIDGE * float(np.trace(A)) / b
    A[np.diag_indices(b)] += delta
    q = float(zbar @ np.linalg.solve(A, zbar))
    return max(0.0, (n1 - b) / b * n1 * q)


def behrens_fisher_test(X, Y, alpha: float, seed: int | np.random.Generator = 0) -> BFTestResult:
    """Test H0: mean(X) = mean(Y) with unknown, unequal covariances (Scheffé's solution; see the module doc).

    X: the new dataset's trial matrix (N1 × B); Y: all trial vectors of the group's members (N2 × B), normally
    N2 ≥ N1 (otherwise the roles swap). ``seed``: an int or a :class:`numpy.random.Generator` (then it is
    advanced) that draws the random order of Y. Raises ``ValueError`` when min(N1, N2) ≤ B, on mismatched widths
    and on non-finite input.
    """
    X = _as_trials(X, "X")
    Y = _as_trials(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same number of features, got {X.shape[1]} and {Y.shape[1]}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return _bf_core(X, Y, Y.sum(axis=0), alpha, seed)


def _bf_core(X: np.ndarray, Y: np.ndarray, y_total: np.ndarray, alpha: float,
             seed: int | np.random.Generator) -> BFTestResult:
    """The test on validated input; ``y_total`` = ``Y.sum(axis=0)`` (the grouper keeps it as a running sum)."""
    swapped = len(X) > len(Y)
    if swapped:
        X, Y, y_total = Y, X, X.sum(axis=0)
    n1, b = X.shape
    n2 = len(Y)
    if n1 <= b:
        raise ValueError(f"the Behrens–Fisher test needs more trials than features: the smaller sample has "
                         f"{n1} rows for B = {b} features (need at least {b + 1}); raise T or use fewer landmarkers")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    head = Y[rng.choice(n2, size=n1, replace=False)]
    return _result(_scheffe_F(X, head, y_total, n2), b, n1, n2, alpha, swapped)


def paired_test(X, Ybar, alpha: float) -> BFTestResult:
    """Eq. 15 with the trial order kept (see the module doc): X (n × B), the new dataset's trials; Ybar (n × B), the
    group members' average of trial t in row t (the same landmarker seeds and images as X's row t). Exact for
    normal data, n > B needed (ValueError otherwise, and for mismatched shapes or non-finite input)."""
    return _paired_core(*_paired_input(X, Ybar, alpha), alpha)


def _paired_input(X, Ybar, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """X and Ybar as float arrays, checked for the paired test (`paired_test`, `two_look_test`)."""
    X = _as_trials(X, "X")
    Ybar = _as_trials(Ybar, "Ybar")
    if X.shape != Ybar.shape:
        raise ValueError(f"the paired test needs X and Ybar of one shape (trial t against trial t), got {X.shape} "
                         f"and {Ybar.shape}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n, b = X.shape
    if n <= b:
        raise ValueError(f"the paired test needs more trials than features: {n} paired trials for B = {b} (need at "
                         f"least {b + 1})")
    return X, Ybar


def _paired_core(X: np.ndarray, Ybar: np.ndarray, alpha: float) -> BFTestResult:
    """`paired_test` on validated input (the grouper's rows are checked once, when it observes them)."""
    n, b = X.shape
    # with N1 = N2 and y in trial order, Scheffé's z_t is x_t − ȳ_t (the two sum terms cancel)
    return _result(_scheffe_F(X, Ybar, Ybar.sum(axis=0), n), b, n, n, alpha, False)


#: The second look's level α₂ is calibrated on this many draws under H0 (`two_look_level`): at α = 0.005 about
#: 2,000 of them reject, so the calibrated size is α to a relative 2 %.
CALIBRATION_DRAWS = 400_000
_CALIBRATION_SEED = 20261203


def two_look_test(X, Ybar, first: int, alpha: float, futility: float = 0.2) -> BFTestResult:
    """The paired test (`paired_test`) in two looks, for a profile that stops early on clear cases.

    Look 1 uses the first ``first`` trials; its p-value p₁ > ``futility`` keeps H0 there (the profile may stop:
    more trials are not needed to keep it). Otherwise the test looks again at all n trials and rejects when its
    p-value p₂ < α₂. So H0 is rejected exactly when p₁ ≤ futility and p₂ < α₂, and α₂ = `two_look_level` makes
    the probability of that α under H0. There is no rejection at look 1: a rejected dataset founds a group, and a
    founder's profile is completed anyway (later datasets are tested against all its trials), so stopping it early
    would save nothing.

    Exact under the paired test's model: the differences z_t = x_t − ȳ_t are i.i.d. normal, and both looks'
    statistics (Hotelling's T² on the first ``first`` and on all n of the same z_t) are unchanged by any invertible
    linear map of z. Their joint law under H0 is therefore that of standard normal z_t, whatever the covariances,
    and α₂ computed there holds for every covariance. ``first`` ≥ n, or ≤ B, leaves a single look at α."""
    X, Ybar = _paired_input(X, Ybar, alpha)
    if not 0.0 < futility < 1.0:
        raise ValueError(f"futility must be in (0, 1), got {futility}")
    return _two_look_core(X, Ybar, int(first), alpha, futility)


def _two_look_core(X: np.ndarray, Ybar: np.ndarray, first: int, alpha: float, futility: float) -> BFTestResult:
    """`two_look_test` on validated input."""
    n, b = X.shape
    if not b < first < n:
        return _paired_core(X, Ybar, alpha)
    p1 = _paired_core(X[:first], Ybar[:first], alpha).p_value
    level = two_look_level(b, first, n, alpha, futility)
    r = _paired_core(X, Ybar, level)
    return replace(r, reject=bool(r.reject and p1 <= futility), alpha=float(alpha), first_n=first,
                   first_p=float(p1), futility=float(futility), level=level)


def _hotelling_p(z: np.ndarray) -> np.ndarray:
    """p-values of Hotelling's one-sample T² (mean 0) for a batch of samples z (R × n × B)."""
    _, n, b = z.shape
    zbar = z.mean(axis=1)
    d = z - zbar[:, None, :]
    A = np.einsum("rnb,rnc->rbc", d, d)
    q = np.einsum("rb,rb->r", zbar, np.linalg.solve(A, zbar[:, :, None])[:, :, 0])
    return fdtrc(b, n - b, (n - b) / b * n * q)


@functools.lru_cache(maxsize=64)
def two_look_level(b: int, first: int, n: int, alpha: float, futility: float) -> float:
    """α₂ of `two_look_test`: P(p₁ ≤ futility and p₂ < α₂) = α under H0, for B features, ``first`` trials at look 1
    and n at look 2. Computed on `CALIBRATION_DRAWS` draws of standard normal differences (their law is the law for
    every covariance; see `two_look_test`) with a fixed seed, so the same arguments always give the same α₂."""
    if not b < first < n:
        raise ValueError(f"two looks need B < first < n, got B = {b}, first = {first}, n = {n}")
    rng = np.random.default_rng(_CALIBRATION_SEED)
    kept = []
    for start in range(0, CALIBRATION_DRAWS, 50_000):
        z = rng.standard_normal((min(50_000, CALIBRATION_DRAWS - start), n, b))
        p1 = _hotelling_p(z[:, :first])
        kept.append(_hotelling_p(z[p1 <= futility]))
    p2 = np.sort(np.concatenate(kept))
    k = int(round(alpha * CALIBRATION_DRAWS))   # the number of draws α₂ must reject
    if k >= len(p2):
        return 1.0
    return float(0.5 * (p2[k - 1] + p2[k])) if k > 0 else float(0.5 * p2[0])


def _result(F: float, b: int, n1: int, n2: int, alpha: float, swapped: bool) -> BFTestResult:
    p = float(fdtrc(b, n1 - b, F))
    return BFTestResult(F=float(F), df=(b, n1 - b), p_value=p, reject=bool(p < alpha), alpha=float(alpha),
                        n1=n1, n2=n2, swapped=swapped)


def power(b: int, n1: int, n2: int, distance: float, alpha: float) -> float:
    """Probability that the test rejects H0 for samples of n1 and n2 trials (n1 ≤ n2) of B features whose means
    differ by ``distance`` = Δ Mahalanobis units of the covariance both share (see the module doc: F ~ noncentral
    F(B, n1 − B, n1·Δ²/(1 + n1/n2))). ``distance = 0`` gives the size, ``alpha``."""
    if not 0 < b < n1 <= n2:
        raise ValueError(f"power needs B < n1 ≤ n2, got B = {b}, n1 = {n1}, n2 = {n2}")
    if distance < 0 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need distance ≥ 0 and alpha in (0, 1), got {distance}, {alpha}")
    critical = f_dist.isf(alpha, b, n1 - b)
    nc = n1 * distance ** 2 / (1 + n1 / n2)
    return float(alpha if nc == 0 else ncf.sf(critical, b, n1 - b, nc))


def trials_for_power(b: int, distance: float, alpha: float, target: float = 0.8, group_trials: int | None = None,
                     max_trials: int = 1000) -> int:
    """The fewest trials T per landmarker for which a new dataset (n1 = T) is told apart from a group whose means
    differ by ``distance`` (Δ, as in `power`) with probability ≥ ``target``. ``group_trials``: the trials the group
    holds (default T: a group of one dataset, the hardest and, early in a stream, the usual case)."""
    if not 0.0 < target < 1.0 or target <= alpha:
        raise ValueError(f"target power must lie in (alpha, 1), got {target}")
    for t in range(b + 1, max_trials + 1):
        n2 = t if group_trials is None else max(t, group_trials)
        if power(b, t, n2, distance, alpha) >= target:
            return t
    raise ValueError(f"no T ≤ {max_trials} reaches power {target} for B = {b}, Δ = {distance}, α = {alpha}")
