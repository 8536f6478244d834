"""Streams: the named streams, manifests (JSON and text) and folder streams."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trautoml.data import Dataset, DatasetError, StreamItem, load_stream
from trautoml.data.sources import fashion_mnist_dir


def _has_fashion_mnist() -> bool:
    return fashion_mnist_dir().is_dir()


def test_demo_stream_shape():
    items = load_stream("stream:demo")
    assert len(items) >= 10
    assert all(isinstance(i, StreamItem) for i in items)
    assert len({i.family for i in items}) >= 3
    assert len({i.name for i in items}) == len(items)
    assert {"fashion-mnist", "digits", "shapes", "textures"} <= {i.family for i in items}


def test_demo_stream_loads_small_datasets():
    for item in load_stream("stream:demo"):
        if item.family == "fashion-mnist" and not _has_fashion_mnist():
            continue  # covered by the loader tests; the Debian package is optional here
        ds = item.load()
        assert isinstance(ds, Dataset)
        assert ds.name == item.name and ds.family == item.family and ds.uri == item.uri
        assert 500 <= len(ds.y_train) <= 3000, ds
        assert ds.input_shape[1] <= 28 and ds.input_shape[2] <= 28
    assert any(i.load().input_shape[0] == 3 for i in load_stream("stream:demo") if i.family == "textures")


def test_paper_small_stream():
    items = load_stream("stream:paper-small")
    assert len(items) >= 14 and len({i.family for i in items}) >= 3
    names = [i.name for i in items]
    assert len(set(names)) == len(names)
    # every raw dataset is followed by its 50 % subsample, and there are rotated and background variants
    raw = [n for n in names if "subsample" not in n]
    assert len(raw) * 2 == len(names)
    # the ground truth is the raw dataset: each family is one raw dataset and its subsample (7 families)
    assert all(items[k].family == items[k + 1].family for k in range(0, len(items), 2))
    assert len({i.family for i in items}) == len(raw) == 7
    assert any("rotate=1" in n for n in raw) and any("background=" in n for n in raw)
    # real images wherever this machine has them: procedural textures only in STL-10's slot
    assert {i.family for i in items} == {"mnist", "fashion-mnist", "photos", "digits", "textures",
                                         "mnist-background", "mnist-rotated"}
    half = items[1].load()
    whole = items[0].load()
    assert len(half.y_train) == len(whole.y_train) // 2 and half.family == whole.family


def _npz(path: Path, seed: int, family: str | None = None) -> None:
    rng = np.random.default_rng(seed)
    extra = {"family": family} if family else {}
    np.savez(path, x_train=rng.integers(0, 256, (40, 6, 6), dtype=np.uint8), y_train=np.arange(40) % 2, **extra)


def test_text_manifest_with_relative_paths_and_families(tmp_path):
    (tmp_path / "data").mkdir()
    _npz(tmp_path / "data" / "one.npz", 1)
    _npz(tmp_path / "data" / "two.npz", 2)
    (tmp_path / "m.txt").write_text(
        "# a stream\n"
        "npz:data/one.npz   groupA\n"
        "\n"
        "data/two.npz\n"
        "builtin:digits?subsample=0.5 digits-family\n"
    )
    items = load_stream(f"manifest:{tmp_path / 'm.txt'}")
    assert [i.family for i in items] == ["groupA", "two", "digits-family"]
    assert [i.name for i in items] == ["one", "two", "digits?subsample=0.5"]
    assert items[0].uri == f"npz:{tmp_path / 'data' / 'one.npz'}"
    ds = items[0].load()
    assert ds.family == "groupA" and len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 40
    assert items[2].load().family == "digits-family"


def test_json_manifest(tmp_path, monkeypatch):
    _npz(tmp_path / "a.npz", 3, family="fam-from-file")
    manifest = {"datasets": ["a.npz", {"uri": "builtin:shapes?max_train=100&max_eval=20", "name": "tiny-shapes"},
                             {"uri": "npz:a.npz?rotate=1", "family": "rot"}]}
    (tmp_path / "list.json").write_text(json.dumps(manifest))
    monkeypatch.chdir("/")
    items = load_stream(f"manifest:{tmp_path / 'list.json'}")
    assert [(i.name, i.family) for i in items] == [("a", "fam-from-file"), ("tiny-shapes", "shapes"),
                                                   ("a?rotate=1", "rot")]
    assert items[1].load().name == "tiny-shapes"
    assert items[2].load().family == "rot"


def test_folder_stream(tmp_path):
    _npz(tmp_path / "b.npz", 4)
    _npz(tmp_path / "a.npz", 5)
    for c in ("x", "y"):
        (tmp_path / "c_imgs" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((5, 5), 50 * i, dtype=np.uint8)).save(tmp_path / "c_imgs" / c / f"{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "emptydir").mkdir()
    items = load_stream(f"folder-stream:{tmp_path}")
    assert [i.name for i in items] == ["a", "b", "c_imgs"]
    assert [i.load().input_shape for i in items] == [(1, 6, 6), (1, 6, 6), (1, 5, 5)]


def test_items_report_load_errors_lazily(tmp_path):
    (tmp_path / "m.txt").write_text(f"npz:{tmp_path / 'later.npz'}\n")
    items = load_stream(f"manifest:{tmp_path / 'm.txt'}")
    with pytest.raises(DatasetError, match="file not found"):
        items[0].load()
