"""The stream benchmark's accounting (paper 002 §3.1.2): what each method cost and what it lost.

Per dataset a method reports an `Outcome`; per method and stream order we sum and average:

* ``search_s``: wall seconds of the search trials the method ran for the dataset (0 for a reuse);
* ``train_s``: wall seconds of training the model the dataset ends up with when that training is not already a
  search trial (a reused model is trained afresh; a searched model's best trial at full budget *is* its training);
* ``overhead_s``: landmarker profiling (or statistical meta-features) for the dataset;
* ``total_search_s`` = Σ (search_s + train_s + overhead_s). Counting a reuse's one training keeps the comparison
  honest: standalone search pays for training its final model inside the search, so the reusing method pays too.
* ``cost``: the same work in training FLOPs (`trautoml.decision.Decision.total_flops`: every landmarker trial,
  search trial, final, reuse and escalation training, counted per image processed), a unit the machine's load
  cannot move; ``overhead_cost`` its profiling part. Seconds stay beside it.
* ``warm_won``: searches whose best model was one of the warm-start models it was given.
* ``tre`` = (1/N) Σ (e_i − e*_i) / e*_i on test error, e* from the standalone search of the same backend (paper
  §3.1). A perfect standalone model (e* = 0) would make the ratio infinite; e* is floored at ``ERROR_FLOOR`` and
  the floor is reported.
* ``tre_median``: the median of the same ratios, reported beside the paper's mean. One dataset whose standalone
  error is tiny (2.5 % own against 12 % reused gives +3.8) can carry the mean alone: that happened in 4 of the 5
  orders of the ``small`` benchmark. The median says what a typical dataset lost.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score

ERROR_FLOOR = 1e-3


@dataclass
class Outcome:
    """What one method did for one dataset: its ``group`` (None: a group of its own), ``outcome`` (``searched`` or
    ``reused``), ``test_error`` and the seconds of search, of the final training and of profiling overhead (see the
    module docstring); ``escalated``: the accuracy guard refused a reuse and a search ran (its seconds are in
    ``search_s``); ``guard_stood``: a reuse the accuracy guard judged and let stand (not off, not waiting for
    enough searched datasets, not escalated)."""
    dataset: str
    family: str
    group: str | None
    outcome: str            # searched | reused
    test_error: float
    search_s: float
    train_s: float
    overhead_s: float
    escalated: bool = False
    cost: float = 0.0            # FLOPs of search + training + profiling
    overhead_cost: float = 0.0   # FLOPs of profiling
    warm_won: bool = False
    guard_stood: bool = False

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


def relative_errors(errors: Sequence[float], reference: Sequence[float]) -> np.ndarray:
    """(e_i − e*_i) / e*_i per dataset, with e* floored at ERROR_FLOOR; TRE is their mean."""
    e = np.asarray(errors, dtype=float)
    ref = np.maximum(np.asarray(reference, dtype=float), ERROR_FLOOR)
    if e.shape != ref.shape or e.size == 0:
        raise ValueError(f"TRE needs one reference error per dataset, got {e.shape} and {ref.shape}")
    return (e - ref) / ref


def summarise_order(outcomes: Sequence[Outcome], reference_errors: dict[str, float]) -> dict:
    """Metrics of one method on one stream order."""
    names = [o.dataset for o in outcomes]
    groups = [o.group if o.group is not None else f"solo:{o.dataset}" for o in outcomes]
    families = [o.family for o in outcomes]
    rel = relative_errors([o.test_error for o in outcomes], [reference_errors[n] for n in names])
    return {
        "total_search_s": float(sum(o.search_s + o.train_s + o.overhead_s for o in outcomes)),
        "cost": float(sum(o.cost for o in outcomes)),
        "overhead_cost": float(sum(o.overhead_cost for o in outcomes)),
        "warm_won": sum(o.warm_won for o in outcomes),
        "overhead_s": float(sum(o.overhead_s for o in outcomes)),
        "tre": float(np.mean(rel)),
        "tre_median": float(np.median(rel)),
        "groups": len(set(groups)),
        "ari": float(adjusted_rand_score(families, groups)),
        "reused": sum(o.outcome == "reused" for o in outcomes),
        "escalations": sum(o.escalated for o in outcomes),
        "escalation_s": float(sum(o.search_s for o in outcomes if o.escalated)),
    }


def aggregate(per_order: Sequence[dict], standalone_total: float | None) -> dict:
    """Mean and standard deviation over stream orders, plus the time ratio against standalone search."""
    keys = per_order[0].keys()
    out: dict = {}
    for k in keys:
        vals = np.array([m[k] for m in per_order], dtype=float)
        out[k] = float(vals.mean())
        out[f"{k}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    out["time_ratio_vs_standalone"] = (out["total_search_s"] / standalone_total
                                       if standalone_total else float("nan"))
    out["orders"] = len(per_order)
    return out
