"""Benchmark accounting on hand-computed examples, and the report builder on synthetic results."""
from __future__ import annotations

import json

import numpy as np

import pytest

from trautoml.bench.metrics import ERROR_FLOOR, Outcome, aggregate, relative_errors, summarise_order
from trautoml.bench.report import markdown_table, target_checks, write_report


def test_tre_by_hand():
    # (0.12 - 0.10)/0.10 = 0.2 ; (0.20 - 0.25)/0.25 = -0.2 ; (0.30 - 0.30)/0.30 = 0  -> mean 0
    assert relative_errors([0.12, 0.20, 0.30], [0.10, 0.25, 0.30]) == pytest.approx([0.2, -0.2, 0.0])
    assert relative_errors([0.11, 0.5], [0.10, 0.5]).mean() == pytest.approx(0.05)
    # a perfect reference is floored, not divided by zero
    assert relative_errors([0.01], [0.0]) == pytest.approx([(0.01 - ERROR_FLOOR) / ERROR_FLOOR])
    with pytest.raises(ValueError, match="one reference error per dataset"):
        relative_errors([0.1, 0.2], [0.1])


def test_time_accounting_by_hand():
    outcomes = [
        Outcome("a", "f1", "g1", "searched", 0.10, search_s=100.0, train_s=5.0, overhead_s=2.0),
        Outcome("b", "f1", "g1", "reused", 0.12, search_s=0.0, train_s=6.0, overhead_s=2.5),
        Outcome("c", "f2", "g2", "searched", 0.30, search_s=80.0, train_s=4.0, overhead_s=1.5),
    ]
    ref = {"a": 0.10, "b": 0.10, "c": 0.30}
    m = summarise_order(outcomes, ref)
    assert m["total_search_s"] == pytest.approx(100 + 5 + 2 + 6 + 2.5 + 80 + 4 + 1.5)
    assert m["overhead_s"] == pytest.approx(6.0)
    assert m["tre"] == pytest.approx((0 + 0.2 + 0) / 3)
    assert m["tre_median"] == pytest.approx(0.0)  # relative errors 0, 0.2, 0
    assert m["groups"] == 2 and m["reused"] == 1
    assert m["ari"] == pytest.approx(1.0)  # groups match families exactly

    agg = aggregate([m, {**m, "total_search_s": m["total_search_s"] + 10}], standalone_total=400.0)
    assert agg["total_search_s"] == pytest.approx(m["total_search_s"] + 5)
    assert agg["total_search_s_std"] == pytest.approx(7.0710678, rel=1e-6)
    assert agg["time_ratio_vs_standalone"] == pytest.approx((m["total_search_s"] + 5) / 400.0)
    assert agg["orders"] == 2


def test_standalone_datasets_count_as_their_own_groups():
    outcomes = [Outcome(n, "f", None, "searched", 0.1, 1.0, 0.0, 0.0) for n in "abc"]
    assert summarise_order(outcomes, {n: 0.1 for n in "abc"})["groups"] == 3


def test_report_builder_writes_table_and_pictures(tmp_path):
    ci = {"low": 0.25, "high": 0.35}
    table = {
        "standalone+hyperband": {"cost": 2e13, "overhead_cost": 0.0, "tre": 0.01, "tre_ci": {"low": -0.1, "high": 0.1},
                                 "groups": 4.0, "ari": 0.0, "reused": 0.0, "cost_ratio_vs_standalone": 1.0,
                                 "cost_ratio_ci": {"low": 0.9, "high": 1.1}, "time_ratio_vs_standalone": 1.0},
        "mh+hyperband": {"cost": 6e12, "overhead_cost": 1e12, "tre": 0.04, "tre_ci": {"low": 0.01, "high": 0.07},
                         "tre_median": 0.02, "groups": 2.0, "ari": 0.8, "reused": 2.0, "cost_ratio_vs_standalone": 0.3,
                         "cost_ratio_ci": ci, "time_ratio_vs_standalone": 0.32},
    }
    files = write_report(tmp_path / "rep", table, {"preset": "ci", "orders": 2, "notes": ["a note"]},
                         curves={"mh+hyperband": [(1e12, 0.8), (6e12, 0.85)]},
                         sweep={"alpha": [(0.001, 2), (0.05, 3)], "landmarkers": [(2, 1), (4, 2)]},
                         verdicts=["the stream CANNOT tell groupings apart"])
    names = {f.name for f in files}
    assert {"report.md", "table.json", "time_vs_tre.png", "accuracy_vs_time.png", "groups_vs_alpha.png",
            "groups_vs_landmarkers.png"} == names
    assert all(f.stat().st_size > 0 for f in files)
    assert json.loads((tmp_path / "rep" / "table.json").read_text()) == table
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| mh+hyperband | 0.300 [0.250, 0.350] | 6.00 | 0.320 | 1.00 | 0.040 [0.010, 0.070] | 0.020 | 2.0 |" in md
    assert "| standalone+hyperband | 1.000 [0.900, 1.100] | 20.00 | 1.000 | 0.00 | 0.010 [-0.100, 0.100] | – |" in md
    assert "- a note" in md and "## What the intervals support" in md
    assert "- the stream CANNOT tell groupings apart" in md
    assert markdown_table(table).count("\n") == 3
    assert "mh+hyperband: cost / standalone 0.300 [0.250, 0.350] (target ≤ 0.3): undecided" in md


def test_target_checks_by_hand():
    """MH's cost interval straddles the target, its TRE interval lies above it, profiles are 20 % of its cost."""
    table = {"mh+hyperband": {"cost": 40.0, "overhead_cost": 8.0, "cost_ratio_vs_standalone": 0.32,
                              "cost_ratio_ci": {"low": 0.2, "high": 0.45}, "tre": 0.09,
                              "tre_ci": {"low": 0.06, "high": 0.12}},
             "kmeans+hyperband": {"cost": 50.0, "cost_ratio_vs_standalone": 0.2, "tre": 0.01}}
    lines = target_checks(table, {"datasets": 6, "families": 3})
    assert lines == [
        "mh+hyperband: cost / standalone 0.320 [0.200, 0.450] (target ≤ 0.3): undecided",
        "mh+hyperband: TRE 0.090 [0.060, 0.120] (target ≤ 0.05): NOT met",
        "mh+hyperband: landmarker profiles 20.0% of its cost (target < 10%): NOT met",
        "floor: a grouping that keeps the stream's 3 families apart searches at least 3 times, 0.50 of standalone "
        "before profiles and reuses"]


def _outcomes(errors, costs, groups):
    return [Outcome(f"d{i}", f"f{i % 2}", g, "searched", e, 1.0, 0.0, 0.0, cost=c)
            for i, (e, c, g) in enumerate(zip(errors, costs, groups))]


def test_verdicts_say_when_a_stream_cannot_tell_groupings_apart():
    """Synthetic rows: when oracle and random score alike (any model serves any dataset) the report says the
    stream cannot tell groupings apart; when random loses far beyond the intervals, it says the stream can."""
    from trautoml.bench.runner import Reference, compare_rows

    rng = np.random.default_rng(0)
    n = 16
    base = rng.uniform(0.05, 0.3, size=n)
    ref = Reference([_outcomes(base * rng.lognormal(0, 0.05, n), np.full(n, 10.0), [None] * n) for _ in range(3)])
    mean = base  # close to the seeds' mean

    def row(errors_by_order, cost):
        rel = np.array([(e - mean) / mean for e in errors_by_order])
        m = {"rel": rel, "cost": np.full_like(rel, cost), "secs": np.ones_like(rel)}
        from trautoml.bench.intervals import ratio_interval, tre_interval
        return {"tre": rel.mean(), "tre_ci": tre_interval(rel).to_dict(),
                "cost_ratio_ci": ratio_interval(m["cost"], ref.cost).to_dict()}, m

    alike = [base * rng.lognormal(0, 0.1, n) for _ in range(3)]
    worse = [base * 2.0 * rng.lognormal(0, 0.1, n) for _ in range(3)]
    for random_errors, expected in ((alike, "CANNOT tell groupings apart"), (worse, "tells groupings apart")):
        table, matrices = {}, {}
        table["standalone+b"], matrices["standalone+b"] = row([s for s in ref.errors], 10.0)
        table["oracle+b"], matrices["oracle+b"] = row([base * rng.lognormal(0, 0.1, n) for _ in range(3)], 4.0)
        table["random+b"], matrices["random+b"] = row(random_errors, 4.0)
        table["mh+b"], matrices["mh+b"] = row([base * rng.lognormal(0, 0.1, n) for _ in range(3)], 5.0)
        lines = compare_rows(table, matrices, {"b": ref}, ["b"])
        assert any(expected in line for line in lines), lines
        assert any(line.startswith("noise band (b)") for line in lines)
        assert "mh+b: cost 0.500 [0.500, 0.500] × standalone: cheaper than standalone" in lines
        assert any(line.startswith("mh+b vs oracle+b: dearer") for line in lines), lines
    assert any(line.startswith("mh+b vs random+b: lower TRE") for line in lines), lines


def test_report_is_logged_to_mlflow_as_a_parent_run_with_a_child_per_method(tmp_path):
    from trautoml.bench.runner import log_to_mlflow
    from trautoml.tracking import Tracker, workspace_tracking_uri

    table = {"standalone+random": {"total_search_s": 10.0, "tre": 0.0, "groups": 3.0},
             "mh+random": {"total_search_s": 4.0, "tre": 0.02, "groups": 2.0}}
    write_report(tmp_path / "rep", table, {"preset": "ci"}, curves={}, sweep={})
    table["mh+random"]["tre_ci"] = {"value": 0.02, "low": -0.01, "high": 0.05}
    pid = log_to_mlflow({"table": table, "context": {"preset": "ci", "orders": 1}}, tmp_path / "rep", tmp_path)
    t = Tracker(workspace_tracking_uri(tmp_path), experiment="trautoml-bench")
    children = t.client.search_runs([t.experiment_id], f"tags.mlflow.parentRunId = '{pid}'")
    assert {c.info.run_name: c.data.metrics["total_search_s"] for c in children} == {"standalone+random": 10.0,
                                                                                     "mh+random": 4.0}
    mh = next(c for c in children if c.info.run_name == "mh+random").data.metrics
    assert (mh["tre_ci_low"], mh["tre_ci_high"]) == (-0.01, 0.05)  # an interval is two metrics
    assert t.client.get_run(pid).info.status == "FINISHED"
    assert "report" in {a.path for a in t.client.list_artifacts(pid)}


def test_budget_sweep_report_shows_each_rows_cost_against_the_budget(tmp_path):
    from trautoml.bench.report import write_budget_sweep

    def table(ratio):
        return {"standalone+h": {"cost_ratio_vs_standalone": 1.0, "tre": 0.0},
                "mh+h": {"cost_ratio_vs_standalone": ratio, "cost_ratio_ci": {"low": ratio - 0.05,
                                                                              "high": ratio + 0.05},
                         "tre": 0.02, "tre_ci": {"low": -0.01, "high": 0.05}}}

    sweep = {1.0: {"search_trials": 6, "table": table(0.9), "verdicts": ["v1"]},
             10.0: {"search_trials": 60, "table": table(0.4), "verdicts": ["v10"]}}
    files = write_budget_sweep(tmp_path, sweep)
    md = (tmp_path / "budget.md").read_text()
    assert "| row | ×1 (6 trainings) | ×10 (60 trainings) |" in md
    assert "| mh+h | 0.900 [0.850, 0.950]; TRE 0.020 [-0.010, 0.050] | 0.400 [0.350, 0.450]; TRE" in md
    assert "standalone+h" not in md.split("|---|")[1].split("##")[0]   # the reference is no row of its own
    assert "- v10" in md and all(f.stat().st_size > 0 for f in files)


def test_bench_refuses_bad_budget_scales_and_seeds(tmp_path, capsys):
    from trautoml.cli import main

    for argv, message in ((["--budget-scale", "1,x"], "--budget-scale takes numbers"),
                          (["--budget-scale", "0"], "--budget-scale needs positive scales"),
                          (["--reference-seeds", "0"], "--reference-seeds must be at least 1")):
        assert main(["bench", *argv, "--quiet", "--workspace", str(tmp_path)]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bench-cache").exists()   # refused before anything was written
