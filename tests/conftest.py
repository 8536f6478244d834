"""Fixtures shared by the test modules (helpers that are plain functions live in `helpers` and `fakes`)."""
from __future__ import annotations

import pytest

from helpers import mlflow_template


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """An MLflow store with its schema and nothing else, made once per session (see `mlflow_template`)."""
    return mlflow_template(tmp_path_factory)
