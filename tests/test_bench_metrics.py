"""Benchmark accounting on hand-computed examples, and the report builder on synthetic results."""
from __future__ import annotations

import json

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
    table = {
        "standalone+hyperband": {"total_search_s": 100.0, "total_search_s_std": 0.0, "overhead_s": 0.0, "tre": 0.0,
                                 "groups": 4.0, "ari": 0.0, "reused": 0.0, "time_ratio_vs_standalone": 1.0},
        "mh+hyperband": {"total_search_s": 30.0, "total_search_s_std": 2.0, "overhead_s": 3.0, "tre": 0.04,
                         "tre_std": 0.01, "tre_median": 0.02, "groups": 2.0, "ari": 0.8, "reused": 2.0,
                         "time_ratio_vs_standalone": 0.3},
    }
    files = write_report(tmp_path / "rep", table, {"preset": "ci", "orders": 2, "notes": ["a note"]},
                         curves={"mh+hyperband": [(10.0, 0.8), (30.0, 0.85)]},
                         sweep={"alpha": [(0.001, 2), (0.05, 3)], "landmarkers": [(2, 1), (4, 2)]})
    names = {f.name for f in files}
    assert {"report.md", "table.json", "time_vs_tre.png", "accuracy_vs_time.png", "groups_vs_alpha.png",
            "groups_vs_landmarkers.png"} == names
    assert all(f.stat().st_size > 0 for f in files)
    assert json.loads((tmp_path / "rep" / "table.json").read_text()) == table
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| mh+hyperband | 30.0 ± 2.0 | 0.300 | 3.0 | 0.040 ± 0.010 | 0.020 | 2.0 | 0.800 | 2.0 |" in md
    assert "| standalone+hyperband | 100.0 | 1.000 | 0.0 | 0.000 | – | 4.0 |" in md  # older tables: no median
    assert "- a note" in md
    assert markdown_table(table).count("\n") == 3
    assert "mh+hyperband: time 0.300 of standalone (target ≤ 0.3): met" in md


def test_target_checks_by_hand():
    """MH at 0.40 of standalone, TRE 0.06, overhead 8 of 40 s; k-means slower and more accurate, random slower and
    less accurate; 3 families in 6 datasets."""
    row = {"total_search_s": 40.0, "overhead_s": 8.0}
    table = {"mh+hyperband": {**row, "time_ratio_vs_standalone": 0.40, "tre": 0.06, "tre_median": 0.01},
             "kmeans+hyperband": {**row, "time_ratio_vs_standalone": 0.50, "tre": 0.01},
             "random+hyperband": {**row, "time_ratio_vs_standalone": 0.45, "tre": 0.30}}
    lines = target_checks(table, {"datasets": 6, "families": 3})
    assert lines == [
        "mh+hyperband: time 0.400 of standalone (target ≤ 0.3): NOT met",
        "mh+hyperband: TRE 0.060 (target ≤ 0.05): NOT met; the median dataset's relative error: 0.010",
        "mh+hyperband: landmarker overhead 20.0% of its total (target < 10%): NOT met",
        "mh+hyperband vs kmeans+hyperband: a trade-off: faster (time 0.400 vs 0.500) with TRE 0.060 vs 0.010",
        "mh+hyperband vs random+hyperband: better on both (time 0.400 vs 0.450, TRE 0.060 vs 0.300)",
        "floor: a grouping that keeps the stream's 3 families apart searches at least 3 times, 0.50 of standalone "
        "before overhead and reuse"]


def test_report_is_logged_to_mlflow_as_a_parent_run_with_a_child_per_method(tmp_path):
    from trautoml.bench.runner import log_to_mlflow
    from trautoml.tracking import Tracker, workspace_tracking_uri

    table = {"standalone+random": {"total_search_s": 10.0, "tre": 0.0, "groups": 3.0},
             "mh+random": {"total_search_s": 4.0, "tre": 0.02, "groups": 2.0}}
    write_report(tmp_path / "rep", table, {"preset": "ci"}, curves={}, sweep={})
    pid = log_to_mlflow({"table": table, "context": {"preset": "ci", "orders": 1}}, tmp_path / "rep", tmp_path)
    t = Tracker(workspace_tracking_uri(tmp_path), experiment="trautoml-bench")
    children = t.client.search_runs([t.experiment_id], f"tags.mlflow.parentRunId = '{pid}'")
    assert {c.info.run_name: c.data.metrics["total_search_s"] for c in children} == {"standalone+random": 10.0,
                                                                                     "mh+random": 4.0}
    assert t.client.get_run(pid).info.status == "FINISHED"
    assert "report" in {a.path for a in t.client.list_artifacts(pid)}
