"""The durable workspace: everything trautoml must remember between runs, in one SQLite file.

Layout of a workspace folder ``W``::

    W/.trautoml/state.db    this module's database (SQLite, WAL journal)
    W/.trautoml/lock        the lock file ingests serialise on (fcntl.flock)
    W/mlflow.db, W/mlruns/  the MLflow store (trautoml.tracking), unless a tracking URI points elsewhere

Tables (values that are structures are JSON text; nothing is pickled, so loading state never executes code):

``meta``      key → JSON value: the schema version and the *settings* that fix how datasets are profiled and
              grouped (grouper, landmarkers, profile budget). Profiles are comparable only under the same settings,
              so a workspace refuses an ingest with different ones (`check_settings`).
``grouper``   the one row of grouper state (``to_dict()`` of the grouper) and a version counter.
``datasets``  one row per ingested content hash, in arrival order (``seq``): name, uri, family, profile, the
              grouping assignment, the decision, its group and its MLflow run id.
``groups``    one row per group: its model spec, the dataset that founded it and when.
``profiles``  measured landmarker profiles by (content hash, profile settings), so an ingest that was killed
              does not profile again when it is rerun.
``trials``    measured search trials by (content hash, spec key, resource, seed, data caps) with their wall
              seconds; a search that meets a trial it has already measured reuses it (marked cached).

Crash safety. The cache tables are written as results arrive (each row is a finished measurement). The state that
must never be half-written — the grouper, the dataset row and the group row — changes in ONE transaction at the
end of an ingest (`commit_ingest`). SQLite's journal makes that transaction all-or-nothing under SIGKILL, so a
killed ingest leaves the workspace exactly as before it started (plus cache rows), and rerunning the same command
completes it. Two processes serialise on ``lock`` (`Workspace.lock`), held for a whole ingest, so the grouper
state an ingest starts from is the one it commits over; `commit_ingest` checks that anyway (the version counter).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, NamedTuple
from collections.abc import Iterator

from trautoml.decision import Decision

SCHEMA_VERSION = 1
STATE_DIR = ".trautoml"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grouper (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    content_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    uri TEXT,
    family TEXT,
    group_id TEXT NOT NULL,
    profile TEXT NOT NULL,
    assignment TEXT NOT NULL,
    decision TEXT NOT NULL,
    run_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS datasets_name ON datasets (name);
CREATE INDEX IF NOT EXISTS datasets_group ON datasets (group_id, seq);
CREATE TABLE IF NOT EXISTS groups (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    founder TEXT NOT NULL,
    founded_seq INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""

#: The measurement caches: in the workspace's own file, or in a cache file several workspaces share.
_CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS {db}.profiles (
    content_hash TEXT NOT NULL,
    settings TEXT NOT NULL,
    profile TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (content_hash, settings)
);
CREATE TABLE IF NOT EXISTS {db}.trials (
    content_hash TEXT NOT NULL,
    spec_key TEXT NOT NULL,
    resource REAL NOT NULL,
    seed INTEGER NOT NULL,
    caps TEXT NOT NULL,
    trial TEXT NOT NULL,
    wall_seconds REAL NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (content_hash, spec_key, resource, seed, caps)
);
"""


class KeptWeights(NamedTuple):
    """Trained weights kept in the workspace (`Workspace.save_weights`): the network's ``state`` dict, the input
    ``shape`` (C, H, W) it runs at, and ``seen``: the digests of every image they were trained on."""

    state: dict
    shape: tuple[int, int, int]
    seen: Any


class WorkspaceError(ValueError):
    """The workspace cannot serve the request as asked (different settings, unknown dataset, ...)."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=True)


def state_dir(root: Path) -> Path:
    """The folder of workspace ``root`` that holds trautoml's own state (``.trautoml``)."""
    return Path(root) / STATE_DIR


def state_path(root: Path) -> Path:
    """The state database of workspace ``root`` (``.trautoml/state.db``)."""
    return state_dir(root) / "state.db"


class Workspace:
    """The state of one workspace folder. Opening it creates ``.trautoml/state.db`` (call only once the input
    has been validated: a refused command must leave the folder as it was)."""

    def __init__(self, root: Path | str, *, create: bool = True, cache: Path | str | None = None):
        """``cache``: a SQLite file for the measured profiles and trials, shared by every workspace that names it
        (the benchmark runs many workspaces over one cache); default: the workspace's own ``state.db``."""
        self.root = Path(root).resolve()
        path = state_path(self.root)
        if not path.exists() and not create:
            raise WorkspaceError(f"no trautoml workspace at {self.root} (nothing ingested there yet)")
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. timeout: wait on another process's write.
        self._db = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA synchronous=FULL")  # a committed ingest survives a power cut, not only a kill
        self._c = "main"
        self.weights_dir = (state_dir(self.root) if cache is None else Path(cache).resolve().parent) / "weights"
        if cache is not None:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            self._db.execute("ATTACH DATABASE ? AS cache", (str(Path(cache).resolve()),))
            self._c = "cache"
        if create:
            with self.lock():  # two processes creating one workspace at once: one sets it up, the other waits
                self._setup(path)

    def _setup(self, path: Path) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA {self._c}.journal_mode=WAL")
        with self.transaction():
            for stmt in (_SCHEMA + _CACHE_SCHEMA.format(db=self._c)).strip().split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                                 (_dumps(SCHEMA_VERSION),))
            elif json.loads(row["value"]) != SCHEMA_VERSION:
                raise WorkspaceError(f"{path}: schema version {row['value']} is not {SCHEMA_VERSION}; "
                                     "this trautoml cannot read it")

    @classmethod
    def exists(cls, root: Path | str) -> bool:
        """Whether a workspace has been set up at ``root`` (its state database exists)."""
        return state_path(Path(root)).exists()

    def close(self) -> None:
        """Close the database connection (the context manager does this on exit)."""
        self._db.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ primitives
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on any exception): all of it or nothing."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """An exclusive lock on ``.trautoml/lock`` (fcntl.flock): one ingest at a time per workspace, across
        processes. The kernel releases it when the holder dies, so a killed process never leaves it stuck."""
        path = state_dir(self.root) / "lock"
        with open(path, "a+") as fh:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (fcntl.LOCK_NB if deadline is not None else 0))
                    break
                except BlockingIOError:  # only a non-blocking try (a deadline) raises it
                    assert deadline is not None
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"workspace {self.root} is busy (another ingest holds {path})") from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ settings
    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key`` in the ``meta`` table, ``default`` when there is none."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def check_settings(self, settings: dict) -> None:
        """Refuse settings that differ from those the workspace's datasets were profiled and grouped with."""
        stored = self.get_meta("settings")
        if stored is None or not self.count_datasets():
            return
        diff = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
        if diff:
            shown = ", ".join(f"{k}={stored.get(k)!r} (asked {settings.get(k)!r})" for k in diff)
            raise WorkspaceError(f"workspace {self.root} was set up with other profiling/grouping settings: "
                                 f"{shown}; use the same preset/grouper or another --workspace")

    # ------------------------------------------------------------------ reads
    def count_datasets(self) -> int:
        """How many datasets the workspace holds."""
        return int(self._db.execute("SELECT COUNT(*) FROM datasets").fetchone()[0])

    def grouper_version(self) -> tuple[str, int] | None:
        """(grouper name, state version) without reading the state itself."""
        row = self._db.execute("SELECT name, version FROM grouper WHERE id = 1").fetchone()
        return None if row is None else (row["name"], int(row["version"]))

    def grouper_state(self) -> tuple[str, dict, int] | None:
        """(grouper name, its ``to_dict()`` state, state version), or None before the first commit."""
        row = self._db.execute("SELECT name, state, version FROM grouper WHERE id = 1").fetchone()
        return None if row is None else (row["name"], json.loads(row["state"]), int(row["version"]))

    def decision_by_hash(self, content_hash: str) -> Decision | None:
        """The stored decision of the dataset with ``content_hash``, or None."""
        row = self._db.execute("SELECT decision FROM datasets WHERE content_hash = ?", (content_hash,)).fetchone()
        return None if row is None else Decision.from_dict(json.loads(row["decision"]))

    def dataset_row(self, name_or_hash: str) -> dict | None:
        """The latest dataset of that name (or with that content hash, or a unique hash prefix)."""
        row = self._db.execute("SELECT * FROM datasets WHERE name = ? ORDER BY seq DESC LIMIT 1",
                               (name_or_hash,)).fetchone()
        if row is None and len(name_or_hash) >= 6:
            rows = self._db.execute("SELECT * FROM datasets WHERE content_hash LIKE ? ORDER BY seq DESC",
                                    (name_or_hash + "%",)).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return None if row is None else self._row(row)

    def name_taken(self, name: str) -> bool:
        """Whether a dataset of the workspace already has this name."""
        return self._db.execute("SELECT 1 FROM datasets WHERE name = ? LIMIT 1", (name,)).fetchone() is not None

    def datasets(self) -> list[dict]:
        """Every dataset row in arrival order, its profile, assignment and decision parsed from JSON."""
        return [self._row(r) for r in self._db.execute("SELECT * FROM datasets ORDER BY seq")]

    @staticmethod
    def _row(row: sqlite3.Row) -> dict:
        d = dict(row)
        for k in ("profile", "assignment", "decision"):
            d[k] = json.loads(d[k])
        return d

    def groups(self) -> list[dict]:
        """Groups in founding order: ``id``, ``members`` (dataset names in arrival order), ``model`` (spec)."""
        members: dict[str, list[str]] = {}
        for r in self._db.execute("SELECT group_id, name FROM datasets ORDER BY seq"):
            members.setdefault(r["group_id"], []).append(r["name"])
        return [{"id": r["id"], "members": members.get(r["id"], []), "model": json.loads(r["spec"])}
                for r in self._db.execute("SELECT id, spec FROM groups ORDER BY founded_seq, id")]

    def group_spec(self, group_id: str) -> dict | None:
        """The model spec (as its dict) of group ``group_id``, or None for an unknown group."""
        row = self._db.execute("SELECT spec FROM groups WHERE id = ?", (group_id,)).fetchone()
        return None if row is None else json.loads(row["spec"])

    # The two reads below run once per ingest and cost O(datasets): they parse the stored JSON but build no objects
    # (SQLite's json_extract would be leaner, but refuses the NaN / -Infinity that decisions may hold).
    def accuracy_points(self, group_id: str, spec: dict) -> tuple[list, list]:
        """What the accuracy guard predicts from (`trautoml.decide.predict_accuracy`): the members of ``group_id``
        that trained model ``spec``, and every dataset that got a searched model of its own, each as a
        `trautoml.decide.AccuracyPoint` (its level is its mean landmarker accuracy, None without a landmarker
        profile; its size and classes None in records written before they were kept)."""
        from trautoml.decide import AccuracyPoint

        spec = json.loads(json.dumps(spec))  # as stored: tuples become lists
        members, searched = [], []
        for r in self._db.execute("SELECT profile, decision, group_id FROM datasets ORDER BY seq"):
            prof, d = json.loads(r["profile"]), json.loads(r["decision"])
            level = float(sum(prof["mean"]) / len(prof["mean"])) if prof.get("kind") == "landmarkers" else None
            point = AccuracyPoint(level, d.get("n_train"), float(d["val_accuracy"]), d.get("n_classes"))
            if r["group_id"] == group_id and d["spec"] == spec:
                members.append(point)
            if d["outcome"] == "searched" and level is not None:
                searched.append(point)
        return members, searched

    def group_model_source(self, group_id: str) -> tuple[int, float | None] | None:
        """The final training of group ``group_id``'s model on the dataset that founded the group with it: (training
        images, epochs); None when the record does not say (written before sizes were kept)."""
        for r in self._db.execute("SELECT decision FROM datasets WHERE group_id = ? ORDER BY seq", (group_id,)):
            d = json.loads(r["decision"])
            if d.get("founded"):
                return None if d.get("n_train") is None else (int(d["n_train"]), d.get("final_epochs"))
        return None

    def member_weights(self, group_id: str, spec: dict, point=None, classes: int | None = None) -> dict | None:
        """The member of ``group_id`` a reuse fine-tunes from: among those whose model is ``spec``, whose trained
        weights are kept and whose classes number ``classes`` (when given and recorded), the nearest by mean
        profile to ``point`` (the joining dataset's; None: the latest).
        ``{"dataset": name, "weights": key}``, or None when no member kept weights (records written before they
        were kept)."""
        import numpy as np

        spec = json.loads(json.dumps(spec))
        best, best_d = None, None
        for r in self._db.execute("SELECT name, profile, decision FROM datasets WHERE group_id = ? ORDER BY seq",
                                  (group_id,)):
            d = json.loads(r["decision"])
            if d["spec"] != spec or not d.get("weights") or (
                    classes is not None and d.get("n_classes") not in (None, classes)):
                continue
            mean = json.loads(r["profile"])["mean"]
            dist = 0.0 if point is None or len(mean) != len(point) else float(
                np.linalg.norm(np.asarray(mean, float) - np.asarray(point, float)))
            if best_d is None or dist <= best_d:
                best, best_d = {"dataset": r["name"], "weights": d["weights"]}, dist
        return best

    def profile_points(self) -> tuple[list[str], list[list[float]], list[str]]:
        """Names, mean profiles and groups of every dataset in arrival order (what the groups picture shows)."""
        rows = self._db.execute("SELECT name, profile, group_id FROM datasets ORDER BY seq").fetchall()
        means = [json.loads(r["profile"])["mean"] for r in rows]
        return [r["name"] for r in rows], means, [r["group_id"] for r in rows]

    # ------------------------------------------------------------------ caches (written as results arrive)
    def cached_profile(self, content_hash: str, settings_key: str) -> dict | None:
        """The profile (as its dict) measured earlier for ``content_hash`` under the profile settings ``settings_key``,
        or None."""
        row = self._db.execute(f"SELECT profile FROM {self._c}.profiles WHERE content_hash = ? AND settings = ?",
                               (content_hash, settings_key)).fetchone()
        return None if row is None else json.loads(row["profile"])

    def store_profile(self, content_hash: str, settings_key: str, profile: dict) -> None:
        """Keep ``profile`` (a dict) as the measurement for ``content_hash`` under ``settings_key``, replacing any
        earlier one; committed at once."""
        with self.transaction() as db:
            db.execute(f"INSERT OR REPLACE INTO {self._c}.profiles VALUES (?, ?, ?, ?)",
                       (content_hash, settings_key, _dumps(profile), time.time()))

    def cached_trial(self, content_hash: str, spec_key: str, resource: float, seed: int, caps: str) -> dict | None:
        """The trial (as its dict) measured earlier for ``content_hash`` with spec ``spec_key`` at ``resource`` epochs,
        training seed ``seed`` and data caps ``caps``, or None."""
        row = self._db.execute(f"SELECT trial FROM {self._c}.trials WHERE content_hash = ? AND spec_key = ? "
                               "AND resource = ? "
                               "AND seed = ? AND caps = ?",
                               (content_hash, spec_key, float(resource), int(seed), caps)).fetchone()
        return None if row is None else json.loads(row["trial"])

    def store_trials(self, content_hash: str, caps: str, trials: list[dict]) -> None:
        """Keep measured ``trials`` of ``content_hash`` under data caps ``caps``, in one transaction. Each item holds
        ``spec_key``, ``resource``, ``seed`` and ``trial`` (the trial's dict, with its ``wall_seconds``)."""
        if not trials:
            return
        now = time.time()
        with self.transaction() as db:
            db.executemany(f"INSERT OR REPLACE INTO {self._c}.trials VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(content_hash, t["spec_key"], float(t["resource"]), int(t["seed"]), caps,
                             _dumps(t["trial"]), float(t["trial"]["wall_seconds"]), now) for t in trials])

    # ------------------------------------------------------------------ trained weights (beside the cache)
    def save_weights(self, key: str, state: dict, shape: tuple[int, int, int], seen) -> None:
        """Keep a trained network's ``state`` (its state dict), the input ``shape`` (C, H, W) it runs at and ``seen``
        (the digests of every image it was trained on, `trautoml.models.transfer.image_digests`, its starting
        weights' included) under ``key``, in ``weights_dir`` beside the cache (written to a temporary file, then
        renamed: a kill leaves no half file)."""
        import numpy as np
        import torch

        self.weights_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.weights_dir / f".{key}.{os.getpid()}.tmp"
        torch.save({"state": {k: v.detach().cpu() for k, v in state.items()}, "shape": list(shape),
                    "seen": torch.from_numpy(np.unique(np.asarray(seen, dtype=np.int64)))}, tmp)
        os.replace(tmp, self.weights_dir / f"{key}.pt")

    def load_weights(self, key: str) -> KeptWeights | None:
        """The `KeptWeights` under ``key``, or None when there are none (or the file is unreadable, or written before
        the images were recorded: the training that made them is run again)."""
        import torch

        path = self.weights_dir / f"{key}.pt"
        if not path.is_file():
            return None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            c, h, w = (int(v) for v in obj["shape"])
            return KeptWeights(dict(obj["state"]), (c, h, w), obj["seen"].numpy())
        except Exception:  # noqa: BLE001 - a truncated or foreign file: as if absent
            return None

    # ------------------------------------------------------------------ the one commit of an ingest
    def commit_ingest(self, *, grouper_name: str, grouper_state: dict, expected_version: int | None,
                      settings: dict, decision: Decision, name: str, uri: str | None, family: str | None,
                      profile: dict, assignment: dict, founds_group: bool, group_spec: dict | None) -> int:
        """Grouper state + dataset row + (new) group row in ONE transaction. Returns the grouper state version it
        wrote.

        ``expected_version``: the grouper version the ingest started from (None: no state yet); if another
        process committed in between (it cannot while we hold `lock`), the transaction is refused.
        """
        with self.transaction() as db:
            row = db.execute("SELECT version FROM grouper WHERE id = 1").fetchone()
            current = None if row is None else int(row["version"])
            if current != expected_version:
                raise WorkspaceError("the workspace changed during this ingest (grouper state version "
                                     f"{current}, expected {expected_version}); rerun the command")
            if db.execute("SELECT 1 FROM datasets WHERE content_hash = ?", (decision.content_hash,)).fetchone():
                raise WorkspaceError(f"{name} ({decision.content_hash[:12]}) is already in the workspace")
            now = time.time()
            version = (current or 0) + 1
            db.execute("INSERT OR REPLACE INTO grouper (id, name, state, version) VALUES (1, ?, ?, ?)",
                       (grouper_name, _dumps(grouper_state), version))
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('settings', ?)", (_dumps(settings),))
            cur = db.execute(
                "INSERT INTO datasets (content_hash, name, uri, family, group_id, profile, assignment, decision, "
                "run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (decision.content_hash, name, uri, family, decision.group, _dumps(profile), _dumps(assignment),
                 _dumps(decision.to_dict()), decision.run_id, now))
            assert cur.lastrowid is not None  # the INSERT's row
            seq = int(cur.lastrowid)
            exists = db.execute("SELECT 1 FROM groups WHERE id = ?", (decision.group,)).fetchone()
            if founds_group:
                if exists:
                    raise WorkspaceError(f"group {decision.group} already exists; cannot found it again")
                db.execute("INSERT INTO groups (id, spec, founder, founded_seq, created_at) VALUES (?, ?, ?, ?, ?)",
                           (decision.group, _dumps(group_spec), decision.content_hash, seq, now))
            elif not exists:
                raise WorkspaceError(f"group {decision.group} does not exist; cannot join it")
            return version
