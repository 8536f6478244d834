"""A workspace's own MLflow store (``<workspace>/mlflow.db``), created atomically and repaired when half-made.

MLflow builds its SQLite schema by running its migrations one by one, which takes about a second; a process killed
meanwhile leaves a file that every later connection refuses (``duplicate column name``, ``table … already
exists``). So the schema, and trautoml's experiment in it, are built in a temporary file beside the store and
hard-linked into place (`ensure_store`): the link either makes a complete store appear or fails because another
process's complete store is already there; nobody ever opens a half-made one.

A store left half-made by an older trautoml (or by hand) is detected by its schema revision: when it holds no runs
it is moved aside and rebuilt; when it holds runs nothing is touched and `StoreError` says what to do.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
from pathlib import Path

from trautoml.workers import pid_alive

STORE_FILE = "mlflow.db"
_TMP_PREFIX = STORE_FILE + ".tmp-"


class StoreError(RuntimeError):
    """The workspace's MLflow store cannot be used, and trautoml will not repair it (it holds runs)."""


@functools.lru_cache(maxsize=1)
def _head_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def store_problem(db: Path) -> str | None:
    """What is wrong with an existing store file, or None when MLflow can open it as it is."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables:
                return "has no schema version (its creation was interrupted)"
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as err:
        return f"is not a readable SQLite database ({err})"
    head = _head_revision()
    if row is None or row[0] != head:
        return (f"is at schema revision {row[0] if row else 'none'}, not {head} (its creation was interrupted, "
                "or another MLflow version made it)")
    from mlflow.store.db.base_sql_model import Base

    missing = set(Base.metadata.tables) - tables
    if missing:
        return f"lacks table(s) {', '.join(sorted(missing))}"
    return None


def _run_count(db: Path) -> int | None:
    """Runs the store holds; None when that cannot be read."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:  # no runs table: created before any run could be
        return 0
    except sqlite3.DatabaseError:
        return None


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary stores (and their journals) of processes that died while building them."""
    for path in folder.glob(_TMP_PREFIX + "*"):
        pid = path.name[len(_TMP_PREFIX):].split("-")[0].split(".")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            path.unlink(missing_ok=True)


def _build(tmp: Path, artifact_location: str, experiment: str) -> None:
    """MLflow's full schema and ``experiment`` in a new SQLite file at ``tmp``."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{tmp}"
    store = SqlAlchemyStore(uri, artifact_location)
    try:
        store.create_experiment(experiment, artifact_location=artifact_location)
    finally:
        store.engine.dispose()
        SqlAlchemyStore._engine_map.pop(uri, None)


def _reconnect(uri: str) -> None:
    """Make MLflow's cached engines for ``uri`` (kept per URI for the process's life) drop their connections, which
    still point at the file just moved aside; they reconnect to the path on next use."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for store in (SqlAlchemyStore, RegistryStore):
        engine = store._engine_map.get(uri)
        if engine is not None:
            engine.dispose()


def ensure_store(workspace: Path, artifact_location: str, experiment: str) -> Path:
    """The workspace's store file, complete: built atomically when absent, rebuilt when half-made and empty.

    Raises `StoreError` (one line, saying what to do) for a store that is broken and holds runs."""
    workspace = Path(workspace)
    db = workspace / STORE_FILE
    _remove_stale_temporaries(workspace)
    if db.exists():
        problem = store_problem(db)
        if problem is None:
            return db
        runs = _run_count(db)
        if runs != 0:
            held = "whose runs cannot be counted" if runs is None else f"holding {runs} run(s)"
            raise StoreError(f"the MLflow store {db} {problem}, {held}; trautoml leaves it alone: back it up, then "
                             f"run `mlflow db upgrade sqlite:///{db}` or move it away to start a new store")
        aside = db.with_name(f"{STORE_FILE}.broken-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):  # another process may have moved it first
            os.replace(db, aside)
        _reconnect(f"sqlite:///{db}")
    tmp = workspace / f"{_TMP_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
    try:
        _build(tmp, artifact_location, experiment)
        with contextlib.suppress(FileExistsError):  # another process's complete store won: use that one
            os.link(tmp, db)
    finally:
        for leftover in workspace.glob(tmp.name + "*"):
            leftover.unlink(missing_ok=True)
    return db
