"""Fixtures shared by the test modules (helpers that are plain functions live in `helpers` and `fakes`), and the
suite's skip policy: a skip is a failure unless its reason is on `ALLOWED_SKIPS`.

A skipped test proves nothing, and a skip that hides a missing extra, a missing data set or a packaging failure
would let CI pass while the README's promise is broken. The README's test command installs everything a test
needs (`./install.sh --all`), so on the machines this project supports nothing else may skip."""
from __future__ import annotations

import pytest

from helpers import mlflow_template

#: The only reasons a test may skip, each with why it can't run everywhere. Matched as a prefix of the reason.
ALLOWED_SKIPS = {
    "needs a CUDA GPU": "GPU paths are measured on a lent GPU machine (bench/bench_gpu.py); CI has no GPU",
    "needs a machine without CUDA": "checks the refusal a CPU-only machine gives; on a GPU machine it can't",
}


def _skip_reason(report) -> str:
    """The reason pytest recorded for a skip (its longrepr is (file, line, "Skipped: reason"))."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _allowed(reason: str) -> bool:
    return any(reason.startswith(prefix) for prefix in ALLOWED_SKIPS)


def _fail_unexpected_skip(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if not _allowed(reason):
            report.outcome = "failed"
            report.longrepr = (f"unexpected skip: {reason}\n(a skip fails unless its reason is on ALLOWED_SKIPS in "
                               "tests/conftest.py; install everything with ./install.sh --all)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_unexpected_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_unexpected_skip(outcome.get_result())  # a module-level importorskip


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """An MLflow store with its schema and nothing else, made once per session (see `mlflow_template`)."""
    return mlflow_template(tmp_path_factory)
