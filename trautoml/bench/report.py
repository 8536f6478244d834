"""The benchmark report: a Table-2-style Markdown table and the paper's pictures (Figure 1 and 2 analogues)."""
from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Sequence

import numpy as np

COLUMNS = (("total_search_s", "total search (s)"), ("time_ratio_vs_standalone", "time / standalone"),
           ("overhead_s", "overhead (s)"), ("tre", "TRE"), ("tre_median", "TRE median"),
           ("groups", "groups"), ("ari", "ARI vs family"),
           ("reused", "reused"), ("escalations", "guard fired"), ("escalation_s", "guard's searches (s)"))


def _cell(summary: dict, key: str) -> str:
    value = summary.get(key)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    std = summary.get(f"{key}_std")
    if key == "time_ratio_vs_standalone":
        return f"{value:.3f}"
    fmt = "{:.1f}" if key.endswith("_s") else "{:.3f}" if key in ("tre", "tre_median", "ari") else "{:.1f}"
    return fmt.format(value) + (f" ± {fmt.format(std)}" if std else "")


def markdown_table(table: dict[str, dict]) -> str:
    """The benchmark table in Markdown: one row per method of ``table`` (method → its summary), one column per entry of
    ``COLUMNS``; a missing or NaN value shows as –, a ``KEY_std`` beside a value as ± std."""
    head = "| method | " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|---|" + "---|" * len(COLUMNS)
    rows = [f"| {name} | " + " | ".join(_cell(s, key) for key, _ in COLUMNS) + " |" for name, s in table.items()]
    return "\n".join([head, rule, *rows])


def write_report(folder: Path, table: dict[str, dict], context: dict, curves: dict[str, list[tuple[float, float]]],
                 sweep: dict[str, list[tuple[float, float]]],
                 relative_errors: dict[str, dict[str, float]] | None = None) -> list[Path]:
    """Write report.md, table.json and the PNGs into ``folder``; returns the files written.

    ``curves``: method → [(cumulative search seconds, mean test accuracy so far)] in stream order (Figure 1).
    ``sweep``: {"alpha": [(alpha, groups)], "landmarkers": [(B, groups)]} for the MH grouper (Figure 2).
    ``relative_errors``: method → dataset → relative test error against standalone, mean over orders.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = [_time_vs_tre(folder / "time_vs_tre.png", table), _accuracy_over_time(folder / "accuracy_vs_time.png",
                                                                                  curves)]
    files += [_sweep(folder / f"groups_vs_{k}.png", k, pts) for k, pts in sweep.items()]
    (folder / "table.json").write_text(json.dumps(table, indent=2, sort_keys=True))
    lines = [
        "# trautoml stream benchmark",
        "",
        f"Machine: {context.get('machine', '?')}; date: {context.get('date', '?')}; "
        f"preset `{context.get('preset')}`; stream `{context.get('stream')}` ({context.get('datasets')} datasets); "
        f"{context.get('orders')} random orders; seed {context.get('seed')}.",
        "",
        "Total search time includes landmarker (or meta-feature) overhead and the one training a reused model gets;",
        "TRE is the mean relative test-error increase over the standalone search of the same backend (paper §3.1);",
        "TRE median is the median over datasets (one dataset with a tiny standalone error can carry the mean).",
        "Values are mean ± standard deviation over stream orders.",
        "",
        markdown_table(table),
        "",
        "Each row is `TrAutoML` ingesting the stream with the method's options (tracking off, one shared cache of",
        "measurements, each charged its measured seconds): standalone = grouper `none`, a workspace per dataset;",
        "standalone-seed2 = the same with the next seed, its TRE the noise floor; warmstart = grouper `none` with",
        "`warm_start=\"latest\"` (3 models); metalearn = grouper `none` with `warm_start=\"metafeatures\"` (3 models);",
        "the groupings = the grouper of that name (k-means is given the true number of families). No row's search",
        "budget is cut: warm-start models are trained within it. peer-zeroshot = grouper `none` with the backend",
        "`synetune-zeroshot` (syne-tune's ZeroShotTransfer over this stream's earlier searches), measured against",
        f"standalone+{context.get('reference_backend', '?')}."
        + (f" Left out: {context['left_out']}." if context.get("left_out") else ""),
        "",
        "![time vs TRE](time_vs_tre.png)",
        "![accuracy over search time](accuracy_vs_time.png)",
        *[f"![groups vs {k}](groups_vs_{k}.png)" for k in sweep],
        "",
    ]
    if relative_errors:
        methods = list(relative_errors)
        names = list(next(iter(relative_errors.values())))
        lines += ["## Relative test error per dataset (mean over orders)", "",
                  "| dataset | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        lines += [f"| {n} | " + " | ".join(f"{relative_errors[m][n]:+.3f}" for m in methods) + " |" for n in names]
        lines.append("")
    checks = target_checks(table, context)
    if checks:
        lines += ["## Against the targets", "", *[f"- {c}" for c in checks], ""]
    if context.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in context["notes"]], ""]
    (folder / "report.md").write_text("\n".join(lines))
    return [folder / "report.md", folder / "table.json", *files]


#: The issue's targets for MH + a backend (paper Table 2: Hyperband 0.30 of standalone at TRE 0.062).
TARGET_TIME_RATIO, TARGET_TRE, TARGET_OVERHEAD_SHARE = 0.30, 0.05, 0.10


def target_checks(table: dict[str, dict], context: dict) -> list[str]:
    """One line per target and backend, saying whether the measured means meet it (no tolerance added)."""
    lines = []
    for name, mh in table.items():
        if not name.startswith("mh+"):
            continue
        backend = name[3:]
        ratio, tre = mh.get("time_ratio_vs_standalone"), mh.get("tre")
        if ratio is not None:
            lines.append(f"{name}: time {ratio:.3f} of standalone (target ≤ {TARGET_TIME_RATIO}): "
                         f"{'met' if ratio <= TARGET_TIME_RATIO else 'NOT met'}")
        if tre is not None:
            median = mh.get("tre_median")
            lines.append(f"{name}: TRE {tre:.3f} (target ≤ {TARGET_TRE}): "
                         f"{'met' if tre <= TARGET_TRE else 'NOT met'}"
                         + ("" if median is None else f"; the median dataset's relative error: {median:.3f}"))
        if mh.get("total_search_s") and mh.get("overhead_s") is not None:
            share = mh["overhead_s"] / mh["total_search_s"]
            verdict = "met" if share < TARGET_OVERHEAD_SHARE else "NOT met"
            lines.append(f"{name}: landmarker overhead {share:.1%} of its total "
                         f"(target < {TARGET_OVERHEAD_SHARE:.0%}): {verdict}")
        for other in ("kmeans", "random"):
            o = table.get(f"{other}+{backend}")
            if o is not None and ratio is not None and tre is not None:
                lines.append(f"{name} vs {other}+{backend}: {_trade_off(mh, o)}")
        families, datasets = context.get("families"), context.get("datasets")
        if families and datasets and ratio is not None:
            lines.append(f"floor: a grouping that keeps the stream's {families} families apart searches at least "
                         f"{families} times, {families / datasets:.2f} of standalone before overhead and reuse")
    return lines


def _trade_off(a: dict, b: dict) -> str:
    ta, tb = a["time_ratio_vs_standalone"], b["time_ratio_vs_standalone"]
    ea, eb = a["tre"], b["tre"]
    if ta <= tb and ea <= eb:
        return f"better on both (time {ta:.3f} vs {tb:.3f}, TRE {ea:.3f} vs {eb:.3f})"
    if ta >= tb and ea >= eb:
        return f"worse on both (time {ta:.3f} vs {tb:.3f}, TRE {ea:.3f} vs {eb:.3f})"
    faster = "faster" if ta < tb else "slower"
    return f"a trade-off: {faster} (time {ta:.3f} vs {tb:.3f}) with TRE {ea:.3f} vs {eb:.3f}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _time_vs_tre(path: Path, table: dict[str, dict]) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    for name, s in table.items():
        ax.errorbar(s["total_search_s"], s["tre"], xerr=s.get("total_search_s_std", 0), yerr=s.get("tre_std", 0),
                    fmt="o", capsize=3)
        ax.annotate(name, (s["total_search_s"], s["tre"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("total search wall time (s)")
    ax.set_ylabel("total relative error (TRE)")
    ax.set_title("Search time vs accuracy loss per method")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _accuracy_over_time(path: Path, curves: dict[str, list[tuple[float, float]]]) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    for name, pts in curves.items():
        if pts:
            xs, ys = zip(*pts)
            ax.step(xs, ys, where="post", label=name)
    ax.set_xlabel("cumulative search wall time (s)")
    ax.set_ylabel("mean test accuracy of the datasets so far")
    ax.set_title("Accuracy over search time along the stream (cf. paper Fig. 1)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _sweep(path: Path, name: str, pts: Sequence[tuple[float, float]]) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    xs, ys = zip(*pts) if pts else ((), ())
    ax.plot(xs, ys, marker="o")
    if name == "alpha":
        ax.set_xscale("log")
    ax.set_xlabel(name)
    ax.set_ylabel("groups found (MH)")
    ax.set_title(f"Groups vs {name} (cf. paper Fig. 2)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
