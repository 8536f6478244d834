"""Decide (paper 002, Algorithm 1): reuse the group's model or search a new one.

Given the grouping's :class:`~trautoml.grouping.base.Assignment` of dataset d_n:

* MAP cluster empty (``empty-cluster``) → run the search backend on d_n; d_n founds the group with the found model;
* MAP cluster non-empty and the Behrens–Fisher test rejects (``test-rejected``) → search a model for d_n; d_n founds
  a new group (the grouper has already put it into a fresh empty cluster) with it;
* the test keeps H0 (``test-accepted``) → reuse the group's model: the same architecture and training
  hyper-parameters (the spec). The paper trains its weights afresh on d_n (``reuse="retrain"``). By default
  (``reuse="fine-tune"``, ours) d_n starts from the weights the member of the group nearest to it by profile
  trained (`trautoml.models.transfer`: a new classifier where the class counts differ, an input adapter where the
  image shape does) and trains for `fine_tune_epochs`, a fraction of a training: a subsample, a re-collection or a
  class subset of a dataset the group already solved is a fine-tuning job. When the accuracy guard finds it short,
  it trains on to the full training's epochs before it escalates to a search.

Baseline groupers (random, k-means, ...) report a join as ``test-accepted`` with no test and a founding as
``empty-cluster``; the same rules apply to them.

The accuracy guard after a reuse (ours; the paper's reused models get "no feedback", §4). The group's model is
trained on d_n (fine-tuned or afresh, above); the reuse stands only if its validation accuracy on d_n is within a
tolerance of what d_n is *predicted* to reach (`predict_accuracy`):

* the prediction is anchored on the group's members that trained the group's model: each member's skill k_j,
  moved by the differences in difficulty and in size, k_j + b·(m_n − m_j) + c·(ln N_n − ln N_j), averaged over the
  members, then turned back into an accuracy for d_n's number of classes. Skill is accuracy above chance,
  k = (a − 1/C)/(1 − 1/C) for C classes, for the validation accuracies and the landmarkers' alike: a 6-class subset
  of a 10-class collection raises every accuracy by chance alone. m is a dataset's difficulty as the profile sees
  it (its landmarkers' mean skill) and N its number of training images. The profile is blind to N by design (a
  fixed image budget, so that a dataset and its subsample profile alike), but the final training is not: a half
  subsample reaches less with any model. c = `SIZE_SLOPE`, measured once on the reference data (a model trained
  afresh on a dataset and on its half for the same epochs, as every final training runs (`training_epochs`):
  0.094 skill per unit of ln N); b is
  fitted on the stream, the slope of the searched datasets' skill (less c·ln N) on m, least squares, clipped at 0
  (an easier profile never predicts a worse model), once 3 searched datasets give one; before, the members' skill
  is moved by size alone. Why this and
  not a race of the group's model against other groups' best models: it costs nothing (the numbers are
  in the workspace) and needs no extra training; a comparison with the members alone (the first version of this
  check) could not tell a bad reuse from a hard or a smaller dataset. Why one fitted number and not the whole
  profile: the stream gives one point per search (7 by the middle of the benchmark stream), too few for B + 1
  coefficients, and too few to fit c beside b (tried: with c fitted on the stream from its fifth search, subsamples
  arriving earlier still set the guard off). Measured on the benchmark streams before the size and skill terms,
  the guard fired on subsamples whose reused model was as good as any search found (digits' half: 0.917 reused,
  0.965 predicted from the full digits; the escalation's search did not beat it);
* the tolerance is ``max(reuse_tolerance, t_{n−2, 1−GUARD_ALPHA} · σ · sqrt(1 + 1/M + (m_n − m̄_M)²/S_mm))``
  (`guard_tolerance`): the lower end of a one-sided prediction interval of the least-squares fit, σ its residual
  sd (in d_n's accuracy units) over n searched datasets, M the anchors, m̄_M their mean difficulty and S_mm the
  fitted difficulties' sum of squares. It states a false-alarm rate, ``GUARD_ALPHA`` = 2.5 %, for a reuse that is
  as good as the fit predicts, when the fit's errors are normal (measured by simulation, tests/test_guard_
  calibration.py). The first version fired at ``2·sqrt(σ² + s²)`` (s the validation set's binomial sd): a normal
  quantile with an estimated σ on n − 2 = 2 to 10 degrees of freedom and no term for the slope's or the anchors'
  uncertainty, it escalated 6–9 % of good reuses (the same simulation). ``reuse_tolerance`` (default 0.02) is a
  floor. Until the stream holds `MIN_FIT_POINTS` searched datasets there is no σ, and the guard does not judge
  (``ReuseCheck.waiting``; the explanation says so). Why a t interval and not a conformal one: a split or
  leave-one-out conformal bound at 97.5 % needs 39 residuals, and the streams give 4 to 12 searched datasets. How
  the prediction came to be, measured on the benchmark streams (so they shaped it): before σ existed, the guard
  fired on 2–4 datasets per stream whose escalation found nothing better (subsamples, a 6-class subset, a full
  dataset reusing its half's model, a photo set predicted 0.99 from a slope fitted on 3 points); each correction
  of the prediction (skill, size) moved the false alarms elsewhere. What it cannot see: a shortfall smaller than
  the profile's prediction error (σ ≈ 0.07–0.10 on the benchmark streams), so a reuse 4–10 points worse than its
  own search stands, and the benchmark counts those misses;
* when it fails, the reuse *escalates*:

  - a search runs on d_n, warm-started from the group's spec (it is the first configuration the backend tries);
  - d_n stays a member of its group. The grouping was a statement about profiles (the landmarkers see d_n as one of
    the group) and the grouper's state already counts it; taking it back would need an un-observe that the paper's
    sequential model does not have, and founding a group with d_n's profile inside another group's cluster would
    make the two groups indistinguishable to later datasets. So the group and its model stay as they are, and d_n
    gets *its own* model: the Decision's outcome is ``searched`` (reason still ``test-accepted``), its spec the
    found one, ``Decision.escalated`` records the numbers. Later members keep reusing the group's model;
  - when the search's best is the group's model itself (its warm-started trial ran with another seed and can score
    well where the final training did not: seen on a texture dataset, 0.97 in the search, 0.70 in the final
    training), the best *other* model of the search is trained instead (`best_other`): the group's model has
    been measured on d_n already, by its final training;
  - the found model is kept only if its final validation accuracy beats the reused one; otherwise d_n keeps the
    reused model (outcome ``reused``, ``Decision.escalated`` says the search did not help), so escalation never
    makes a decision worse on validation data.

The guard is on in every preset; ``reuse_tolerance=None`` (``--set reuse_tolerance=none``) turns it off, which is
the paper's plain reuse.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple
from collections.abc import Sequence

from trautoml.models.spec import ModelSpec

SEARCH, REUSE = "search", "reuse"


@dataclass(frozen=True)
class Plan:
    """What to do for one dataset. ``founds_group``: the dataset founds ``group`` with the model it gets."""

    action: str                      # "search" | "reuse"
    reason: str                      # empty-cluster | test-rejected | test-accepted
    group: str
    founds_group: bool
    spec: ModelSpec | None = None    # the group's model, for a reuse
    warm_start: tuple[ModelSpec, ...] = field(default_factory=tuple)
    escalated: bool = False
    prediction: Prediction | None = None   # what the dataset should reach with the group's model (a reuse)
    # a reuse: the group model's searched final training (images, epochs)
    source: tuple[int, float | None] | None = None
    # a reuse: the member of the group whose trained weights it fine-tunes ({"dataset", "weights"}), if any
    init: dict | None = None

    def describe(self) -> str:
        """What the plan does, one line for people (the stage line and the decision's explanation)."""
        if self.action == REUSE:
            assert self.spec is not None  # a reuse names the group's model
            start = (f"fine-tuned from the weights {self.init['dataset']} trained" if self.init is not None
                     else "weights trained afresh")
            return f"reuse the model of group {self.group} ({self.spec.key()}), {start}"
        if self.escalated:
            return (f"the reused model of group {self.group} fell short: search a model of its own, warm-started "
                    "from the group's")
        if self.reason == "test-rejected":
            return f"the test refused the merge: search a model and found group {self.group}"
        return f"no group fits: search a model and found group {self.group}"


def training_epochs(final_epochs: float | None, chosen_epochs: float | None, search_epochs: float) -> float:
    """The one rule for a model's final training, searched or reused alike: ``final_epochs`` (the preset's) epochs
    over the dataset's training images, else the epochs the model's search chose for it (``chosen_epochs``: a
    search's best resource; for a reuse, the epochs its founder's final training ran), else the search's full
    budget ``search_epochs``.

    The paper reuses "the same architecture and hyper-parameters, weights trained afresh" (002 Algorithm 1): the
    same epochs. An earlier rule trained a reuse for its founder's optimizer *steps* (2 × the epochs on a half
    subsample), which a searched dataset's final training never got: the benchmark's reference then trained less
    than the reuse it judged, and the whole TRE gain of that rule sat on the subsamples. One rule for every
    training keeps every row's comparison fair; a size-dependent length, if wanted, must apply to both."""
    return float(final_epochs or chosen_epochs or search_epochs)


def fine_tune_epochs(epochs: float, fraction: float) -> float:
    """Epochs of a reuse by fine-tuning: ``fraction`` (the preset's ``fine_tune_fraction``, chosen on the reference
    data by ``bench/measure_finetune.py``) of the epochs `training_epochs` gives every training from scratch. Its
    second stage, when the accuracy guard finds the first short, trains on for the rest: ``epochs`` in all."""
    return float(epochs) * float(fraction)


def plan(assignment, group_spec: ModelSpec | None) -> Plan:
    """Algorithm 1's branch for this assignment. ``group_spec``: the model of ``assignment.group`` if that group
    exists already (None for a group this dataset founds)."""
    reason = assignment.reason
    if assignment.founded or reason in ("empty-cluster", "test-rejected"):
        if not assignment.founded:
            raise ValueError(f"inconsistent assignment: reason {reason!r} but the dataset does not found a group")
        return Plan(SEARCH, reason, assignment.group, founds_group=True)
    if group_spec is None:
        raise ValueError(f"the grouper put the dataset into group {assignment.group}, which has no model in the "
                         "workspace")
    return Plan(REUSE, reason, assignment.group, founds_group=False, spec=group_spec)


class AccuracyPoint(NamedTuple):
    """One dataset as the accuracy guard sees it: ``level`` (its landmarkers' mean accuracy; None without a
    landmarker profile), ``size`` (training images), the validation accuracy ``val`` its model reached and its
    number of ``classes`` (size and classes None in records written before they were kept: no correction then)."""

    level: float | None
    size: int | None
    val: float
    classes: int | None = None


def skill(accuracy: float, classes: int | None) -> float:
    """Accuracy above chance, (a − 1/C)/(1 − 1/C); the accuracy itself when C is unknown."""
    return accuracy if not classes or classes < 2 else (accuracy - 1.0 / classes) / (1.0 - 1.0 / classes)


def _accuracy(k: float, classes: int | None) -> float:
    """The accuracy of skill ``k`` for C classes (the inverse of `skill`)."""
    return k if not classes or classes < 2 else 1.0 / classes + k * (1.0 - 1.0 / classes)


@dataclass(frozen=True)
class Prediction:
    """What a dataset is predicted to reach with its group's model (`predict_accuracy`). ``value``: the predicted
    validation accuracy (None: no member of the group has trained the group's model); ``sigma``: the fit's residual
    sd, in the dataset's accuracy (None before 4 points); ``slope``: b (skill per unit of the
    landmarkers' mean skill); ``size_slope``: c (`SIZE_SLOPE`, 0 when the size is unknown); ``members``: the anchors;
    ``points``: the searched datasets b was fitted on; ``spread``: the prediction error's sd in units of σ,
    sqrt(1 + 1/M + (m_n − m̄_M)²/S_mm) (M anchors, m̄_M their mean difficulty, S_mm the fit's spread of
    difficulties: the anchors' own errors and the slope's); ``df``: the residual's degrees of freedom, n − 2."""

    value: float | None
    sigma: float | None
    slope: float
    members: int
    points: int
    size_slope: float = 0.0
    spread: float = 1.0
    df: int | None = None

    def to_dict(self) -> dict:
        """The prediction as plain JSON."""
        return {"value": self.value, "sigma": self.sigma, "slope": self.slope, "size_slope": self.size_slope,
                "members": self.members, "points": self.points, "spread": self.spread, "df": self.df}


#: Skill above chance a reused model loses per unit of ln(training images), measured on the reference data (no
#: benchmark stream's): the mean over 4 families of a model searched on each and trained afresh on it and on its
#: 50 % subsample for the same epochs (`training_epochs`), 3 seeds, the ``small`` preset (``bench/measure_reuse.py``,
#: 2026-12-03: 0.094 under this rule, 0.051 when a reuse trained for its founder's steps).
SIZE_SLOPE = 0.094
#: Searched datasets the stream must hold before the guard judges: the fit's residual sd needs 2 spare points.
MIN_FIT_POINTS = 4


def _size_term(point: AccuracyPoint) -> float:
    return SIZE_SLOPE * math.log(point.size) if point.size else 0.0


class _Fit(NamedTuple):
    slope: float
    sigma: float | None
    sxx: float
    n: int


def _fit(points: Sequence[AccuracyPoint]) -> _Fit | None:
    """b, the residual sd, S_mm = Σ(m − m̄)² and n of k − SIZE_SLOPE·ln N ≈ a + b·m with b ≥ 0 over the ``points``
    with a level, or None when the levels do not vary."""
    import numpy as np

    leveled = [(p.level, p) for p in points if p.level is not None]
    m = np.array([skill(level, p.classes) for level, p in leveled])
    k = np.array([skill(p.val, p.classes) - _size_term(p) for _, p in leveled])
    if np.ptp(m) == 0:
        return None
    mc, kc = m - m.mean(), k - k.mean()               # the intercept drops out by centring
    b = max(0.0, float(mc @ kc / (mc @ mc)))
    resid = kc - b * mc
    sigma = float(np.sqrt(resid @ resid / (len(k) - 2))) if len(k) >= MIN_FIT_POINTS else None
    return _Fit(b, sigma, float(mc @ mc), len(k))


def predict_accuracy(level: float | None, size: int | None, members: Sequence[AccuracyPoint],
                     searched: Sequence[AccuracyPoint], classes: int | None = None) -> Prediction:
    """The validation accuracy a dataset should reach with its group's model (see the module doc): its landmarkers'
    mean accuracy ``level`` (None when its features are no landmarker profile), ``size`` training images and
    ``classes`` classes. ``members``: the group's members that trained the group's model; ``searched``: every
    dataset of the stream that got a searched model of its own."""
    pts = [p for p in searched if p.level is not None] if level is not None else []
    fit = _fit(pts) if len(pts) >= 3 else None
    b, sigma = (fit.slope, fit.sigma) if fit is not None else (0.0, None)
    anchors, levels = [], []
    for m in members:
        k = skill(m.val, m.classes)
        if level is not None and m.level is not None:
            k += b * (skill(level, classes) - skill(m.level, m.classes))
            levels.append(skill(m.level, m.classes))
        if size and m.size:
            k += SIZE_SLOPE * (math.log(size) - math.log(m.size))
        anchors.append(k)
    # a skill in [0, 1]: no better than perfect (a slope fitted on a few points can carry an easy dataset past it)
    # and no worse than chance (a size correction can carry a member at chance below it)
    value = _accuracy(min(1.0, max(0.0, sum(anchors) / len(anchors))), classes) if anchors else None
    spread, df = 1.0, None
    if sigma is not None and fit is not None:
        sigma *= _accuracy(1.0, classes) - _accuracy(0.0, classes)  # skill → accuracy for this dataset's classes
        shift = skill(level, classes) - sum(levels) / len(levels) if levels and level is not None else 0.0
        spread = math.sqrt(1.0 + 1.0 / max(1, len(anchors)) + shift ** 2 / fit.sxx)
        df = fit.n - 2
    return Prediction(value, sigma, b, len(anchors), len(pts) if fit is not None else 0, SIZE_SLOPE if size else 0.0,
                      spread, df)


@dataclass(frozen=True)
class ReuseCheck:
    """Outcome of `check_reuse`. ``reused_val``: the reused model's validation accuracy on the new dataset;
    ``reference``: what it was predicted to reach (None: nothing to compare with); ``tolerance``: the allowed
    shortfall (None: the guard is off); ``escalate``: search after all; ``prediction``: how ``reference`` came;
    ``waiting``: the stream has not yet given the prediction an error estimate, so the guard does not judge."""

    reused_val: float
    reference: float | None
    tolerance: float | None
    escalate: bool
    prediction: dict | None = None
    waiting: bool = False

    def to_dict(self) -> dict:
        """The check as plain JSON (logged with the decision)."""
        return {"reused_val": self.reused_val, "reference": self.reference, "tolerance": self.tolerance,
                "escalate": self.escalate, "prediction": self.prediction, "waiting": self.waiting}

    @classmethod
    def from_dict(cls, d: dict) -> ReuseCheck:
        """The check `to_dict` wrote (records written before ``prediction`` / ``waiting`` existed read too)."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def verdict(self) -> str:
        """``off``, ``waiting`` (no error estimate for the prediction yet), ``escalated`` or ``stood`` (the tag
        ``trautoml.accuracy_guard`` of a reuse's MLflow run)."""
        if self.tolerance is None:
            return "off"
        if self.escalate:
            return "escalated"
        return "waiting" if self.waiting else "stood"

    def explain(self) -> str:
        """One line for the decision's explanation."""
        verdict = self.verdict
        if verdict == "off":
            return f"accuracy guard off (reused val {self.reused_val:.3f})"
        if self.reference is None:
            return f"accuracy guard: no member trained the group's model yet, reused val {self.reused_val:.3f} kept"
        if verdict == "waiting":
            return (f"accuracy guard: reused val {self.reused_val:.3f}, predicted {self.reference:.3f}, but the stream "
                    f"has fewer than {MIN_FIT_POINTS} searched datasets to tell the prediction's error: "
                    "the reuse stands")
        return (f"accuracy guard: reused val {self.reused_val:.3f} vs predicted {self.reference:.3f} − "
                f"{self.tolerance:.3f}: {'escalate to a search' if verdict == 'escalated' else 'the reuse stands'}")


#: The accuracy guard's one-sided false-alarm rate: the chance that a reuse as good as the profile predicts is
#: escalated (`check_reuse`; measured by simulation in tests/test_guard_calibration.py).
GUARD_ALPHA = 0.025


def guard_tolerance(prediction: Prediction, floor: float) -> float:
    """The shortfall the guard allows: max(``floor``, t_{df, 1 − GUARD_ALPHA} · σ · spread), the lower end of the
    one-sided prediction interval of a least-squares fit with estimated σ (Student's t with the residual's n − 2
    degrees of freedom; ``spread`` carries the anchors' and the slope's own uncertainty)."""
    from scipy import stats

    assert prediction.sigma is not None
    q = stats.t.ppf(1.0 - GUARD_ALPHA, prediction.df) if prediction.df else stats.norm.ppf(1.0 - GUARD_ALPHA)
    return max(float(floor), float(q) * prediction.sigma * prediction.spread)


def check_reuse(reused_val: float, prediction: Prediction | None, floor: float | None) -> ReuseCheck:
    """Escalate when the reused model's validation accuracy is below ``prediction.value`` − `guard_tolerance` (see
    the module doc). Off (never escalates) when ``floor`` is None; nothing to compare with when the prediction has
    no value; no judgement while it has no σ (``waiting``)."""
    value = None if prediction is None else prediction.value
    if floor is None or prediction is None or value is None or prediction.sigma is None:
        return ReuseCheck(float(reused_val), value, floor, False,
                          None if prediction is None else prediction.to_dict(),
                          waiting=floor is not None and value is not None)
    tolerance = guard_tolerance(prediction, floor)
    return ReuseCheck(float(reused_val), value, tolerance, bool(reused_val < value - tolerance),
                      prediction.to_dict())


def best_other(trials: Sequence, spec: ModelSpec):
    """The search's best trial among the models other than ``spec``: the highest validation accuracy at the largest
    resource any other model reached (as a Hyperband-style search ranks its survivors). None when no other model
    trained successfully."""
    from trautoml.search import best_of

    others = [t for t in trials if t.status == "ok" and t.spec != spec]
    if not others:
        return None
    top = max(t.resource for t in others)
    return best_of([t for t in others if t.resource == top])


def escalation(p: Plan) -> Plan:
    """The plan after a failed reuse check: a search warm-started from the group's model; the group is unchanged."""
    assert p.spec is not None  # only a reuse, which names the group's model, is checked
    return Plan(SEARCH, p.reason, p.group, founds_group=False, spec=p.spec, warm_start=(p.spec,), escalated=True)
