"""Every built-in plug-in passes the conformance checks third parties run (`trautoml.testing`)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from trautoml.grouping import GROUPERS
from trautoml.registry import BACKENDS
from trautoml.search import SearchBudget
from trautoml.testing import check_backend, check_grouper, check_model_space

BUILTIN_BACKENDS = ["random", "hyperband", "metaqnn", "enas", "transfer"]


@pytest.mark.parametrize("name", BUILTIN_BACKENDS)
def test_backend_conformance(name):
    options = {"enas": {"space": "cells"}}.get(name, {})
    result = check_backend(lambda: BACKENDS.get(name)(**options),
                           budget=SearchBudget(max_trials=4, max_epochs=1.0, min_epochs=0.25),
                           warm_start_trained=name != "enas")
    check_model_space(result.best)  # and the space it searches builds what it found


@pytest.mark.parametrize("name", list(GROUPERS))
def test_grouper_conformance(name):
    options = {"kmeans": {"k": 3}, "given": {"labels": list("abcabcab")}}.get(name, {})
    check_grouper(lambda: GROUPERS.get(name)(**options))


def test_landmarker_space_conformance():
    from landmarkers import sample_landmarkers

    for spec in sample_landmarkers(4, seed=0):
        check_model_space(spec)


def test_a_broken_backend_is_caught():
    from trautoml.models.spec import ModelSpec
    from trautoml.search import SearchBackend, SearchResult, TrialRequest

    class ClaimsTooMuch(SearchBackend):
        """Trains one spec for twice the epochs the budget allows."""
        name = "claims-too-much"

        def search(self, task):
            spec = ModelSpec("cnn", {"layers": [{"type": "conv", "filters": 4, "kernel": 3, "stride": 1}]})
            trials = task.run_trials([TrialRequest(spec, task.budget.max_epochs * 2, task.seed)])
            return SearchResult(spec, 1.0, trials, task.budget.max_epochs)

    with pytest.raises(AssertionError, match="above budget.max_epochs"):
        check_backend(ClaimsTooMuch)


def test_the_third_party_plugin_passes_the_checks(monkeypatch):
    plugin = Path(__file__).parent / "plugins" / "trautoml_fake_backend"
    monkeypatch.syspath_prepend(str(plugin))
    monkeypatch.delitem(sys.modules, "trautoml_fake_backend", raising=False)
    from trautoml_fake_backend import FakeBackend

    result = check_backend(FakeBackend)
    check_model_space(result.best)
