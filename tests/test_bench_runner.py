"""The stream benchmark end to end on the `ci` preset (slow): every method runs, and the same seed over the same
cache gives the same decisions and errors, and the same charges (every trial and profile is charged its measured
seconds from the cache; only the backend's own milliseconds outside its trials are measured again)."""
from __future__ import annotations

import pytest

from trautoml.bench.runner import ALL_METHODS, run_bench

pytestmark = pytest.mark.slow


def test_ci_preset_end_to_end_and_identical_results_for_identical_seeds(tmp_path):
    first = run_bench("ci", ["random"], 1, tmp_path / "report1", tmp_path / "cache", executor="serial")
    table = first["table"]
    assert set(table) == {f"{m}+random" for m in ALL_METHODS}
    for name, row in table.items():
        assert row["total_search_s"] > 0 and row["orders"] == 1
        assert set(row) >= {"total_search_s", "overhead_s", "tre", "groups", "ari", "time_ratio_vs_standalone"}
    assert table["standalone+random"]["tre"] == 0.0
    assert table["standalone+random"]["time_ratio_vs_standalone"] == pytest.approx(1.0)
    assert (tmp_path / "report1" / "report.md").exists()
    again = run_bench("ci", ["random"], 1, tmp_path / "report2", tmp_path / "cache", executor="serial")
    for name, row in table.items():
        rerun = again["table"][name]
        # decisions and errors repeat exactly; times repeat up to the backend's own (uncached) milliseconds
        assert {k: rerun[k] for k in ("tre", "groups", "ari", "reused", "overhead_s")} == \
               {k: row[k] for k in ("tre", "groups", "ari", "reused", "overhead_s")}
        assert rerun["total_search_s"] == pytest.approx(row["total_search_s"], rel=1e-3)


def test_bench_runs_any_stream_given_by_a_manifest(tmp_path):
    from trautoml.cli import main

    (tmp_path / "m.txt").write_text("builtin:digits?max_train=300 digits\n"
                                    "builtin:digits?max_train=300&invert=1 digits\n"
                                    "builtin:mnist?max_train=300&max_eval=200 mnist\n")
    out = tmp_path / "report"
    code = main(["bench", "--stream", f"manifest:{tmp_path / 'm.txt'}", "--orders", "1", "--backends", "random",
                 "--executor", "serial", "--quiet", "--out", str(out), "--workspace", str(tmp_path)])
    assert code == 0
    import json

    table = json.loads((out / "table.json").read_text())
    rows = table.get("table", table)
    assert "mh+random" in rows and rows["standalone+random"]["tre"] == 0.0
    assert f"manifest:{tmp_path / 'm.txt'}" in (out / "report.md").read_text()
