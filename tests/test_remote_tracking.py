"""A team's path: a real ``mlflow server`` on 127.0.0.1 (SQLite backend, file artifacts) as the tracking URI. Runs
finish, each group's model registers, later ingests work, and MLflow prints nothing of its own on stdout."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import clean_env, run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
                             "--default-artifact-root", (root / "artifacts").as_uri()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(),
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if urllib.request.urlopen(url + "/health", timeout=2).read() == b"OK":
                break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
        time.sleep(0.5)
    yield url, root
    import os
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.mark.slow  # ~2 min on 2 cores: the server starts in ~25 s, then two ingests
def test_ingests_against_a_tracking_server_finish_register_and_keep_working(server, tmp_path):
    url, _ = server
    outs = [run_cli("ingest", uri, "--preset", "tiny", "--executor", "serial", "--quiet",
                    "--workspace", tmp_path / "ws", "--tracking-uri", url, timeout=300)
            for uri in ("builtin:digits?max_train=300", "builtin:digits?max_train=300&invert=1")]
    for out in outs:
        assert out.returncode == 0, out.stderr
        assert "View run" not in out.stdout and "View experiment" not in out.stdout
        assert out.stderr == "", out.stderr  # --quiet: nothing but errors
    from mlflow import MlflowClient

    client = MlflowClient(url, registry_uri=url)
    exp = client.get_experiment_by_name("trautoml")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    assert runs and all(r.info.status == "FINISHED" for r in runs)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2
    versions = client.search_model_versions("name LIKE 'trautoml-group-%'")
    assert sorted(v.run_id for v in versions) == sorted(r.info.run_id for r in parents)
    groups = {r.data.tags["trautoml.group"] for r in parents}
    assert {v.name for v in versions} == {f"trautoml-group-{g}" for g in groups}
