"""trautoml as a user gets it: a non-editable ``pip install .`` (a wheel built from a copy of the checkout, so its
package data and entry points are what a release ships) and the ``trautoml`` console script it installs, run from
outside the checkout on the default (process-pool) executor. Digits then scikit-image's photos, two families,
found two groups; ``groups``, ``show`` and ``summary`` read them back; the README's alias load of a group's model
(``mlflow.pytorch`` and ``mlflow.pyfunc``) predicts the dataset it was trained on."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT

SHIPPED = ("pyproject.toml", "README.md", "trautoml", "landmarkers", "search_backends")


def _env(site: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTHON"))}
    env["PYTHONPATH"] = str(site)  # only the installed copy: the checkout is not on the path
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict, Path]:
    """(console script, environment, a folder outside the checkout) after ``pip install --no-deps .``."""
    root = tmp_path_factory.mktemp("installed")
    src = root / "src"
    src.mkdir()
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    site = root / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(src)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    env = _env(site)
    where = subprocess.run([sys.executable, "-c", "import trautoml, landmarkers, search_backends as s\n"
                            "print(trautoml.__file__, landmarkers.__file__, s.__file__)"],
                           capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert where.returncode == 0, where.stderr
    assert all(Path(p).is_relative_to(site) for p in where.stdout.split()), where.stdout  # not the checkout's
    script = site / "bin" / "trautoml"
    assert script.exists(), sorted(p.name for p in site.iterdir())
    return script, env, root


@pytest.fixture(scope="module")
def stream(installed) -> tuple[Path, dict, Path]:
    """The installed console script ingests digits, then photos, into a new workspace (default executor)."""
    script, env, root = installed
    ws = root / "ws"
    out = subprocess.run([str(script), "ingest", "builtin:digits", "builtin:photos", "--preset", "tiny",
                          "--workspace", str(ws)], capture_output=True, text=True, env=env, cwd=root, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[2/2]" in out.stderr and "trautoml ui" in out.stdout + out.stderr
    return script, env, ws


def _cli(stream, *args) -> subprocess.CompletedProcess:
    script, env, ws = stream
    out = subprocess.run([str(script), *args, "--workspace", str(ws)], capture_output=True, text=True, env=env,
                         cwd=ws.parent, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_the_installed_package_ships_its_data_and_entry_points(installed):
    script, env, root = installed
    out = subprocess.run([sys.executable, "-c", "from search_backends import available_backends\n"
                          "from landmarkers.landmarker_set import load_selected\n"
                          "from search_backends.transfer import minibench\n"
                          "print(sorted(available_backends()))\n"
                          "print(len(load_selected()[1]), minibench.DEFAULT_PATH.exists())"],
                         capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    backends, package_data = out.stdout.splitlines()
    assert {"hyperband", "metaqnn", "enas", "transfer", "random"} <= set(eval(backends))  # noqa: S307 - our list
    n_selected, table = package_data.split()
    assert int(n_selected) >= 3 and table == "True"  # selected.json and minibench.npz came with the wheel


def test_digits_then_photos_found_two_groups_through_the_console_script(stream):
    groups = json.loads(_cli(stream, "groups", "--json").stdout)
    assert [(g["id"], g["members"]) for g in groups] == [("g1", ["digits"]), ("g2", ["photos"])]
    photos = json.loads(_cli(stream, "show", "photos", "--json").stdout)
    assert photos["group"] == "g2" and photos["outcome"] == "searched"
    assert photos["reason"] in ("test-rejected", "empty-cluster"), photos["reason"]  # the guard or the MAP said new
    shown = _cli(stream, "show", "digits").stdout
    assert "digits" in shown and "g1" in shown
    summary = _cli(stream, "summary").stdout
    assert re.search(r"\b2 datasets\b", summary) and "2 searches run" in summary, summary


def test_the_readme_alias_load_predicts_the_groups_dataset(stream):
    import mlflow

    from trautoml.data import load_dataset

    _, _, ws = stream
    uri = f"sqlite:///{ws / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        model = mlflow.pytorch.load_model("models:/trautoml-group-g1@champion")     # a torch.nn.Module
        pyfunc = mlflow.pyfunc.load_model("models:/trautoml-group-g1@champion")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    ds = load_dataset("builtin:digits")
    x = ds.x_test.astype(np.float32)
    scores = np.asarray(pyfunc.predict(x))
    assert scores.shape == (len(x), ds.num_classes)
    import torch

    with torch.no_grad():
        direct = model(torch.from_numpy(x)).numpy()  # logged as an exported program: already in eval mode
    np.testing.assert_allclose(scores, direct, rtol=1e-4, atol=1e-4)   # the two loaders give one model
    accuracy = float((scores.argmax(1) == ds.y_test).mean())
    shown = json.loads(_cli(stream, "show", "digits", "--json").stdout)
    assert accuracy == pytest.approx(shown["test_accuracy"], abs=0.02)  # the registered weights are the run's
