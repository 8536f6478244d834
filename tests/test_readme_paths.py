"""The user paths as users take them: the README's Python example copied word for word (a guard-less script,
``python -``), the installed ``trautoml`` console script, and what ``--quiet`` prints."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, clean_env

TRAUTOML = Path(sys.executable).with_name("trautoml")


def readme_python_example() -> str:
    """The first ```python block of the README's "### Python" section, exactly as written."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _check_example_output(out: subprocess.CompletedProcess) -> None:
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    group, outcome, reason, accuracy = lines[0].split()
    assert group == "g1" and outcome == "searched" and reason == "empty-cluster" and 0 <= float(accuracy) <= 1
    members = [m for line in lines[1:] if line.startswith("g") for m in re.findall(r"'([^']+)'", line)]
    assert sorted(members) == ["digits", "digits·inverted", "digits·rotated"]  # short readable names
    assert "→" in out.stdout  # the explanation printed
    assert "3 datasets" in out.stdout and "searches run" in out.stdout  # the summary printed


def test_the_readme_example_runs_as_a_script_without_a_main_guard(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_python_example())
    assert "__main__" not in script.read_text()
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env=clean_env())
    _check_example_output(out)
    assert (tmp_path / "ws" / "mlflow.db").exists()


@pytest.mark.slow  # the same three ingests again
def test_the_readme_example_runs_from_stdin(tmp_path):
    out = subprocess.run([sys.executable, "-"], input=readme_python_example(), cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, env=clean_env())
    _check_example_output(out)


def test_worker_processes_work_from_stdin_and_from_c(tmp_path):
    """The mechanism the example relies on, in seconds: a process pool from ``python -`` and ``python -c``."""
    code = ("from trautoml.executor import LocalExecutor\n"
            "ex = LocalExecutor(workers=2)\n"
            "print(ex.map(abs, [-1, -2, -3]))\n"
            "ex.close()\n")
    for argv, stdin in (([sys.executable, "-"], code), ([sys.executable, "-c", code], None)):
        out = subprocess.run(argv, input=stdin, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             env=clean_env())
        assert out.returncode == 0 and out.stdout.strip() == "[1, 2, 3]", out.stderr


@pytest.mark.skipif(not TRAUTOML.exists(), reason="the trautoml console script is not installed beside this python")
def test_the_console_script_ingests_and_quiet_prints_nothing_on_stderr(tmp_path):
    out = subprocess.run([str(TRAUTOML), "ingest", "builtin:digits?max_train=300", "--preset", "tiny", "--quiet",
                          "--workspace", str(tmp_path / "ws")], capture_output=True, text=True, timeout=600,
                         env=clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert out.stdout.splitlines()[0].split()[:4] == ["dataset", "group", "decision", "reason"]


@pytest.mark.slow  # the demo stream: 12 datasets
@pytest.mark.skipif(not TRAUTOML.exists(), reason="the trautoml console script is not installed beside this python")
def test_the_demo_with_quiet_prints_its_table_and_nothing_on_stderr(tmp_path):
    out = subprocess.run([str(TRAUTOML), "demo", "--preset", "tiny", "--quiet", "--workspace", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=1800, env=clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "trautoml ui" in out.stdout
