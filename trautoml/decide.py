"""Decide (paper 002, Algorithm 1): reuse the group's model or search a new one.

Given the grouping's :class:`~trautoml.grouping.base.Assignment` of dataset d_n:

* MAP cluster empty (``empty-cluster``) → run the search backend on d_n; d_n founds the group with the found model;
* MAP cluster non-empty and the Behrens–Fisher test rejects (``test-rejected``) → search a model for d_n; d_n founds
  a new group (the grouper has already put it into a fresh empty cluster) with it;
* the test keeps H0 (``test-accepted``) → reuse the group's model: the same architecture and training
  hyper-parameters (the spec), with weights trained afresh on d_n. Weights are never copied between datasets.

Baseline groupers (random, k-means, ...) report a join as ``test-accepted`` with no test and a founding as
``empty-cluster``; the same rules apply to them.

Feedback after a reuse (ours; the paper's reused models get "no feedback", §4). `check_reuse` compares the reused
model's validation accuracy on d_n with what the group's members reached with that same spec (their mean). When it
falls short by more than ``tolerance`` (a preset field, ``reuse_tolerance``), the reuse *escalates*:

* a search runs on d_n, warm-started from the group's spec (it is the first configuration the backend tries);
* d_n stays a member of its group. The grouping was a statement about profiles (the landmarkers see d_n as one of
  the group) and the grouper's state already counts it; taking it back would need an un-observe that the paper's
  sequential model does not have, and founding a group with d_n's profile inside another group's cluster would make
  the two groups indistinguishable to later datasets. So the group and its model stay as they are, and d_n gets
  *its own* model: the Decision's outcome is ``searched`` (reason still ``test-accepted``), its spec the found one,
  ``Decision.escalated`` records the numbers. Later members keep reusing the group's model;
* the found model is kept only if its final validation accuracy beats the reused one; otherwise d_n keeps the
  reused model (outcome ``reused``, ``Decision.escalated`` says the search did not help), so escalation never makes
  a decision worse on validation data.

Escalation is off by default in every preset (``reuse_tolerance=None``), since the paper has no such step and it
costs a search exactly where the paper saves one; turn it on with ``reuse_tolerance=0.1`` (or ``--set``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

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

    def describe(self) -> str:
        """What the plan does, one line for people (the stage line and the decision's explanation)."""
        if self.action == REUSE:
            return f"reuse the model of group {self.group} ({self.spec.key()}), weights trained afresh"
        if self.escalated:
            return (f"the reused model of group {self.group} fell short: search a model of its own, warm-started "
                    "from the group's")
        if self.reason == "test-rejected":
            return f"the test refused the merge: search a model and found group {self.group}"
        return f"no group fits: search a model and found group {self.group}"


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


@dataclass(frozen=True)
class ReuseCheck:
    """Outcome of `check_reuse`. ``reused_val``: the reused model's validation accuracy on the new dataset;
    ``reference``: the mean the group's members reached with the same spec (None: no member measured); ``tolerance``:
    the allowed shortfall (None: the check is off); ``escalate``: search after all."""

    reused_val: float
    reference: float | None
    tolerance: float | None
    escalate: bool

    def to_dict(self) -> dict:
        """The check as plain JSON (logged with the decision)."""
        return {"reused_val": self.reused_val, "reference": self.reference, "tolerance": self.tolerance,
                "escalate": self.escalate}


def check_reuse(reused_val: float, member_vals: Sequence[float], tolerance: float | None) -> ReuseCheck:
    """Escalate when the reused model's validation accuracy is more than ``tolerance`` below the mean that the
    group's members reached with the same spec. Off (never escalates) when ``tolerance`` is None."""
    reference = sum(member_vals) / len(member_vals) if member_vals else None
    escalate = tolerance is not None and reference is not None and reused_val < reference - tolerance
    return ReuseCheck(float(reused_val), reference, tolerance, bool(escalate))


def escalation(p: Plan) -> Plan:
    """The plan after a failed reuse check: a search warm-started from the group's model; the group is unchanged."""
    return Plan(SEARCH, p.reason, p.group, founds_group=False, spec=p.spec, warm_start=(p.spec,), escalated=True)
