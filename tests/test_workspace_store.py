"""The workspace's MLflow store: created atomically, a half-made one rebuilt when it holds no runs, a broken one
that holds runs left alone with a one-line error."""
from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import clean_env
from trautoml.tracking import EXPERIMENT, Tracker
from trautoml.workspace_store import StoreError, ensure_store, store_problem

# Builds MLflow's schema the way MLflow itself does (migrations one by one, in place), printing when it starts, so
# that a kill lands inside the migrations: that is how a store was left half-made before it was built aside.
IN_PLACE = """
import sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
print("start", flush=True)
SqlAlchemyStore("sqlite:///" + sys.argv[1], "file:///tmp/unused")
"""

# The store as trautoml builds it (ensure_store), printing when it starts.
ATOMIC = """
import sys
from pathlib import Path
from trautoml.workspace_store import ensure_store
import mlflow.store.tracking.sqlalchemy_store
print("start", flush=True)
ensure_store(Path(sys.argv[1]), (Path(sys.argv[1]) / "mlruns").resolve().as_uri(), "trautoml")
"""


def _killed_during(script: str, target: str, delay: float) -> None:
    """Run ``script`` on ``target`` and SIGKILL it ``delay`` seconds after it starts building."""
    proc = subprocess.Popen([sys.executable, "-c", script, target], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=clean_env(), text=True)
    assert proc.stdout.readline().strip() == "start"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _tracker_works(ws: Path) -> None:
    tracker = Tracker.for_workspace(ws)
    run = tracker.client.create_run(tracker.experiment_id)
    tracker.end_run(run.info.run_id)
    assert tracker.client.get_experiment_by_name(EXPERIMENT).artifact_location == (ws / "mlruns").resolve().as_uri()


@pytest.fixture(scope="module")
def half_made(tmp_path_factory) -> Path:
    """A store whose in-place creation was killed mid-migration (retried at later points until one is half-made)."""
    folder = tmp_path_factory.mktemp("half")
    db = folder / "mlflow.db"
    for delay in (0.3, 0.6, 1.0, 1.5, 2.5, 4.0):
        db.unlink(missing_ok=True)
        _killed_during(IN_PLACE, str(db), delay)
        if db.exists() and store_problem(db) is not None:
            return db
    pytest.fail("no kill left a half-made store")


def test_a_half_made_store_without_runs_is_moved_aside_and_rebuilt(tmp_path, half_made):
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(half_made, ws / "mlflow.db")
    _tracker_works(ws)
    assert store_problem(ws / "mlflow.db") is None
    assert len(list(ws.glob("mlflow.db.broken-*"))) == 1  # kept, not deleted


def test_a_broken_store_with_runs_is_left_alone_with_one_line_saying_what_to_do(tmp_path, half_made):
    ws = tmp_path / "ws"
    ws.mkdir()
    db = ws / "mlflow.db"
    shutil.copy(half_made, db)
    with sqlite3.connect(db) as con:  # a run written by someone, whatever the schema's state
        con.execute("CREATE TABLE IF NOT EXISTS runs (run_uuid TEXT)")
        con.execute("INSERT INTO runs (run_uuid) VALUES ('r1')")
    before = db.read_bytes()
    with pytest.raises(StoreError) as err:
        Tracker.for_workspace(ws)
    message = str(err.value)
    assert "\n" not in message and "1 run(s)" in message and "mlflow db upgrade" in message
    assert db.read_bytes() == before and not list(ws.glob("mlflow.db.*"))


def test_a_file_that_is_not_a_database_is_refused_not_replaced(tmp_path):
    (tmp_path / "mlflow.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        ensure_store(tmp_path, tmp_path.as_uri(), EXPERIMENT)
    assert (tmp_path / "mlflow.db").read_bytes().startswith(b"this is not sqlite")


def test_a_kill_while_the_store_is_built_leaves_no_store_or_a_complete_one(tmp_path):
    """SIGKILL at points spread over the build: afterwards the store is absent or complete, never half-made, and
    the next Tracker works (temporary files of the killed builder are cleaned up)."""
    outcomes = []
    for i, delay in enumerate((0.05, 0.3, 0.6, 1.0, 1.6)):
        ws = tmp_path / f"ws{i}"
        ws.mkdir()
        _killed_during(ATOMIC, str(ws), delay)
        db = ws / "mlflow.db"
        outcomes.append(db.exists())
        assert not db.exists() or store_problem(db) is None
        _tracker_works(ws)
        assert [p.name for p in ws.iterdir() if p.name.startswith("mlflow.db")] == ["mlflow.db"]
    assert not all(outcomes)  # at least one kill landed before the store was complete
