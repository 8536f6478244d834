"""The MLflow UI, as a person sees it: a real `mlflow server` on 127.0.0.1 and headless Chromium."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from trautoml.tracking import Tracker

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _render(url: str, profile_dir: Path) -> str:
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile_dir}", "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    return out.stdout


@pytest.fixture
def server(tmp_path):
    tracker = Tracker.for_workspace(tmp_path)
    runs = {}
    for name, group, decision in (("digits-small", "g1", "searched"), ("digits-rotated", "g1", "reused")):
        run_id = tracker.start_dataset_run(name, "h-" + name, {"alpha": 0.005})
        tracker._log_tags(run_id, {"trautoml.group": group, "trautoml.decision": decision})
        tracker.end_run(run_id)
        runs[name] = run_id
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow_bin), "server", "--backend-store-uri", tracker.tracking_uri,
                             "--default-artifact-root", (tmp_path / "mlruns").as_uri(),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start within 90 s")
    yield base, tracker.experiment_id, runs
    proc.terminate()
    proc.wait(timeout=30)


def test_experiment_page_lists_dataset_runs_and_run_page_shows_group_tag(server, tmp_path):
    base, experiment_id, runs = server
    listing = _render(f"{base}/#/experiments/{experiment_id}/runs", tmp_path / "chrome1")
    assert "digits-small" in listing and "digits-rotated" in listing
    page = _render(f"{base}/#/experiments/{experiment_id}/runs/{runs['digits-rotated']}", tmp_path / "chrome2")
    assert "trautoml.group" in page and "trautoml.decision" in page
    assert "reused" in page
