"""SIGKILL one ingest at 20 points spread over its whole life, in a new workspace (store creation, profile, search,
final training, model logging, commit), then rerun it. After each: the rerun completes, the dataset is stored
once, no MLflow run is left RUNNING, no finished trial or profile is computed again, no worker outlives the kill."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import time

import pytest

from test_api_helpers import all_runs, clean_env, cli_cmd, dataset_runs, run_cli, state_counts
from test_cli import _all_gone, _descendants

POINTS = 20
URI = "builtin:digits?subsample=0.6"


def _argv(ws) -> list[str]:
    return ["ingest", URI, "--preset", "tiny", "--quiet", "--workspace", str(ws)]  # the default local executor


def _cached(ws) -> tuple[int, int]:
    path = ws / ".trautoml" / "state.db"
    if not path.exists():
        return 0, 0
    with sqlite3.connect(path) as db:
        return tuple(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("profiles", "trials"))


@pytest.fixture(scope="module")
def lifetime(tmp_path_factory) -> float:
    """Seconds an undisturbed ingest into a new workspace takes, from the command's start."""
    ws = tmp_path_factory.mktemp("undisturbed") / "ws"
    t0 = time.monotonic()
    out = run_cli(*_argv(ws), timeout=600)
    assert out.returncode == 0, out.stderr
    return time.monotonic() - t0


@pytest.mark.slow  # 20 kills and reruns: 15-30 min on 2 cores
@pytest.mark.timeout(3 * 3600)
def test_sigkill_anywhere_then_rerun(tmp_path, lifetime):
    report = []
    for i in range(POINTS):
        delay = lifetime * (i + 0.5) / POINTS
        ws = tmp_path / f"ws{i}"
        proc = subprocess.Popen(cli_cmd(*_argv(ws)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=clean_env())
        time.sleep(delay)
        children = _descendants(proc.pid)
        proc.kill()
        proc.wait()
        assert not _all_gone(children), f"kill at {delay:.1f}s left workers running"
        committed = state_counts(ws).get("datasets", 0)
        profiles, trials = _cached(ws)

        out = run_cli(*_argv(ws), timeout=600)
        assert out.returncode == 0, (delay, out.stderr)
        assert state_counts(ws)["datasets"] == 1 and state_counts(ws)["groups"] == 1, delay
        assert len(dataset_runs(ws)) == 1, delay
        assert not [r for r in all_runs(ws) if r.info.status == "RUNNING"], delay
        shown = json.loads(run_cli("show", "digits?subsample=0.6", "--json", "--workspace", ws).stdout)
        if not committed:  # the rerun did the ingest: what the killed one had finished came from the cache
            assert shown["extra"]["profile_cached"] == (profiles > 0), delay
            assert shown["extra"]["cached_trials"] >= trials, delay
        report.append(f"{delay:5.1f}s committed={committed} profiles={profiles} trials={trials} "
                      f"rerun: cached_trials={shown['extra']['cached_trials']}")
        print(report[-1], flush=True)
    print(f"undisturbed ingest {lifetime:.1f}s\n" + "\n".join(report))
