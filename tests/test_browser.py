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


def _cells(dom: str, column: str) -> list[str]:
    """The text of the rendered runs-table cells of one column (ag-grid marks each cell ``role="gridcell"`` with
    its column's ``col-id``)."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells, self.depth = [], 0  # depth > 0: inside a cell of the column, that many open elements

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if self.depth:
                self.depth += tag not in ("br", "img", "input", "path", "svg")
            elif a.get("role") == "gridcell" and a.get("col-id") == column:
                self.cells.append("")
                self.depth = 1

        def handle_endtag(self, tag):
            if self.depth and tag not in ("br", "img", "input", "path", "svg"):
                self.depth -= 1

        def handle_data(self, data):
            if self.depth:
                self.cells[-1] += data

    parser = Cells()
    parser.feed(dom)
    return [" ".join(c.split()) for c in parser.cells]


def test_the_url_trautoml_ui_prints_opens_the_runs_table_with_groups_decisions_and_short_names(tmp_path):
    """`trautoml ui` prints the runs table's URL; the page it opens shows, in the table's own cells, each run's
    group and decision (the saved view's columns) and its dataset by short name (the dataset input)."""
    from fakes import tracked_decision
    from helpers import cli_cmd, clean_env

    tracker = Tracker.for_workspace(tmp_path / "ws")
    for name, group, outcome, reason in (("digits", "g1", "searched", "empty-cluster"),
                                         ("digits·half", "g1", "reused", "test-accepted")):
        run_id = tracker.start_dataset_run(name, "h-" + name, {})
        tracker.log_dataset_input(run_id, name=name, content_hash=f"{len(name):064x}", uri="builtin:" + name,
                                  input_shape=(1, 8, 8), num_classes=10, sizes={"train": 100})
        decision = tracked_decision(name, group, outcome, reason)
        tracker.log_decision(run_id, decision)
        tracker.log_display_tags(run_id, decision)
        tracker.end_run(run_id)
    port = _free_port()
    proc = subprocess.Popen(cli_cmd("ui", "--port", port, "--no-browser", "--workspace", tmp_path / "ws"),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env())
    try:
        line = proc.stdout.readline()
        assert line.startswith("runs table: http://127.0.0.1:"), line
        url = line.split(": ", 1)[1].strip()
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        dom = _render_wide(url, tmp_path / "chrome")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "g1" in _cells(dom, "tags.`group`")
    assert {"searched", "reused"} <= set(_cells(dom, "tags.`decision`"))
    assert any("digits·half" in c for c in _cells(dom, "attributes.`Dataset`"))


def _render_wide(url: str, profile_dir: Path) -> str:
    """As `_render`, in a window wide enough that the table renders every column (it draws only those in view)."""
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=2400,1200",
         f"--user-data-dir={profile_dir}", "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    return out.stdout
