"""The benchmark report: a Table-2-style Markdown table and the paper's pictures (Figure 1 and 2 analogues)."""
from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Sequence

import numpy as np

COLUMNS = (("cost_ratio_vs_standalone", "cost / standalone [95 %]"), ("cost", "cost (TFLOP)"),
           ("time_ratio_vs_standalone", "seconds / standalone [95 %]"), ("overhead_cost", "profiles (TFLOP)"),
           ("tre", "TRE [95 %]"), ("tre_median", "TRE median"),
           ("groups", "groups"), ("ari", "ARI vs family"),
           ("reused", "reused"), ("escalations", "guard fired"), ("guard_misses", "guard missed"),
           ("warm_won", "warm model won"))
#: Columns whose interval (``KEY_ci``, or ``time_ratio_ci``) is shown in brackets.
INTERVALS = {"cost_ratio_vs_standalone": "cost_ratio_ci", "time_ratio_vs_standalone": "time_ratio_ci",
             "tre": "tre_ci"}


def _cell(summary: dict, key: str) -> str:
    value = summary.get(key)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    ci = summary.get(INTERVALS.get(key, ""))
    if ci is not None:
        return f"{value:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"
    if key in ("cost", "overhead_cost"):
        return f"{value / 1e12:.2f}"
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
                 relative_errors: dict[str, dict[str, float]] | None = None,
                 verdicts: Sequence[str] = ()) -> list[Path]:
    """Write report.md, table.json and the PNGs into ``folder``; returns the files written.

    ``curves``: method → [(cumulative cost in FLOPs, mean test accuracy so far)] in stream order (Figure 1).
    ``sweep``: {"alpha": [(alpha, groups)], "landmarkers": [(B, groups)]} for the MH grouper (Figure 2).
    ``relative_errors``: method → dataset → relative test error against standalone, mean over orders.
    ``verdicts``: the lines the intervals support (`trautoml.bench.runner.compare_rows`).
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
        "Cost is training FLOPs (forward + backward per image × images processed, evaluation included) of every",
        "landmarker trial, search trial, final, reuse and escalation training: a unit the machine's load cannot",
        "move; wall seconds are the second ratio. TRE is the mean relative test-error increase over the reference,",
        f"the mean of {context.get('reference_seeds', '?')} standalone seeds of the same backend (paper §3.1); "
        "TRE median is the median over datasets. Brackets: 95 % bootstrap intervals over datasets and orders (the",
        "standalone row's orders are its seeds, each judged against the mean of the others: the noise band);",
        "other values are mean ± standard deviation over orders. The oracle row is given",
        "the true families and charged no profiles: the best any grouping can do.",
        "",
        markdown_table(table),
        "",
        "Each row is `TrAutoML` ingesting the stream with the method's options (tracking off, one shared cache of",
        "measurements, each charged its measured seconds): standalone = grouper `none`, a workspace per dataset;",
        "oracle = grouper `given` (the true families); warmstart = grouper `none` with",
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
    if verdicts:
        lines += ["## What the intervals support", "", *[f"- {v}" for v in verdicts], ""]
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
    """One line per target and backend: whether MH's 95 % interval lies within the target (met), outside it (NOT
    met), or straddles it (undecided: the stream is too short to say)."""
    lines = []
    for name, mh in table.items():
        if not name.startswith("mh+"):
            continue
        for key, ci_key, label, target in (("cost_ratio_vs_standalone", "cost_ratio_ci", "cost / standalone",
                                            TARGET_TIME_RATIO), ("tre", "tre_ci", "TRE", TARGET_TRE)):
            if mh.get(key) is None:
                continue
            ci = mh.get(ci_key) or {"low": mh[key], "high": mh[key]}
            verdict = "met" if ci["high"] <= target else "NOT met" if ci["low"] > target else "undecided"
            lines.append(f"{name}: {label} {mh[key]:.3f} [{ci['low']:.3f}, {ci['high']:.3f}] "
                         f"(target ≤ {target}): {verdict}")
        if mh.get("cost") and mh.get("overhead_cost") is not None:
            share = mh["overhead_cost"] / mh["cost"]
            verdict = "met" if share < TARGET_OVERHEAD_SHARE else "NOT met"
            lines.append(f"{name}: landmarker profiles {share:.1%} of its cost "
                         f"(target < {TARGET_OVERHEAD_SHARE:.0%}): {verdict}")
        families, datasets = context.get("families"), context.get("datasets")
        if families and datasets:
            lines.append(f"floor: a grouping that keeps the stream's {families} families apart searches at least "
                         f"{families} times, {families / datasets:.2f} of standalone before profiles and reuses")
    return lines


def write_budget_sweep(folder: Path, sweep: dict[float, dict]) -> list[Path]:
    """``budget.md`` and ``cost_vs_budget.png``: each row's cost ratio (with its interval) and TRE against the search
    budget scale. ``sweep``: scale → {"search_trials", "table", "verdicts"}."""
    scales = sorted(sweep)
    rows = [r for r in sweep[scales[0]]["table"] if not r.startswith("standalone")]
    lines = ["# Where grouping pays: cost against the search budget", "",
             "Each scale reruns the benchmark with every search's budget (full-budget-equivalent trainings) times",
             "the scale; profiles and final trainings keep theirs. Cost / standalone [95 %]; TRE [95 %].", "",
             "| row | " + " | ".join(f"×{s:g} ({sweep[s]['search_trials']} trainings)" for s in scales) + " |",
             "|---|" + "---|" * len(scales)]
    for r in rows:
        cells = [f"{_cell(sweep[s]['table'][r], 'cost_ratio_vs_standalone')}; TRE {_cell(sweep[s]['table'][r], 'tre')}"
                 if r in sweep[s]["table"] else "–" for s in scales]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    for s in scales:
        lines += ["", f"## ×{s:g}", "", *[f"- {v}" for v in sweep[s]["verdicts"]]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "budget.md").write_text("\n".join(lines) + "\n")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    for r in rows:
        pts = [(s, sweep[s]["table"][r]) for s in scales if "cost_ratio_ci" in sweep[s]["table"].get(r, {})]
        if not pts:
            continue
        xs = [s for s, _ in pts]
        ys = [t["cost_ratio_vs_standalone"] for _, t in pts]
        lo = [y - t["cost_ratio_ci"]["low"] for y, (_, t) in zip(ys, pts)]
        hi = [t["cost_ratio_ci"]["high"] - y for y, (_, t) in zip(ys, pts)]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=r)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("search budget scale")
    ax.set_ylabel("cost / standalone (training FLOPs)")
    ax.set_title("Where grouping pays: cost ratio against the search budget")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "cost_vs_budget.png")
    plt.close(fig)
    return [folder / "budget.md", folder / "cost_vs_budget.png"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _time_vs_tre(path: Path, table: dict[str, dict]) -> Path:
    """Cost ratio against TRE per row, each with its 95 % intervals."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    for name, s in table.items():
        x, y = s.get("cost_ratio_vs_standalone", s.get("time_ratio_vs_standalone")), s.get("tre")
        if x is None or y is None:
            continue
        xci = s.get("cost_ratio_ci") or s.get("time_ratio_ci") or {"low": x, "high": x}
        yci = s.get("tre_ci") or {"low": y, "high": y}
        ax.errorbar(x, y, xerr=[[x - xci["low"]], [xci["high"] - x]], yerr=[[y - yci["low"]], [yci["high"] - y]],
                    fmt="o", capsize=3)
        ax.annotate(name, (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("cost / standalone (training FLOPs)")
    ax.set_ylabel("total relative error (TRE)")
    ax.set_title("Cost vs accuracy loss per method (95 % intervals)")
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
    ax.set_xlabel("cumulative cost (training FLOPs)")
    ax.set_ylabel("mean test accuracy of the datasets so far")
    ax.set_title("Accuracy over cost along the stream (cf. paper Fig. 1)")
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
