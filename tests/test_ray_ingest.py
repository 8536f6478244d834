"""An ingest whose trials run on a local Ray the test starts on 127.0.0.1 (and stops itself), compared with the
same ingest on the serial executor (issue 8, item 1: the same seeds give the same profiles and decisions)."""
from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"
# A single-node Ray on loopback only (read when ray is imported): otherwise Ray resolves 127.0.0.1 to the
# machine's routable address.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'trautoml[ray]')")
pytestmark = pytest.mark.ray

from helpers import digits_npz, mlflow_template, new_workspace  # noqa: E402
from trautoml import TrAutoML  # noqa: E402

SEED = 3


def _traced(fn, item):
    """Run one trial and say where it ran: (result, pid, Ray worker id)."""
    return fn(item), os.getpid(), ray.get_runtime_context().get_worker_id()


class TracingExecutor:
    """Wraps the RayExecutor: every trial reports the process and Ray worker it ran in; results pass through."""

    name = "ray"

    def __init__(self, inner):
        self.inner = inner
        self.where: list[tuple[str, int | None, str | None]] = []

    def map(self, fn, items, on_error=None):
        items = list(items)
        lost = None if on_error is None else (lambda item, exc: (on_error(item, exc), None, None))
        out = self.inner.map(functools.partial(_traced, fn), items, on_error=lost)
        kind = getattr(getattr(fn, "func", fn), "__name__", "?")
        self.where += [(kind, pid, wid) for _, pid, wid in out]
        return [r for r, _, _ in out]

    def close(self) -> None:
        self.inner.close()


def _stored(ws: Path) -> tuple[dict, list]:
    """The committed dataset row's profile and decision, and the trial cache (spec, resource, seed, val acc)."""
    with sqlite3.connect(ws / ".trautoml" / "state.db") as db:
        profile, decision = db.execute("SELECT profile, decision FROM datasets").fetchone()
        trials = sorted((k, r, s, json.loads(t)["val_accuracy"])
                        for k, r, s, t in db.execute("SELECT spec_key, resource, seed, trial FROM trials"))
    return {"profile": json.loads(profile), "decision": json.loads(decision)}, trials


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}})
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    yield
    ray.shutdown()  # only the Ray this test started; never a bare `ray stop`


def test_ingest_through_ray_runs_trials_in_ray_workers_and_matches_serial(tmp_path_factory, ray_session):
    from trautoml.executor import RayExecutor

    root = tmp_path_factory.mktemp("ray-ingest")
    template = mlflow_template(tmp_path_factory)
    data = digits_npz(root / "d.npz", seed=5, n=300)

    executor = TracingExecutor(RayExecutor(max_retries=2))
    t0 = time.perf_counter()
    with TrAutoML(new_workspace(root / "ray", template), preset="tiny", executor=executor, seed=SEED,
                  quiet=True) as t:
        on_ray = t.ingest(f"npz:{data}")
    t1 = time.perf_counter()
    with TrAutoML(new_workspace(root / "serial", template), preset="tiny", executor="serial", seed=SEED,
                  quiet=True) as t:
        serial = t.ingest(f"npz:{data}")
    print(f"tiny ingest: {t1 - t0:.1f}s on Ray, {time.perf_counter() - t1:.1f}s serial (wall)")

    # every landmarker trial (T x B) and every search trial went through Ray, each in a Ray worker process
    kinds = [k for k, _, _ in executor.where]
    assert kinds.count("_run_trial") == 5 * 3  # preset tiny: T = 5 trials of B = 3 landmarkers
    assert kinds.count("run_trial") == on_ray.trials >= 2
    assert on_ray.cached_trials == on_ray.failed_trials == 0
    assert all(pid is not None and pid != os.getpid() for _, pid, _ in executor.where)
    assert all(wid for _, _, wid in executor.where)

    # same seed, same profile, same trials, same decision
    ray_state, ray_trials = _stored(root / "ray")
    serial_state, serial_trials = _stored(root / "serial")
    assert np.array_equal(ray_state["profile"]["trials"], serial_state["profile"]["trials"])
    assert ray_trials == serial_trials
    assert (on_ray.group, on_ray.outcome, on_ray.reason, on_ray.spec) == \
           (serial.group, serial.outcome, serial.reason, serial.spec)
    assert (on_ray.val_accuracy, on_ray.test_accuracy) == (serial.val_accuracy, serial.test_accuracy)
    seconds = lambda d: {k: v for k, v in d.items() if k != "seconds"}  # noqa: E731 - wall clock differs
    assert seconds(ray_state["decision"]["search"]) == seconds(serial_state["decision"]["search"])
