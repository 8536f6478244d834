"""Benchmark: the transfer controller's claims, measured on the tabular mini-benchmark and on double XOR (issue 18).

Runs, in order, each step's outcome feeding the next as the papers did it:

1. Borsos et al. §4.1 (Fig. 3/4): both agents tuned on double XOR for earliest convergence (`fig3`), then
   compared over replicas, with the attention map;
2. regularised evolution's population and sample size tuned on ``digits`` (seeds apart), as Appendix B did;
3. Borsos et al. §4.2 (Fig. 5) on ``fashion`` and ``mnist`` with the Transformer settings step 1 chose
   ("tuned on the double XOR and reused", Appendix B);
4. Wong et al.'s held-out transfer with the multitask LSTM (the product's defaults), each dataset held out in turn.

    .venv/bin/python bench/bench_transfer_minibench.py --workers 2 --out bench/reports/transfer-minibench-DATE

Writes fig3.json, fig3.png, evolution.json, fig5-<dataset>.json, wong.json and report.md to ``--out`` and prints
report.md. ``--quick`` runs a few replicas of everything (a plumbing check, minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

from search_backends.transfer import fig3, tabular


def _save(out: Path, name: str, obj: dict) -> dict:
    (out / name).write_text(json.dumps(obj, indent=1) + "\n")
    return obj


def _reach(r: dict, runs: int) -> str:
    """Median trials to a threshold and how many replicas got there."""
    med = "–" if r["median_trials"] is None else f"{r['median_trials']:g}"
    return f"{med} ({r['reached']}/{runs})"


def _best_val(method: dict, trials: int) -> str:
    """The mean best validation accuracy after ``trials`` trials ("–" past the budget)."""
    point = method["curve"].get(str(trials))
    return f"{point['best_val']:.3f}" if point else "–"


def _fig5_rows(res: dict) -> list[str]:
    ranks = list(res["thresholds"])
    rows = ["| method | " + " | ".join(f"trials to rank {k} (val ≥ {res['thresholds'][k]:.3f})" for k in ranks)
            + " | mean best val at 10 / 50 / 100 / 300 | regret at 50 | regret at 300 |",
            "|---" * (len(ranks) + 4) + "|"]
    for method, m in res["methods"].items():
        cells = [_reach(m["trials_to_rank"][k], m["runs"]) for k in ranks]
        cells.append(" / ".join(_best_val(m, c) for c in (10, 50, 100, 300)))
        reg = [m["curve"].get(str(c), {}) for c in (50, 300)]
        cells += [f"{r['regret']:.4f} ± {r['regret_sem']:.4f}" if r else "–" for r in reg]
        rows.append(f"| {method} | " + " | ".join(cells) + " |")
    return rows


def report(out: Path, results: dict, args) -> str:
    """report.md from the steps' results."""
    f3 = results["fig3"]
    lines = ["# Transfer controller on double XOR and the tabular mini-benchmark",
             "", f"Machine: {platform.machine()}, {os.cpu_count()} cores; date: {date.today().isoformat()}; "
             f"workers {args.workers}; wall {results['seconds']:.0f} s.", "",
             "## Fig. 3: double XOR, each agent tuned for earliest convergence", "",
             f"Tuning grid (both agents): {json.dumps(fig3.GRID)}; tuning seeds {list(fig3.TUNING_SEEDS)}, at most "
             f"{f3['tune_budget']} samples; "
             f"{f3['replicas']} replicas (seeds 0…) of {f3['budget']} samples; threshold: moving average "
             f"({f3['window']}) ≥ {f3['threshold']}.", "",
             "| agent | parameters | tuned setting | median samples to threshold | reached |", "|---|---|---|---|---|"]
    for agent, r in f3["agents"].items():
        lines.append(f"| {agent} | {r['parameters']} | {json.dumps(r['tuning']['best'])} | "
                     f"{r['median_samples_to_threshold']} | {r['reached']}/{f3['replicas']} |")
    lines += ["", "![Fig. 3 and 4](fig3.png)", ""]
    evo = results["evolution"]
    lines += [f"## Regularised evolution tuned on {evo['dataset']} (seeds apart)", "",
              f"Mean final test accuracy per population/sample: {json.dumps(evo['grid_mean_final_test'])}; chosen "
              f"population {evo['population']}, sample {evo['sample']}.", ""]
    for key, res in results.items():
        if not key.startswith("fig5-"):
            continue
        lines += [f"## Fig. 5 on {res['dataset']}: transfer from two subspaces to the full space", "",
                  f"{res['replicas']} replicas, {res['budget']} trials each, {res['pretrain_walks']} pretraining "
                  f"walks; agent {res['agent']} {json.dumps(res['options'])}; median trials (replicas that got "
                  "there); regret ± s.e. over replicas.", ""] + _fig5_rows(res) + [""]
    w = results["wong"]
    lines += [f"## Wong et al.: held-out transfer ({w['agent']}, {w['replicas']} replicas, {w['budget']} trials, "
              f"{w['pretrain_walks']} pretraining walks on the other datasets)", "",
              "| held out | top-10 threshold | transfer | single-task | random | speed-up | mean best val at 50 / 300: "
              "transfer, single-task, random |", "|---|---|---|---|---|---|---|"]
    for held, h in w["held_out"].items():
        cells = [_reach(h["methods"][m]["trials_to_rank"]["10"], h["methods"][m]["runs"]) for m in tabular.WONG_METHODS]
        curves = ", ".join(" / ".join(_best_val(h["methods"][m], c) for c in (50, 300)) for m in tabular.WONG_METHODS)
        lines.append(f"| {held} | {h['thresholds']['10']:.3f} | " + " | ".join(cells)
                     + f" | {h['speedup']} | {curves} |")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the four steps (module docstring) and write the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=f"bench/reports/transfer-minibench-{date.today().isoformat()}")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="a few replicas of everything (a plumbing check)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    q = args.quick
    t0 = time.perf_counter()
    results: dict = {}
    results["fig3"] = _save(out, "fig3.json", fig3.fig3(2 if q else 10, 300 if q else 2000, args.workers,
                                                         tune_budget=300 if q else 1000))
    fig3.plot(results["fig3"], str(out / "fig3.png"))
    evo = tabular.tune_evolution("digits", 300, 3 if q else 20)
    results["evolution"] = _save(out, "evolution.json", evo)
    tuned = results["fig3"]["agents"]["transformer"]["tuning"]["best"]
    for ds in ("fashion", "mnist"):
        results[f"fig5-{ds}"] = _save(out, f"fig5-{ds}.json", tabular.fig5(
            ds, "transformer", 3 if q else 50, 300, 600, evo["population"], evo["sample"], args.workers,
            options=tuned))
    results["wong"] = _save(out, "wong.json", tabular.wong("lstm", 2 if q else 20, 300, 600, args.workers))
    results["seconds"] = time.perf_counter() - t0
    print(report(out, results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
