"""SIGKILL one ingest at 14 points spread over its whole life, in a new workspace (store creation, profile, search,
final training, model logging, commit), then rerun it. After each: the rerun completes, the dataset is stored
once, no MLflow run is left RUNNING, no finished trial or profile is computed again, no worker outlives the kill."""
from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import threading
import time

import pytest

from trautoml.models.spec import ModelSpec

from helpers import all_gone, all_runs, clean_env, cli_cmd, dataset_runs, descendants, run_cli, state_counts

POINTS = 14  # every stage gets at least one (CI runs this with everything else in an hour on 2 cores)
URI = "builtin:digits?subsample=0.6"


def _argv(ws, quiet: bool = False) -> list[str]:
    return ["ingest", URI, "--preset", "tiny", *(["--quiet"] if quiet else []), "--workspace", str(ws)]


def _cached(ws) -> tuple[int, list[tuple[str, float]]]:
    """The profiles and the (spec key, epochs) of the trials in the workspace's cache."""
    path = ws / ".trautoml" / "state.db"
    if not path.exists():
        return 0, []
    with sqlite3.connect(path) as db:
        profiles = db.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
        return profiles, db.execute("SELECT spec_key, resource FROM trials").fetchall()


def _decision(ws) -> dict:
    """The one committed dataset's decision, as ``trautoml show --json`` prints it (read from the state store)."""
    with sqlite3.connect(ws / ".trautoml" / "state.db") as db:
        (decision,), = db.execute("SELECT decision FROM datasets").fetchall()
    return json.loads(decision)


def _shape(line: str) -> str:
    """A progress line without its numbers (accuracies and seconds differ from run to run)."""
    return re.sub(r"\d+(\.\d+)?", "#", line)


class Timeline:
    """Reads a running ingest's progress lines (stderr) in a thread, noting when each arrived."""

    def __init__(self, proc: subprocess.Popen):
        self.t0, self.lines, self.times = time.monotonic(), [], []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, args=(proc.stderr,), daemon=True).start()

        self.ended = False

    def _read(self, stream) -> None:
        for line in stream:
            with self.changed:
                self.lines.append(line.strip())
                self.times.append(time.monotonic() - self.t0)
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def count(self, text: str) -> int:
        return [_shape(line) for line in self.lines].count(_shape(text))

    def wait_for(self, text: str, occurrence: int, timeout: float = 600) -> bool:
        """Until a line like ``text`` (numbers aside) has arrived ``occurrence`` times (False if the process ended
        first or the wait timed out)."""
        with self.changed:
            self.changed.wait_for(lambda: self.count(text) >= occurrence or self.ended, timeout=timeout)
            return self.count(text) >= occurrence


@pytest.fixture(scope="module")
def milestones(tmp_path_factory) -> tuple[list[str], list[float], float]:
    """An undisturbed ingest into a new workspace: its stderr lines, when each came, and when it ended. The second
    of two such runs: the first in a new environment also prints one-off notices (matplotlib building its font
    cache) that later runs do not."""
    for attempt in ("first", "second"):
        ws = tmp_path_factory.mktemp(f"undisturbed-{attempt}") / "ws"
        proc = subprocess.Popen(cli_cmd(*_argv(ws)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=clean_env())
        timeline = Timeline(proc)
        assert proc.wait(timeout=600) == 0
        lifetime = time.monotonic() - timeline.t0
        time.sleep(0.5)
    return list(timeline.lines), list(timeline.times), lifetime


@pytest.mark.slow  # 14 kills and reruns
@pytest.mark.timeout(3 * 3600)
def test_sigkill_anywhere_then_rerun(tmp_path, milestones):
    """Kill point i is at i/20 of the undisturbed ingest's life, measured from the last progress line before it
    (the kill waits for that line, then sleeps the rest): the points land in the same stages however loaded the
    machine is. The last point comes after the final progress line (model logging, commit, run finishing)."""
    lines, times, lifetime = milestones
    report = []
    for i in range(POINTS):
        target = lifetime * (i + 0.5) / POINTS
        before = [k for k, t in enumerate(times) if t <= target]
        ws = tmp_path / f"ws{i}"
        proc = subprocess.Popen(cli_cmd(*_argv(ws)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=clean_env())
        timeline = Timeline(proc)
        if before:
            text = lines[before[-1]]
            assert timeline.wait_for(text, [_shape(x) for x in lines[:before[-1] + 1]].count(_shape(text))), \
                f"point {i}: the ingest ended before printing «{text}»"
        time.sleep(max(0.0, target - (times[before[-1]] if before else 0.0)))
        stage = timeline.lines[-1] if timeline.lines else "(no progress yet)"
        children = descendants(proc.pid)
        proc.kill()
        proc.wait()
        assert not all_gone(children), f"kill at {target:.1f}s left workers running"
        committed = state_counts(ws).get("datasets", 0)
        profiles, cached = _cached(ws)

        out = run_cli(*_argv(ws, quiet=True), timeout=600)
        assert out.returncode == 0, (target, out.stderr)
        assert state_counts(ws)["datasets"] == 1 and state_counts(ws)["groups"] == 1, target
        assert len(dataset_runs(ws)) == 1, target
        assert not [r for r in all_runs(ws) if r.info.status == "RUNNING"], target
        shown = _decision(ws)
        # The final training is cached too, but with tracking it is trained again on a rerun: its weights are
        # logged as the model, and they are not kept before the commit. Every search trial must come from the cache.
        final = (ModelSpec.from_dict(shown["spec"]).key(), shown["final_epochs"])
        trials = sum(1 for key, epochs in cached if (key, epochs) != final)
        if not committed:  # the rerun did the ingest: what the killed one had finished came from the cache
            assert shown["profile_cached"] == (profiles > 0), target
            assert shown["cached_trials"] >= trials, target
        report.append(f"{target:5.1f}s after «{stage[:50]}»: committed={committed} profiles={profiles} "
                      f"trials={trials}; rerun cached_trials={shown['cached_trials']}")
        print(report[-1], flush=True)
    print(f"undisturbed ingest {lifetime:.1f}s\n" + "\n".join(report))
