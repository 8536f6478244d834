"""What grouping did for a stream: searches run and models reused, search time spent beside an estimate of what
searching every dataset would have cost, and the accuracy of reused datasets beside that of searched ones.

The estimate (`summarize`): a dataset that ran a search counts with its measured search seconds; a dataset that
reused its group's model without searching counts with the mean search seconds of the datasets *of its group* that
did search (datasets grouped together are alike, so they cost alike to search), or, for a group with no measured
search, the mean over every dataset that searched. Profiling is the price of grouping and is reported beside it.

The net saving charges every piece of work: searching every dataset would have cost a search and a final training
each (estimated as above, from search + training per dataset), and grouping cost its profiles, its searches and
all its trainings, a reused model's training and an escalation's included: ``net_saved_seconds`` = estimated
all-search (search + training) seconds − (profiling + search + training seconds spent). The same figures are kept in
training FLOPs (``*_flops``, `trautoml.models.flops`), which the machine's load cannot change.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from collections.abc import Callable, Iterable, Sequence

ESTIMATE_METHOD = ("each dataset that reused a model is counted at the mean search seconds of its group's datasets "
                   "that searched (the stream's mean where its group has none); searched datasets at their measured "
                   "seconds; the net saving estimates search + training per dataset the same way and charges every "
                   "training spent, a reuse's included; FLOPs alike")


def ran_search(d) -> bool:
    """Whether a search ran for this decision: it was searched, or reused after an escalation's search."""
    return d.outcome == "searched" or bool(d.escalated)


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


@dataclass
class GroupSummary:
    """One group's share of the stream."""

    group: str
    datasets: int
    searched: int
    reused: int
    search_seconds: float
    estimated_all_search_seconds: float | None
    searched_test_accuracy: float | None
    reused_test_accuracy: float | None


@dataclass
class StreamSummary:
    """The stream-level answer to "what did grouping save, and can I trust it?" (see the module's docstring)."""

    datasets: int = 0
    groups: int = 0
    searched: int = 0                      # datasets whose model came from a search
    reused: int = 0                        # datasets that kept their group's model
    searches: int = 0                      # searches run (searched datasets + escalations)
    escalations: int = 0                   # reuses the accuracy guard refused, so a search ran
    escalations_kept_search: int = 0       # of those, the searched model beat the reused one
    profile_seconds: float = 0.0
    search_seconds: float = 0.0
    train_seconds: float = 0.0
    estimated_all_search_seconds: float | None = None
    saved_search_seconds: float | None = None
    net_saved_seconds: float | None = None     # every training charged, a reuse's included (module docstring)
    profile_flops: float = 0.0
    search_flops: float = 0.0
    train_flops: float = 0.0
    estimated_all_search_flops: float | None = None
    saved_search_flops: float | None = None
    net_saved_flops: float | None = None
    net_saved_share: float | None = None       # net_saved_flops / the FLOPs of searching and training every dataset
    searched_val_accuracy: float | None = None
    searched_test_accuracy: float | None = None
    reused_val_accuracy: float | None = None
    reused_test_accuracy: float | None = None
    reused_minus_group_test_accuracy: float | None = None  # mean over reused datasets: own − group's searched mean
    estimate_method: str = ESTIMATE_METHOD
    per_group: list[GroupSummary] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Every field as plain JSON, the per-group summaries included."""
        return asdict(self)

    def lines(self) -> list[str]:
        """The summary for people, a few lines."""
        if not self.datasets:
            return ["no datasets ingested yet"]
        out = [f"{self.datasets} datasets, {self.groups} groups: {self.searches} searches run, "
               f"{self.reused} models reused"
               + (f"; the accuracy guard escalated {self.escalations} reuse(s) to a search "
                  f"({self.escalations_kept_search} kept the searched model)" if self.escalations else "")]
        if self.estimated_all_search_seconds is not None:
            out.append(f"search time: {_secs(self.search_seconds)} spent; searching all {self.datasets} would have "
                       f"cost ≈ {_secs(self.estimated_all_search_seconds)} → {_secs(self.saved_search_seconds)} "
                       f"saved; profiling (the price of grouping) {_secs(self.profile_seconds)}, training "
                       f"{_secs(self.train_seconds)} → net {_secs(self.net_saved_seconds)}")
            flops = format_flops
            out.append(f"in training FLOPs: search {flops(self.search_flops)} spent; all-search ≈ "
                       f"{flops(self.estimated_all_search_flops)} → {flops(self.saved_search_flops)} saved; "
                       f"profiling {flops(self.profile_flops)}, training {flops(self.train_flops)} → net "
                       f"{flops(self.net_saved_flops)}"
                       + (f" ({self.net_saved_share:.0%} of searching and training every dataset)"
                          if self.net_saved_share is not None else ""))
            out.append("  estimate: " + self.estimate_method)
        acc = [f"searched {_acc(self.searched_test_accuracy)} ({self.searched})",
               f"reused {_acc(self.reused_test_accuracy)} ({self.reused})"]
        line = "test accuracy, mean: " + " | ".join(acc)
        if self.reused_minus_group_test_accuracy is not None:
            line += f"; reused vs their group's searched: {self.reused_minus_group_test_accuracy:+.3f}"
        out.append(line)
        return out

    def text(self) -> str:
        """`lines` joined into one string."""
        return "\n".join(self.lines())

    def markdown(self, max_groups: int = 20) -> str:
        """The summary as Markdown (the MLflow experiment's description), the first ``max_groups`` groups listed."""
        md = ["**trautoml stream summary**", ""] + [f"- {line.strip()}" for line in self.lines()]
        if self.per_group:
            md += ["", "| group | datasets | searched | reused | search s | all-search s (est.) | searched test "
                   "| reused test |", "|---|---|---|---|---|---|---|---|"]
            for g in self.per_group[:max_groups]:
                md.append(f"| {g.group} | {g.datasets} | {g.searched} | {g.reused} | {g.search_seconds:.1f} | "
                          f"{_num(g.estimated_all_search_seconds, '.1f')} | {_acc(g.searched_test_accuracy)} | "
                          f"{_acc(g.reused_test_accuracy)} |")
            if len(self.per_group) > max_groups:
                md.append(f"\n… and {len(self.per_group) - max_groups} more groups (`trautoml summary --json`)")
        return "\n".join(md)


def _secs(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.1f}s" if abs(s) < 120 else f"{s / 60:.1f}m"


def format_flops(x: float | None) -> str:
    """FLOPs for people: ``1.23 PFLOP``, ``-45.6 TFLOP``, ... (``-`` for None)."""
    if x is None:
        return "-"
    for unit, scale in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} FLOP"


def _acc(a: float | None) -> str:
    return "-" if a is None else f"{a:.3f}"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def summarize(decisions: Iterable) -> StreamSummary:
    """The StreamSummary of decisions in arrival order (`trautoml.decision.Decision` or anything alike)."""
    ds = list(decisions)
    if not ds:
        return StreamSummary()
    searched_secs = [d.search_seconds for d in ds if ran_search(d)]
    stream_mean = _mean(searched_secs)
    by_group: dict[str, list] = {}
    for d in ds:
        by_group.setdefault(d.group, []).append(d)
    per_group = [_group_summary(g, members, stream_mean) for g, members in by_group.items()]
    estimated = _all_search(by_group, lambda d: d.search_seconds)
    spent = float(sum(d.search_seconds for d in ds))
    profile = float(sum(d.profile_seconds for d in ds))
    all_work_seconds = _all_search(by_group, lambda d: d.search_seconds + d.train_seconds)
    estimated_flops = _all_search(by_group, lambda d: d.search_flops)
    all_work_flops = _all_search(by_group, lambda d: d.search_flops + d.train_flops)
    spent_flops = float(sum(d.search_flops for d in ds))
    total_flops = float(sum(d.profile_flops + d.search_flops + d.train_flops for d in ds))
    searched = [d for d in ds if d.outcome == "searched"]
    reused = [d for d in ds if d.outcome == "reused"]
    escalated = [d for d in ds if d.escalated]
    group_searched_test = {g: _mean([d.test_accuracy for d in m if d.outcome == "searched"])
                           for g, m in by_group.items()}
    gaps = [d.test_accuracy - group_searched_test[d.group] for d in reused
            if group_searched_test[d.group] is not None]
    return StreamSummary(
        datasets=len(ds), groups=len(by_group), searched=len(searched), reused=len(reused),
        searches=len(searched_secs), escalations=len(escalated),
        escalations_kept_search=sum(d.outcome == "searched" for d in escalated),
        profile_seconds=profile, search_seconds=spent, train_seconds=float(sum(d.train_seconds for d in ds)),
        estimated_all_search_seconds=estimated,
        saved_search_seconds=None if estimated is None else estimated - spent,
        net_saved_seconds=None if all_work_seconds is None else all_work_seconds - sum(
            d.profile_seconds + d.search_seconds + d.train_seconds for d in ds),
        profile_flops=float(sum(d.profile_flops for d in ds)), search_flops=spent_flops,
        train_flops=float(sum(d.train_flops for d in ds)), estimated_all_search_flops=estimated_flops,
        saved_search_flops=None if estimated_flops is None else estimated_flops - spent_flops,
        net_saved_flops=None if all_work_flops is None else all_work_flops - total_flops,
        net_saved_share=None if not all_work_flops else (all_work_flops - total_flops) / all_work_flops,
        searched_val_accuracy=_mean([d.val_accuracy for d in searched]),
        searched_test_accuracy=_mean([d.test_accuracy for d in searched]),
        reused_val_accuracy=_mean([d.val_accuracy for d in reused]),
        reused_test_accuracy=_mean([d.test_accuracy for d in reused]),
        reused_minus_group_test_accuracy=_mean(gaps), per_group=per_group)


def _estimate(members: list, cost: Callable, stream_mean: float | None) -> float | None:
    """What searching each of a group's ``members`` would have cost in ``cost`` (a figure of a decision): measured
    for those that ran a search, the mean of those (else ``stream_mean``) for the others; None when unknown."""
    measured = [cost(d) for d in members if ran_search(d)]
    unit = _mean(measured) if measured else stream_mean
    missing = sum(not ran_search(d) for d in members)
    return float(sum(measured)) if not missing else (None if unit is None else sum(measured) + unit * missing)


def _all_search(by_group: dict[str, list], cost: Callable) -> float | None:
    """`_estimate` over the stream's groups (``by_group``), summed; None when a group's is unknown."""
    stream_mean = _mean([cost(d) for members in by_group.values() for d in members if ran_search(d)])
    estimates = [_estimate(members, cost, stream_mean) for members in by_group.values()]
    return None if any(e is None for e in estimates) else float(sum(e for e in estimates if e is not None))


def _group_summary(group: str, members: list, stream_mean: float | None) -> GroupSummary:
    estimated = _estimate(members, lambda d: d.search_seconds, stream_mean)
    return GroupSummary(
        group=group, datasets=len(members), searched=sum(d.outcome == "searched" for d in members),
        reused=sum(d.outcome == "reused" for d in members),
        search_seconds=float(sum(d.search_seconds for d in members)), estimated_all_search_seconds=estimated,
        searched_test_accuracy=_mean([d.test_accuracy for d in members if d.outcome == "searched"]),
        reused_test_accuracy=_mean([d.test_accuracy for d in members if d.outcome == "reused"]))
