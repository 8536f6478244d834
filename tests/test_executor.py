"""Executors: same results in order whatever the backend; a worker killed mid-trial is retried; bounded."""
from __future__ import annotations

import os
import signal
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from trautoml.executor import LocalExecutor, SerialExecutor, make_executor


def square(x):
    return x * x


def die_once(args):
    """Kill our own worker the first time this item runs (marker file), succeed on the retry."""
    marker, value = args
    if not Path(marker).exists():
        Path(marker).write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return value * 10


def always_die(args):
    os.kill(os.getpid(), signal.SIGKILL)


def test_serial_and_local_agree_in_order():
    items = list(range(7))
    local = LocalExecutor(workers=2)
    try:
        assert local.map(square, items) == SerialExecutor().map(square, items) == [i * i for i in items]
    finally:
        local.close()


@pytest.mark.slow  # ~20-40 s of process spawns; tests/test_faults.py covers the same through an ingest
def test_worker_killed_mid_trial_is_retried(tmp_path):
    ex = LocalExecutor(workers=2, max_retries=3)
    try:
        items = [(str(tmp_path / f"m{i}"), i) for i in range(4)]
        assert ex.map(die_once, items) == [0, 10, 20, 30]
        assert all((tmp_path / f"m{i}").exists() for i in range(4))
    finally:
        ex.close()


@pytest.mark.slow  # as above: tests/test_faults.py covers it through an ingest
def test_item_that_keeps_killing_its_worker_goes_to_on_error(tmp_path):
    ex = LocalExecutor(workers=2, max_retries=1)
    try:
        out = ex.map(always_die, [1, 2], on_error=lambda item, exc: ("failed", item, type(exc).__name__))
        assert out == [("failed", 1, "BrokenProcessPool"), ("failed", 2, "BrokenProcessPool")]
        with pytest.raises(BrokenProcessPool):
            ex.map(always_die, [1, 2])
        assert ex.map(square, [3, 4]) == [9, 16]  # the executor is usable afterwards
    finally:
        ex.close()


def test_unknown_executor_is_named():
    with pytest.raises(ValueError, match="unknown executor 'gpu-farm'"):
        make_executor("gpu-farm")
