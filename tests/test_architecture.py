"""The package structure: plug-ins depend on the core, never the reverse; one registry format for every kind."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import clean_env
from trautoml.registry import Registry


def test_the_core_imports_no_plug_in_package():
    """Importing every module of ``trautoml`` leaves ``search_backends`` and ``landmarkers`` unimported: the core
    reaches them only through its registries, when a name is asked for."""
    code = ("import importlib, pkgutil, sys, trautoml\n"
            "for m in pkgutil.walk_packages(trautoml.__path__, 'trautoml.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('search_backends', 'landmarkers')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_registry_lists_registered_names_then_entry_points_and_names_what_exists():
    reg = Registry("search backend", "trautoml.search_backends")
    assert "hyperband" in reg and reg.get("hyperband").__name__ == "Hyperband"  # an entry point, loaded on demand
    reg.register("mine", object)
    assert reg.names()[0] == "mine" and reg["mine"] is object and "mine" in reg
    assert reg.names() == ["mine", *sorted(set(reg.names()) - {"mine"})]  # loading an entry point keeps the order
    with pytest.raises(ValueError, match=r"unknown search backend 'nope'; available: mine, enas, hyperband"):
        reg.get("nope")
    assert "nope" not in reg and 3 not in reg


def test_the_plug_in_surface_is_the_core_s():
    import search_backends.base as base
    import trautoml.search as core

    assert all(getattr(base, n) is getattr(core, n) for n in core.__all__)
