"""The stream benchmark end to end on the `ci` preset (slow): every method runs, and the same seed over the same
cache gives the same table, because every cost is charged its measured seconds from the cache."""
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
    assert again["table"] == table
