"""The linters the code is held to, run with the test suite: ruff over the repository and mypy over the packages,
both as configured in pyproject.toml (``[tool.ruff]``, ``[tool.mypy]``). They come with the dev extra."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(tool: str, *args: str) -> None:
    """Run ``tool`` (this interpreter's) from the repository root; fail with its output unless it exits 0."""
    if importlib.util.find_spec(tool) is None:
        pytest.fail(f"{tool} is not installed in {sys.prefix}: pip install -e '.[dev]'")
    out = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{tool} {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"


def test_ruff_finds_nothing():
    _run("ruff", "check", "--no-cache", ".")


def test_mypy_finds_nothing_in_the_packages():
    _run("mypy")  # the packages pyproject.toml names; its cache (.mypy_cache) keeps a rerun to seconds
