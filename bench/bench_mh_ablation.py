"""Benchmark: which part of the default MH pipeline helps, each part switched off in turn, on one stream.

    .venv/bin/python bench/bench_mh_ablation.py [--preset ci] [--stream stream:families] [--orders 3]
        [--workspace bench-ablation] [--out bench-ablation/report]

Rows (every row is `TrAutoML` ingesting the stream, as in ``trautoml bench``, with the same shared cache):
``mh`` (the default: the guard's paired test, Σ = S + C̄/T, the accuracy guard), ``mh-unpaired`` (the guard's test
in random order), ``mh-trial-cov`` (Σ = S + C̄), ``mh-no-guard`` (plain reuse), ``mh-paper-guarded`` (the paper's
MH with the accuracy guard) and ``mh-paper`` (the paper's MH: all three off), beside ``standalone`` (the reference,
3 seeds: its noise band) and ``oracle``. The report is ``trautoml bench``'s, intervals and verdicts included.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = {
    "mh-unpaired": dict(grouper="mh", grouper_options={"paired": False}),
    "mh-trial-cov": dict(grouper="mh", grouper_options={"trial_cov": "trial"}),
    "mh-no-guard": dict(grouper="mh", reuse_tolerance=None),
    "mh-paper-guarded": dict(grouper="mh", grouper_options={"trial_cov": "trial", "paired": False}),
}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ci")
    ap.add_argument("--stream", default="stream:families")
    ap.add_argument("--orders", type=int, default=3)
    ap.add_argument("--workspace", default="bench-ablation")
    ap.add_argument("--out", default="bench-ablation/report")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from trautoml.bench.report import markdown_table, write_report
    from trautoml.bench.runner import StreamBench
    from trautoml.data import load_stream

    bench = StreamBench(args.preset, ["hyperband"], args.orders, Path(args.workspace) / "bench-cache", args.seed,
                        methods=["standalone", "oracle", "mh", "mh-paper"], variants=VARIANTS,
                        log=lambda msg: print(msg, file=sys.stderr, flush=True))
    results = bench.run(load_stream(args.stream))
    results["context"]["stream"] = args.stream
    write_report(Path(args.out), results["table"], results["context"], results["curves"], results["sweep"],
                 results["relative_errors"], results["verdicts"])
    print(markdown_table(results["table"]))
    return results


if __name__ == "__main__":
    main()
