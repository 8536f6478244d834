"""What every grouper shares: the :class:`Assignment` it returns, group bookkeeping and input checks.

A grouper sees datasets one at a time (``observe``) and puts each into a group for good: a group's model is chosen
when the group is founded and reused by the datasets that join it, so a decision is never revised. Group ids are
``"g1"``, ``"g2"``, ... in order of founding; dataset indices are 0-based in arrival order.

``Assignment.reason`` takes the three values of :data:`trautoml.decision.REASONS`:

* ``"empty-cluster"``: the dataset founds a new group (for the MH grouper: its MAP cluster was empty; for the
  baselines: whatever their own rule for opening a group is);
* ``"test-rejected"``: MH only: the MAP cluster was non-empty but the Behrens–Fisher test refused the merge, so
  the dataset founds a new group;
* ``"test-accepted"``: the dataset joins an existing group and reuses its model. The baselines run no test; they
  report a join with this value too (it is what the decision step acts on), with ``test = None`` and their rule
  in ``note``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trautoml.decision import REASONS

from .bftest import BFTestResult

#: Inputs beyond this magnitude are refused: features are accuracies in [0, 1] (or standardisable statistics);
#: the bound keeps every square and exponent finite, so no grouper can produce NaN or overflow warnings.
MAX_ABS = 1e6


@dataclass(frozen=True)
class Assignment:
    """The grouping decision for one dataset.

    ``log_posterior`` / ``runner_up_log_posterior``: MH only, the normalised log posteriors of the MAP cluster and
    of the second-best cluster; ``map_group`` / ``runner_up_group`` name them (None: an empty cluster). Under
    ``"test-rejected"`` the dataset's ``group`` is the freshly founded one, not ``map_group``.
    ``log_posterior_new``: MH only, log of the total posterior mass of all empty clusters ("a new group").
    """

    index: int
    group: str
    founded: bool
    reason: str
    method: str
    test: BFTestResult | None = None
    log_posterior: float | None = None
    runner_up_log_posterior: float | None = None
    map_group: str | None = None
    runner_up_group: str | None = None
    log_posterior_new: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, got {self.reason!r}")

    def explain(self) -> str:
        """One or two readable lines: what was decided and why."""
        head = f"dataset #{self.index}: {'founded' if self.founded else 'joined'} {self.group}"
        if self.log_posterior is None:
            return f"{head} ({self.method}: {self.note})" if self.note else f"{head} ({self.method})"
        runner = self.runner_up_group or "an empty cluster"
        post = (f"MAP cluster {self.map_group or 'empty'} at log posterior {self.log_posterior:.3g}, "
                f"runner-up {runner} at {self.runner_up_log_posterior:.3g}")
        if self.reason == "empty-cluster":
            return f"{head}: {post}; an empty MAP cluster means no group fits."
        return f"{head}: {post}." + (f"\n{self.test.explain()}" if self.test is not None else "")

    def to_dict(self) -> dict:
        """The assignment as plain JSON, its `explain` text included (the test as its dict)."""
        return {"index": self.index, "group": self.group, "founded": self.founded, "reason": self.reason,
                "method": self.method, "test": None if self.test is None else self.test.to_dict(),
                "log_posterior": self.log_posterior, "runner_up_log_posterior": self.runner_up_log_posterior,
                "map_group": self.map_group, "runner_up_group": self.runner_up_group,
                "log_posterior_new": self.log_posterior_new, "note": self.note, "extra": dict(self.extra),
                "explanation": self.explain()}


def group_id(g: int) -> str:
    """The id of group index ``g`` (0-based, founding order): ``g1``, ``g2``, …"""
    return f"g{g + 1}"


class Grouper:
    """Base class: group bookkeeping, the fixed feature width, input checks and the JSON state envelope."""

    name = "?"
    #: the trials after which a profile may stop (see `settled`); None: the grouper observes whole profiles
    first_look: int | None = None

    def __init__(self) -> None:
        self.dim: int | None = None
        self._labels: list[int] = []         # group index of each dataset, arrival order
        self._members: list[list[int]] = []  # dataset indices of each group, founding order

    # -- bookkeeping -------------------------------------------------------------------------------------------
    @property
    def n_observed(self) -> int:
        """How many datasets the grouper has seen."""
        return len(self._labels)

    @property
    def n_groups(self) -> int:
        """How many groups have been founded."""
        return len(self._members)

    def groups(self) -> dict[str, list[int]]:
        """Group id → member dataset indices (arrival order), groups in order of founding."""
        return {group_id(g): list(m) for g, m in enumerate(self._members)}

    def labels(self) -> list[str]:
        """The group id of every dataset seen, in arrival order."""
        return [group_id(g) for g in self._labels]

    def _record(self, g: int) -> tuple[str, bool]:
        """Put the next dataset into group ``g`` (``g == n_groups`` founds a new one)."""
        founded = g == len(self._members)
        if founded:
            self._members.append([])
        self._members[g].append(len(self._labels))
        self._labels.append(g)
        return group_id(g), founded

    def _assignment(self, g: int, note: str, **extra) -> Assignment:
        """A baseline's answer: founding → "empty-cluster", joining → "test-accepted" (see the module doc)."""
        index = self.n_observed
        gid, founded = self._record(g)
        return Assignment(index=index, group=gid, founded=founded, method=self.name, note=note, extra=extra,
                          reason="empty-cluster" if founded else "test-accepted")

    def observe(self, trials) -> Assignment:  # pragma: no cover - every subclass overrides
        """Group one dataset from its trials (T × B landmarker accuracies; see the subclass)."""
        raise NotImplementedError

    def settled(self, trials) -> bool:
        """Whether a profile may stop at these trials, its first ``first_look`` rows, because more trials could not
        change what `observe` decides. A grouper that observes whole profiles always says False. Changes nothing."""
        return False

    # -- input ---------------------------------------------------------------------------------------------------
    def _check(self, trials, allow_vector: bool = True) -> np.ndarray:
        """Validate one dataset's rows (T × B; a length-B vector is one row when ``allow_vector``)."""
        a = np.array(trials, dtype=np.float64)  # a copy: the caller may reuse its array
        if a.ndim == 1 and allow_vector:
            a = a[None, :]
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
            want = "a T × B array of trials" + (" or a length-B vector" if allow_vector else "")
            raise ValueError(f"{self.name}: expected {want}, got shape {np.shape(trials)}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{self.name}: input contains NaN or infinite values")
        if np.abs(a).max() > MAX_ABS:
            raise ValueError(f"{self.name}: input values beyond ±{MAX_ABS:g} are refused (landmarker features are "
                             f"accuracies in [0, 1])")
        if self.dim is not None and a.shape[1] != self.dim:
            raise ValueError(f"{self.name}: this grouper works in B = {self.dim} dimensions (fixed by the first "
                             f"dataset), got {a.shape[1]} columns")
        return a

    # -- state ---------------------------------------------------------------------------------------------------
    def _base_state(self) -> dict:
        return {"type": self.name, "version": 1, "dim": self.dim, "labels": list(self._labels)}

    def _restore_base(self, d: dict) -> None:
        if d.get("type") != self.name:
            raise ValueError(f"state is for grouper {d.get('type')!r}, not {self.name!r}")
        self.dim = d["dim"]
        for g in d["labels"]:
            self._record(g)

    def to_dict(self) -> dict:  # pragma: no cover - every subclass overrides
        """The grouper's whole state as plain JSON (``type``: its name; `from_dict` restores it)."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: dict) -> Grouper:  # pragma: no cover
        """A grouper restored from `to_dict`'s ``d``, making the same future decisions as the one saved (ValueError when
        ``d`` is another grouper's state)."""
        raise NotImplementedError


def rng_state(rng: np.random.Generator) -> dict:
    """The generator's state as plain JSON (PCG64: two 128-bit Python ints and two small ints)."""
    return dict(rng.bit_generator.state)


def rng_from_state(state: dict) -> np.random.Generator:
    """A generator continuing from ``state`` (`rng_state`'s output)."""
    bg = getattr(np.random, state["bit_generator"])()
    bg.state = state
    return np.random.Generator(bg)
