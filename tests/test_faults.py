"""Faults during an ingest (issue 8, item 2): a worker killed mid-trial is retried and the ingest completes; a trial
that keeps killing its worker is recorded as failed (workspace and MLflow) and the search carries on; a driver killed
mid-stream resumes from the workspace without redoing finished work.

The first two run a real `LocalExecutor(workers=2)` (spawned worker processes) behind a thin wrapper that makes
chosen trials SIGKILL their own worker and logs every trial execution to a file, so the tests see which trials ran
where and how often.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from helpers import all_runs, clean_env, cli_cmd, dataset_runs, digits_npz, \
    new_workspace, run_cli, state_counts
from trautoml import TrAutoML
from trautoml.executor import LocalExecutor

TINY = ("--preset", "tiny", "--executor", "serial")


# ------------------------------------------------------------------------------------------ sabotage
def _key(item) -> str:
    """A landmarker task (a dict) or a search TrialRequest, named stably."""
    if isinstance(item, dict):
        return f"landmarker:{item['seed']}"
    return f"search:{item.spec.key()}@{item.resource!r}"


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _sabotaged(fn, log: str, driver_pid: int, claim: str | None, doomed: str | None, item):
    """Run one trial in a worker, logging its key. The worker dies by SIGKILL while it trains when it is the first
    to claim ``claim`` (an O_EXCL marker file: once per marker) or whenever it runs the ``doomed`` trial. Never in
    the driver (an executor runs a lone item in process)."""
    key = _key(item)
    with open(log, "a") as fh:
        fh.write(f"{key} {os.getpid()}\n")
    die = os.getpid() != driver_pid and (key == doomed or (claim is not None and _claim(claim, key)))
    if die:  # mid-trial: a timer kills the process while fn trains; a trial quicker than that dies at its end
        threading.Timer(0.05, _kill_self).start()
    result = fn(item)
    if die:
        _kill_self()
    return result


def _claim(path: str, key: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, key.encode())
    os.close(fd)
    return True


class Sabotage:
    """An executor around a real one. ``kill_once``: kinds of map (``landmarker``, ``search``) whose first trial to
    start is killed once. ``doom_first_search``: the first trial of the first search batch kills its worker every
    time it runs."""

    def __init__(self, inner: LocalExecutor, folder: Path, kill_once=(), doom_first_search: bool = False):
        self.inner, self.folder = inner, folder
        self.name, self.workers = inner.name, inner.workers
        self.kill_once, self.doom_first_search = set(kill_once), doom_first_search
        self.doomed: str | None = None
        self.log = folder / "executions.log"

    def map(self, fn, items, on_error=None):
        items = list(items)
        kind = "search" if items and not isinstance(items[0], dict) else "landmarker"
        if kind == "search" and self.doom_first_search and self.doomed is None:
            self.doomed = _key(items[0])
        claim = str(self.folder / f"killed-{kind}") if kind in self.kill_once else None
        wrapped = functools.partial(_sabotaged, fn, str(self.log), os.getpid(), claim, self.doomed)
        return self.inner.map(wrapped, items, on_error=on_error)

    def executions(self) -> list[str]:
        return [line.split()[0] for line in self.log.read_text().splitlines()]

    def close(self) -> None:
        self.inner.close()


# ------------------------------------------------------------------------------------------ tests
def test_worker_killed_mid_landmarker_and_mid_search_trial_is_retried_and_the_ingest_completes(tmp_path, template):
    data = digits_npz(tmp_path / "d.npz", seed=7, n=300)
    ex = Sabotage(LocalExecutor(workers=2, max_retries=2), tmp_path, kill_once=("landmarker", "search"))
    try:
        with TrAutoML(new_workspace(tmp_path / "ws", template), preset="tiny", executor=ex, quiet=True) as t:
            d = t.ingest(f"npz:{data}")
    finally:
        ex.close()
    killed = [(tmp_path / f"killed-{kind}").read_text() for kind in ("landmarker", "search")]  # both kills happened
    runs = ex.executions()
    assert all(runs.count(k) >= 2 for k in killed)  # each killed trial ran again
    assert len({k for k in runs if k.startswith("landmarker:")}) == 5 * 3  # preset tiny: T = 5 x B = 3
    # nothing was lost: a complete profile, no failed trial, a searched model
    assert d.outcome == "searched" and d.failed_trials == 0 and d.trials >= 2
    with sqlite3.connect(tmp_path / "ws" / ".trautoml" / "state.db") as db:
        profile = json.loads(db.execute("SELECT profile FROM datasets").fetchone()[0])
    # ... and the retried trials gave what they give undisturbed: the profile equals one computed in process
    from landmarkers import ProfileBudget
    from landmarkers import profile as landmarker_profile
    from trautoml.data import load_dataset
    from trautoml.executor import SerialExecutor

    tiny = t.preset
    undisturbed = landmarker_profile(load_dataset(f"npz:{data}"), n_models=tiny.n_models, n_trials=tiny.n_trials,
                                     seed=0, executor=SerialExecutor(),
                                     budget=ProfileBudget(tiny.profile_epochs, tiny.profile_max_train,
                                                          tiny.profile_max_eval))
    assert np.array_equal(profile["trials"], undisturbed.trials)


def test_a_trial_that_keeps_killing_its_worker_is_recorded_failed_and_the_search_carries_on(tmp_path, template):
    data = digits_npz(tmp_path / "d.npz", seed=8, n=300)
    ws = new_workspace(tmp_path / "ws", template)
    ex = Sabotage(LocalExecutor(workers=2, max_retries=1), tmp_path, doom_first_search=True)
    try:
        with TrAutoML(ws, preset="tiny", executor=ex, quiet=True) as t:
            d = t.ingest(f"npz:{data}")
    finally:
        ex.close()
    runs = ex.executions()
    assert runs.count(ex.doomed) == 2  # the first try and its one retry (max_retries=1)
    # recorded as failed in the workspace decision ...
    assert d.outcome == "searched" and d.failed_trials == 1  # the trials beside it were only rerun
    # ... and in MLflow, as a FAILED child run of the dataset's run that names the lost worker
    children = [r for r in all_runs(ws) if r.data.tags.get("mlflow.parentRunId") == d.run_id]
    assert len(children) == d.trials
    failed = [r for r in children if r.info.status == "FAILED"]
    assert len(failed) == d.failed_trials
    doomed_spec, doomed_resource = ex.doomed.removeprefix("search:").rsplit("@", 1)
    doomed_runs = [r for r in failed if r.data.params["spec_key"] == doomed_spec
                   and float(r.data.params["resource"]) == float(doomed_resource)]
    assert len(doomed_runs) == 1 and doomed_runs[0].data.tags["trautoml.status"] == "failed"
    assert doomed_runs[0].data.tags["trautoml.error"].startswith("worker lost")
    # the search went on without it: other trials finished and the chosen model is one that trained
    ok = [r for r in children if r.info.status == "FINISHED"]
    assert ok and d.spec.key() in {r.data.params["spec_key"] for r in ok} and d.spec.key() != doomed_spec
    assert d.val_accuracy > 0.1
    assert dataset_runs(ws)[0].info.status == "FINISHED"
    # a failed trial is not cached: a later search would try it again
    with sqlite3.connect(ws / ".trautoml" / "state.db") as db:
        cached = {(k, r) for k, r in db.execute("SELECT spec_key, resource FROM trials")}
    assert (doomed_spec, float(doomed_resource)) not in cached


def _die_or_sleep(x):
    if x == "doomed":
        _kill_self()
    time.sleep(1.0)  # a bystander: still running in the other worker when the doomed one kills its own
    return x


def test_a_bystander_of_a_trial_that_keeps_dying_is_not_given_up():
    ex = LocalExecutor(workers=2, max_retries=1)
    try:
        out = ex.map(_die_or_sleep, ["doomed", "bystander"], on_error=lambda item, exc: ("failed", item))
    finally:
        ex.close()
    assert out == [("failed", "doomed"), "bystander"]


def _trial_rows(ws: Path) -> dict:
    with sqlite3.connect(ws / ".trautoml" / "state.db") as db:
        trials = {(h, k, r, s, c): t for h, k, r, s, c, t in
                  db.execute("SELECT content_hash, spec_key, resource, seed, caps, created_at FROM trials")}
        profiles = {(h, k): t for h, k, t in db.execute("SELECT content_hash, settings, created_at FROM profiles")}
        datasets = {h: (n, dec) for h, n, dec in db.execute("SELECT content_hash, name, decision FROM datasets")}
    return {"trials": trials, "profiles": profiles, "datasets": datasets}


def test_driver_killed_mid_stream_resumes_without_redoing_finished_work(tmp_path, template):
    """`trautoml ingest A B` is SIGKILLed once A is committed and B's profile and first rung of trials are in the
    workspace; the same command run again ingests B from there. Every trial or profile the workspace held is reused,
    not recomputed: its row, written with ``INSERT OR REPLACE`` and a ``created_at`` time, is untouched."""
    ws = new_workspace(tmp_path / "ws", template)
    a = digits_npz(tmp_path / "a.npz", seed=9, n=300)
    # B: the same images with random labels, a profile at chance level: B founds its own group and is searched
    noise = np.random.default_rng(0).integers(0, 10, size=300)
    b = digits_npz(tmp_path / "b.npz", seed=10, n=300, y_train=noise)
    argv = ["ingest", f"npz:{a}", f"npz:{b}", "--preset", "tiny", "--workspace", str(ws)]  # the default executor
    proc = subprocess.Popen(cli_cmd(*argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=clean_env())
    seen = []
    try:
        stage = 0  # 0: before B starts, 1: B started; the first "search:" line after that is B's first rung
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("[2/2]"):
                stage = 1
            elif stage == 1 and line.startswith("  search: "):
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    before = _trial_rows(ws)
    assert len(before["datasets"]) == 1 and len(before["profiles"]) == 2  # A committed; B's profile stored
    (a_hash, (a_name, a_decision)), = before["datasets"].items()
    b_trials = [key for key in before["trials"] if key[0] != a_hash]
    assert len(b_trials) >= 3  # B's first rung (tiny Hyperband: 3 configs at 1/3 epoch)

    out = run_cli(*argv)
    assert out.returncode == 0, out.stderr
    assert f"{a_name}: already in the workspace" in out.stderr
    after = _trial_rows(ws)
    # each dataset once; A's decision is the one committed before the kill
    assert sorted(n for n, _ in after["datasets"].values()) == sorted([a_name, "b"])
    assert after["datasets"][a_hash] == (a_name, a_decision)
    groups = json.loads(run_cli("groups", "--json", "--workspace", ws).stdout)
    assert sorted(m for g in groups for m in g["members"]) == sorted([a_name, "b"])
    # nothing the workspace held was recomputed (a recomputed row would carry a new created_at)
    assert {k: after["trials"][k] for k in before["trials"]} == before["trials"]
    assert {k: after["profiles"][k] for k in before["profiles"]} == before["profiles"]
    b_decision = json.loads(next(dec for h, (n, dec) in after["datasets"].items() if h != a_hash))
    assert b_decision["profile_cached"] is True
    assert b_decision["cached_trials"] == len(b_trials)
    assert state_counts(ws)["trials"] == len(after["trials"]) > len(before["trials"])  # B's later rung(s)
    runs = dataset_runs(ws)
    assert sorted(r.data.tags["trautoml.dataset"] for r in runs) == sorted([a_name, "b"])
    assert not [r for r in all_runs(ws) if r.info.status == "RUNNING"]


ORPHAN_DRIVER = """
import os, sys, time
from trautoml.executor import LocalExecutor
from trautoml.tracking import _model_logger

executor = LocalExecutor(1)
pool_worker = executor._ensure_pool().submit(os.getpid).result()
model_logger = _model_logger().submit(os.getpid).result()
print(pool_worker, model_logger, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for its (new) parent to reap it counts as gone
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_of_a_killed_driver_exit_instead_of_lingering():
    """A driver killed with SIGKILL leaves its pool worker and its model-logging process behind; both notice that
    their parent is gone and exit (they used to wait on their task queue forever, holding ~1 GB each)."""
    proc = subprocess.Popen([os.sys.executable, "-c", ORPHAN_DRIVER], stdout=subprocess.PIPE, text=True,
                            env=clean_env())
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if _alive(p)]
