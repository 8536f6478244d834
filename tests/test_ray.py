"""The Ray executor on a local Ray started by the test on 127.0.0.1 (and stopped by it alone)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

os.environ["RAY_AUTH_MODE"] = "disabled"
# A single-node Ray on loopback only (read when ray is imported): otherwise Ray resolves 127.0.0.1 to the
# machine's routable address.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'trautoml[ray]')")
pytestmark = pytest.mark.ray


def where_am_i(x):
    return x * x, os.getpid(), ray.get_runtime_context().get_worker_id()


def die_once(args):
    marker, value = args
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return value + 100


@pytest.fixture(scope="module")
def ray_executor():
    from trautoml.executor import RayExecutor

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}})
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    ex = RayExecutor(max_retries=2)
    yield ex
    ray.shutdown()  # only the Ray this test started; never a bare `ray stop`


def test_trials_run_in_ray_workers(ray_executor):
    out = ray_executor.map(where_am_i, [1, 2, 3, 4])
    assert [o[0] for o in out] == [1, 4, 9, 16]
    assert all(pid != os.getpid() for _, pid, _ in out)
    assert all(worker_id for _, _, worker_id in out)


def test_worker_killed_mid_trial_is_retried_by_ray(ray_executor, tmp_path):
    items = [(str(tmp_path / f"m{i}"), i) for i in range(3)]
    assert ray_executor.map(die_once, items) == [100, 101, 102]


def test_hopeless_trial_goes_to_on_error(ray_executor, tmp_path):
    def always_die(_):
        os.kill(os.getpid(), signal.SIGKILL)

    out = ray_executor.map(always_die, [7], on_error=lambda item, exc: ("failed", item))
    assert out == [("failed", 7)]
