"""Helpers shared by the API, CLI and workspace end-to-end tests: workspaces, datasets, the CLI as a subprocess, what
MLflow and the state store hold, processes. A plain module (pytest does not collect it); fakes live in `fakes`."""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def mlflow_template(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema and nothing else, made once per test session. Creating the schema
    (MLflow's migrations) takes 5–20 s on 2 cores; a workspace whose ``mlflow.db`` is a copy of it skips that.
    The store holds no trautoml experiment, so the Tracker still creates it with the workspace's artifact root."""
    path = tmp_path_factory.getbasetemp() / "mlflow-template" / "mlflow.db"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def new_workspace(folder: Path, template: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, folder / "mlflow.db")
    return folder


def digits_npz(path: Path, seed: int = 0, n: int = 600, **overrides) -> Path:
    """An npz dataset cut from scikit-learn's digits (uint8 images, 8x8); ``overrides`` replace arrays."""
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = np.random.default_rng(seed).choice(len(d.target), size=n, replace=False)
    arrays = {"x_train": (d.images[idx] * (255 / 16)).astype(np.uint8), "y_train": d.target[idx].astype(np.int64)}
    arrays.update(overrides)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "trautoml", *map(str, args)]


def run_cli(*args, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, timeout=timeout, env=clean_env(),
                          cwd=kw.pop("cwd", None), **kw)


def client(workspace: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{Path(workspace) / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def all_runs(workspace: Path, deleted: bool = True) -> list:
    from mlflow.entities import ViewType

    c = client(workspace)
    exp = c.get_experiment_by_name("trautoml")
    if exp is None:
        return []
    return c.search_runs([exp.experiment_id], run_view_type=ViewType.ALL if deleted else ViewType.ACTIVE_ONLY,
                         max_results=10_000)


def dataset_runs(workspace: Path) -> list:
    """Visible parent runs (one per ingested dataset)."""
    return [r for r in all_runs(workspace, deleted=False) if "mlflow.parentRunId" not in r.data.tags]


def state_counts(workspace: Path) -> dict:
    path = Path(workspace) / ".trautoml" / "state.db"
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("datasets", "groups", "grouper", "trials", "profiles")}


def mlflow_counts(workspace: Path) -> dict:
    path = Path(workspace) / "mlflow.db"
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("runs", "metrics", "params", "tags", "experiments", "model_versions")}


def tree_digest(folder: Path) -> dict:
    """Path → sha256 of every file under ``folder`` (SQLite's -wal/-shm side files left out: opening a database
    read-only may create or truncate them without changing its content)."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file() and not p.name.endswith(("-wal", "-shm", "-journal")):
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def all_gone(pids: set[int], timeout: float = 30) -> set[int]:
    """The pids still alive (zombies count as gone) after waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = set()
        for pid in pids:
            try:
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(pid)
            except OSError:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)
