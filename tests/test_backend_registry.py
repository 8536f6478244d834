import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from search_backends import available_backends, get_backend
from search_backends.base import SearchBudget, SearchTask, Trial
from search_backends.hyperband import Hyperband
from search_backends.random_search import RandomSearch
from trautoml.testing import tiny_dataset

PLUGIN = Path(__file__).parent / "plugins" / "trautoml_fake_backend"


def test_builtin_backends_by_name():
    rs = get_backend("random", space="mlp", chunk_size=2)
    assert isinstance(rs, RandomSearch) and rs.space == "mlp" and rs.chunk_size == 2
    hb = get_backend("hyperband", eta=2, R=16)
    assert isinstance(hb, Hyperband) and (hb.eta, hb.R) == (2, 16)
    assert {"random", "hyperband"} <= set(available_backends())


def test_unknown_backend_lists_the_available_names():
    with pytest.raises(ValueError, match="unknown search backend 'nope'") as e:
        get_backend("nope")
    assert "random" in str(e.value) and "hyperband" in str(e.value)


def write_dist_info(site: Path) -> None:
    """What `pip install --target site` leaves behind: the package and a dist-info with the entry points, both
    taken from the plugin's own pyproject.toml (no network, no build backend needed)."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    shutil.copytree(PLUGIN / "trautoml_fake_backend", site / "trautoml_fake_backend")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in eps.items()) + "\n"
        for group, eps in project["entry-points"].items()))


def use_plugin(site: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "trautoml_fake_backend", raising=False)
    assert "fake-plugin" in available_backends()
    calls = []

    def run_trials(reqs):
        calls.append(reqs)
        return [Trial(r.spec, r.resource, r.seed, 0.42, 0.4, 0.0) for r in reqs]

    backend = get_backend("fake-plugin", tag="t")
    assert type(backend).__module__ == "trautoml_fake_backend" and backend.tag == "t"
    res = backend.search(SearchTask(dataset=tiny_dataset(), budget=SearchBudget(max_epochs=1.5),
                                    run_trials=run_trials))
    assert len(calls) == 1 and res.best_val_accuracy == 0.42 and res.best.space == "cnn"
    assert res.info == {"backend": "fake-plugin", "tag": "t"}
    monkeypatch.delitem(sys.modules, "trautoml_fake_backend", raising=False)


def test_third_party_backend_found_through_its_entry_point(tmp_path, monkeypatch):
    assert "fake-plugin" not in available_backends()
    write_dist_info(tmp_path)
    use_plugin(tmp_path, monkeypatch)


def test_third_party_backend_installed_with_pip(tmp_path, monkeypatch):
    src = tmp_path / "src"
    shutil.copytree(PLUGIN, src)  # build in a copy: setuptools writes build/ and *.egg-info beside the sources
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, f"pip could not build and install the plug-in: {proc.stderr.strip()[-600:]}"
    use_plugin(site, monkeypatch)
