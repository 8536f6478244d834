"""``trautoml ingest --executor ray`` as a user runs it with no Ray running: the executor starts a local Ray on
loopback, the trials run in it, and ``close()`` shuts it down: no Ray process outlives the command."""
from __future__ import annotations

import json
import subprocess

import pytest

from helpers import clean_env, cli_cmd, digits_npz, new_workspace, run_cli, state_counts

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'trautoml[ray]')")
pytestmark = pytest.mark.ray

RAY_DAEMONS = ("raylet", "gcs_server")


def _ray_daemons() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,comm="], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.split()[-1].startswith(RAY_DAEMONS)]


def test_ingest_with_the_ray_executor_starts_and_stops_its_own_ray(tmp_path, template):
    assert _ray_daemons() == [], "a Ray is already running: this test needs none"
    ws = new_workspace(tmp_path / "ws", template)
    digits_npz(tmp_path / "d.npz", seed=41, n=400)
    env = clean_env()
    env["RAY_AUTH_MODE"] = "disabled"
    out = subprocess.run(cli_cmd("ingest", tmp_path / "d.npz", "--preset", "tiny", "--executor", "ray", "--quiet",
                                 "--workspace", ws), capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert state_counts(ws)["datasets"] == 1
    shown = json.loads(run_cli("show", "d", "--json", "--workspace", ws).stdout)
    assert shown["outcome"] == "searched" and shown["trials"] >= 3 and 0 < shown["test_accuracy"] <= 1
    assert _ray_daemons() == [], "the Ray the command started outlived it"
