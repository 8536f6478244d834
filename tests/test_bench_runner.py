"""The stream benchmark end to end on the `ci` preset (slow): every method runs, and the same seed over the same
cache gives the same decisions and errors, and the same charges (every trial and profile is charged its measured
seconds from the cache; only the backend's own milliseconds outside its trials are measured again)."""
from __future__ import annotations

import pytest

from trautoml.bench.runner import ALL_METHODS, PEER_METHODS, peer_unavailable, run_bench

pytestmark = pytest.mark.slow


FOUR = ("builtin:digits?max_train=300 digits\nbuiltin:digits?max_train=300&subsample=0.5 digits\n"
        "builtin:mnist?max_train=300&max_eval=200 mnist\n"
        "builtin:mnist?max_train=300&max_eval=200&subsample=0.5 mnist\n")


def test_ci_preset_end_to_end_and_identical_results_for_identical_seeds(tmp_path):
    """Every method on a stream of two families of two at the ci preset's budgets (stream:ci's six datasets took
    9 minutes of CI's hour for the same checks)."""
    (tmp_path / "four.txt").write_text(FOUR)
    stream = f"manifest:{tmp_path / 'four.txt'}"
    first = run_bench("ci", ["random"], 1, tmp_path / "report1", tmp_path / "cache", executor="serial",
                      reference_seeds=2, stream=stream)
    table = first["table"]
    peers = {m for m in PEER_METHODS if peer_unavailable(m) is None}
    assert set(table) == {f"{m}+random" for m in ALL_METHODS if m not in PEER_METHODS} | peers
    for row in table.values():
        assert row["total_search_s"] > 0 and row["cost"] > 0
        assert set(row) >= {"total_search_s", "overhead_s", "tre", "tre_ci", "cost_ratio_ci", "groups", "ari",
                            "time_ratio_vs_standalone", "cost_ratio_vs_standalone"}
        assert row["tre_ci"]["low"] <= row["tre"] <= row["tre_ci"]["high"]
    standalone = table["standalone+random"]
    assert standalone["orders"] == 2  # its seeds: no row's relative error is zero by construction
    assert standalone["tre"] != 0.0 and standalone["noise_band"]["low"] < standalone["noise_band"]["high"]
    assert standalone["noise_band"] == standalone["tre_ci"]     # each seed against the mean of the others
    assert standalone["cost_ratio_vs_standalone"] == pytest.approx(1.0)
    assert table["oracle+random"]["ari"] == 1.0 and table["oracle+random"]["overhead_cost"] == 0.0  # true families
    assert any("tell groupings apart" in v for v in first["verdicts"])
    assert (tmp_path / "report1" / "report.md").exists()
    again = run_bench("ci", ["random"], 1, tmp_path / "report2", tmp_path / "cache", executor="serial",
                      reference_seeds=2, stream=stream)
    for name, row in table.items():
        rerun = again["table"][name]
        # decisions, errors and FLOPs repeat exactly; times up to the backend's own (uncached) milliseconds
        assert {k: rerun[k] for k in ("tre", "groups", "ari", "reused", "overhead_s", "cost")} == \
               {k: row[k] for k in ("tre", "groups", "ari", "reused", "overhead_s", "cost")}
        if name not in PEER_METHODS:  # the peer's own surrogate fitting (seconds, not ms) is measured again
            assert rerun["total_search_s"] == pytest.approx(row["total_search_s"], rel=1e-3)


def test_bench_runs_any_stream_given_by_a_manifest(tmp_path):
    from trautoml.cli import main

    (tmp_path / "m.txt").write_text("builtin:digits?max_train=300 digits\n"
                                    "builtin:digits?max_train=300&invert=1 digits\n"
                                    "builtin:mnist?max_train=300&max_eval=200 mnist\n")
    out = tmp_path / "report"
    code = main(["bench", "--stream", f"manifest:{tmp_path / 'm.txt'}", "--orders", "1", "--backends", "random",
                 "--executor", "serial", "--quiet", "--out", str(out), "--workspace", str(tmp_path),
                 "--reference-seeds", "2"])
    assert code == 0
    import json

    table = json.loads((out / "table.json").read_text())
    rows = table.get("table", table)
    assert "mh+random" in rows and rows["standalone+random"]["cost_ratio_vs_standalone"] == pytest.approx(1.0)
    assert f"manifest:{tmp_path / 'm.txt'}" in (out / "report.md").read_text()
    # --methods reruns some rows on the same cache (standalone, the reference, always runs)
    code = main(["bench", "--stream", f"manifest:{tmp_path / 'm.txt'}", "--orders", "1", "--backends", "random",
                 "--executor", "serial", "--quiet", "--out", str(out), "--workspace", str(tmp_path),
                 "--methods", "mh,mh-paper", "--reference-seeds", "2"])
    rows = json.loads((out / "table.json").read_text())
    rows = rows.get("table", rows)
    assert sorted(rows) == ["mh+random", "mh-paper+random", "standalone+random"]
    assert "guard fired" in (out / "report.md").read_text()
    assert main(["bench", "--methods", "mh,nope", "--quiet", "--workspace", str(tmp_path)]) == 2


def test_a_bench_row_is_the_product_and_the_reference_is_the_mean_of_its_seeds(tmp_path):
    """The mh row's decisions equal plain ingests of the same order by a user's TrAutoML (tracking on), and the
    reference is the mean of standalone seeds that differ by what another seed changes."""
    import numpy as np

    from trautoml import TrAutoML
    from trautoml.bench.runner import StreamBench
    from trautoml.data import load_stream

    (tmp_path / "m.txt").write_text("builtin:digits?max_train=300 digits\n"
                                    "builtin:digits?max_train=300&subsample=0.5 digits\n"
                                    "builtin:mnist?max_train=300&max_eval=200 mnist\n")
    items = load_stream(f"manifest:{tmp_path / 'm.txt'}")
    bench = StreamBench("ci", ["random"], orders=1, workspace=tmp_path / "cache", executor="serial",
                        methods=["standalone", "mh"], reference_seeds=2)
    results = bench.run(items)
    order = np.random.default_rng(0).permutation(len(items))  # the bench's first order (seed 0)
    row = TrAutoML(tmp_path / "cache" / "runs" / "mh+random" / "order0", tracking=False).decisions()
    user = TrAutoML(tmp_path / "user", backend="random", preset="tiny", executor="serial", quiet=True,
                    grouper_options={"seed": 0}, **bench.preset.overrides)
    plain = [user.ingest(items[i]) for i in order]
    assert [(d.dataset, d.group, d.outcome, d.spec.key()) for d in row] == \
           [(d.dataset, d.group, d.outcome, d.spec.key()) for d in plain]
    assert [d.test_accuracy for d in row] == pytest.approx([d.test_accuracy for d in plain], abs=0.02)
    seeds = results["table"]["standalone+random"]
    assert seeds["orders"] == 2 and any(v != 0.0 for v in results["relative_errors"]["standalone+random"].values())


def _manifest(tmp_path):
    from trautoml.data import load_stream

    (tmp_path / "m.txt").write_text("builtin:digits?max_train=300 digits\n"
                                    "builtin:digits?max_train=300&subsample=0.5 digits\n"
                                    "builtin:mnist?max_train=300&max_eval=200 mnist\n")
    return load_stream(f"manifest:{tmp_path / 'm.txt'}")


def test_the_peer_row_runs_the_syne_tune_backend_over_the_stream(tmp_path):
    pytest.importorskip("syne_tune", reason="the peers extra (syne-tune) is not installed: pip install -e '.[peers]'")
    from trautoml import TrAutoML
    from trautoml.bench.runner import StreamBench

    bench = StreamBench("ci", ["random"], orders=1, workspace=tmp_path / "cache", executor="serial",
                        methods=["standalone", "peer-zeroshot"], reference_seeds=1)
    results = bench.run(_manifest(tmp_path))
    row = results["table"]["peer-zeroshot"]
    assert row["total_search_s"] > 0 and row["groups"] == 3 and row["reused"] == 0
    decisions = TrAutoML(tmp_path / "cache" / "runs" / "peer-zeroshot" / "order0", tracking=False).decisions()
    assert {d.backend for d in decisions} == {"synetune-zeroshot"}
    assert [d.search["earlier_tasks"] for d in decisions] == [0, 1, 2]  # state carried, in order


def test_a_peer_that_cannot_run_is_left_out_and_the_report_says_why(tmp_path, monkeypatch):
    import trautoml.bench.runner as runner
    from trautoml.bench.report import write_report

    monkeypatch.setattr(runner, "peer_unavailable", lambda method: "syne-tune is not installed")
    bench = runner.StreamBench("ci", ["random"], orders=1, workspace=tmp_path / "cache", executor="serial",
                               methods=["standalone", "peer-zeroshot"], reference_seeds=1)
    results = bench.run(_manifest(tmp_path))
    assert "peer-zeroshot" not in results["table"]
    assert results["context"]["left_out"] == "peer-zeroshot: syne-tune is not installed"
    write_report(tmp_path / "report", results["table"], results["context"], results["curves"], results["sweep"],
                 results["relative_errors"])
    assert "Left out: peer-zeroshot: syne-tune is not installed." in (tmp_path / "report" / "report.md").read_text()


def test_variants_are_extra_rows_with_their_own_options(tmp_path):
    from trautoml.bench.runner import StreamBench

    with pytest.raises(ValueError, match="method names"):
        StreamBench("ci", variants={"mh": {"grouper": "mh"}})
    bench = StreamBench("ci", methods=["standalone"], variants={"mh-x": {"grouper": "mh", "reuse_tolerance": None}},
                        workspace=tmp_path)
    assert bench.methods == ["standalone", "mh-x"]


def test_guard_misses_count_only_judged_reuses_beyond_their_datasets_noise():
    import numpy as np

    from trautoml.bench.runner import count_guard_misses

    solo = {"rel": np.array([[0.1, 0.0], [-0.1, 0.2]]), "stood": np.zeros((2, 2), dtype=bool)}
    row = {"rel": np.array([[0.3, 0.3], [0.05, 0.1]]),          # dataset 0: 0.3 > its band 0.1; dataset 1: 0.3 > 0.2
           "stood": np.array([[True, False], [True, True]])}     # order 0's second reuse was not judged
    table = {"standalone+b": {}, "mh+b": {}}
    count_guard_misses(table, {"standalone+b": solo, "mh+b": row}, ["b"])
    assert table["mh+b"]["guard_misses"] == 0.5 and table["standalone+b"]["guard_misses"] == 0.0
    one_seed = {"standalone+b": {}, "mh+b": {}}
    count_guard_misses(one_seed, {"standalone+b": {**solo, "rel": solo["rel"][:1]}, "mh+b": row}, ["b"])
    assert "guard_misses" not in one_seed["mh+b"]                # no band without a second seed
