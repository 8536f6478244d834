"""The data layer's plug-in tables: a scheme, a builtin dataset, a stream scheme or a named stream registered by a
user works wherever the built-in ones do; an unknown name is refused listing what exists."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trautoml.data import Dataset, DatasetError, DatasetSource, StreamItem, load_dataset, load_stream
from trautoml.data.sources import make_source
from trautoml.registry import BUILTIN_DATASETS, DATASET_SOURCES, STREAM_SOURCES, STREAMS


@pytest.fixture(autouse=True)
def fresh_registries(monkeypatch):
    """Each test registers into copies of the tables, so its names are gone afterwards."""
    for reg in (DATASET_SOURCES, BUILTIN_DATASETS, STREAM_SOURCES, STREAMS):
        monkeypatch.setattr(reg, "_objects", dict(reg._objects))


def _toys(family: str, n: int = 60, seed: int = 0, colour: bool = False):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 3 if colour else 1, 6, 6)) * 255).astype(np.uint8)
    return make_source(family, family, {"train": (x, np.arange(n) % 3)}, family, 3)


def _read_toys(target: str, options: dict):
    """A source as a plain function: ``toy:NAME?colour=1``."""
    return _toys(target, seed=len(target), colour=options.get("colour") == "1")


class ToyFiles(DatasetSource):
    """A source as a subclass, whose targets are paths: ``toyfile:PATH`` (the file holds the number of images)."""

    def __init__(self):
        super().__init__(path=True)

    def read(self, target, options):
        return _toys("toyfiles", n=int(open(target).read()))

    def family(self, target, options):
        return "toyfiles"


def test_a_registered_scheme_loads_with_derivations_splits_and_its_own_options():
    DATASET_SOURCES.register("toy", DatasetSource(_read_toys, options=("colour",)))
    ds = load_dataset("toy:alpha?colour=1&max_train=20&rotate=1")
    assert isinstance(ds, Dataset) and ds.input_shape == (3, 6, 6)
    assert ds.name == "alpha?max_train=20&rotate=1" and ds.family == "alpha"
    assert len(ds.y_train) == 20 and len(ds.y_val) > 0 and len(ds.y_test) > 0  # splits carved as for any source
    assert load_dataset("toy:alpha").input_shape == (1, 6, 6)
    with pytest.raises(DatasetError, match="unknown parameter 'size'; allowed: .*seed, subsample, colour"):
        load_dataset("toy:alpha?size=3")
    with pytest.raises(DatasetError, match="missing name after 'toy:'"):
        load_dataset("toy:")


def test_a_registered_path_scheme_is_resolved_against_a_manifest_s_folder(tmp_path):
    DATASET_SOURCES.register("toyfile", ToyFiles)  # a class is instantiated
    (tmp_path / "forty.toy").write_text("40")
    (tmp_path / "m.txt").write_text("toyfile:forty.toy\ntoyfile:forty.toy?subsample=0.5\n")
    items = load_stream(f"manifest:{tmp_path / 'm.txt'}")
    assert [i.name for i in items] == ["forty.toy", "forty.toy?subsample=0.5"]
    assert {i.family for i in items} == {"toyfiles"}
    whole = items[0].load()
    assert whole.family == "toyfiles" and len(whole.y_train) + len(whole.y_val) + len(whole.y_test) == 40


def test_a_registered_builtin_dataset():
    BUILTIN_DATASETS.register("toys", lambda: _toys("toys"))
    ds = load_dataset("builtin:toys?classes=0,2")
    assert ds.family == "toys" and ds.num_classes == 2 and ds.name == "toys?classes=0,2"


def test_a_registered_named_stream_through_load_stream_and_expand():
    from trautoml.api import TrAutoML

    STREAMS.register("mine", lambda: ["builtin:digits?max_train=100",
                                      StreamItem("builtin:digits?subsample=0.5", "digits", "half")])
    items = load_stream("stream:mine")
    assert [(i.name, i.family) for i in items] == [("digits?max_train=100", "digits"), ("half", "digits")]
    assert TrAutoML.expand("stream:mine") == items
    assert TrAutoML.expand(["builtin:shapes", "stream:mine"]) == ["builtin:shapes", *items]
    assert len(items[0].load().y_train) == 100


def test_a_registered_stream_scheme_through_load_stream_and_expand():
    from trautoml.api import TrAutoML

    DATASET_SOURCES.register("toy", _read_toys)  # a bare read function
    STREAM_SOURCES.register("toys", lambda rest: [f"toy:{name}" for name in rest.split(",")])
    items = load_stream("toys:a,bb,ccc")
    assert [i.name for i in items] == ["a", "bb", "ccc"] and [i.load().family for i in items] == ["a", "bb", "ccc"]
    assert TrAutoML.expand("toys:a,bb") == items[:2]  # the API tells the new scheme's URIs for streams
    with pytest.raises(DatasetError, match="names a stream of datasets; use trautoml.data.load_stream"):
        load_dataset("toys:a")


def test_a_manifest_refuses_a_registered_stream_scheme(tmp_path):
    STREAM_SOURCES.register("toys", lambda rest: [])
    (tmp_path / "m.txt").write_text("toys:a\n")
    with pytest.raises(DatasetError, match="'toys:a' is a stream; a manifest lists datasets"):
        load_stream(f"manifest:{tmp_path / 'm.txt'}")


def test_unknown_names_list_what_exists_including_registered_ones():
    DATASET_SOURCES.register("toy", _read_toys)
    STREAMS.register("mine", list)
    STREAM_SOURCES.register("toys", lambda rest: [])
    BUILTIN_DATASETS.register("toys", lambda: _toys("toys"))
    cases = [
        (load_dataset, "nope:x", "unknown dataset URI scheme 'nope'; available: builtin, npz, folder, torchvision, "
                                 "toy, or a path"),
        (load_dataset, "builtin:nope", "unknown builtin dataset 'nope'; available: fashion-mnist, .*, textures, toys"),
        (load_stream, "stream:nope", "unknown stream 'nope'; available: demo, paper-small, ci, families, mine"),
        (load_stream, "nope:x", "unknown stream URI scheme 'nope'; available: stream, manifest, folder-stream, toys"),
        (load_stream, "toy:x", "not a stream URI .* stream schemes: stream, manifest, folder-stream, toys"),
    ]
    for load, uri, pattern in cases:
        with pytest.raises(DatasetError, match=pattern):
            load(uri)


def test_watch_takes_what_a_folder_stream_reads(tmp_path):
    """``trautoml watch`` and ``folder-stream:`` share one rule for what in a folder is a dataset."""
    from trautoml.cli import _watch_candidates

    (tmp_path / "a.npz").write_bytes(b"")
    (tmp_path / ".hidden.npz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("no dataset")
    (tmp_path / "empty").mkdir()
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    (tmp_path / "imgs" / "dog").mkdir()
    for c in ("cat", "dog"):
        for i in range(3):
            Image.fromarray(np.full((4, 4), 60 * i, dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    (tmp_path / "b.npz.part").write_bytes(b"")  # an upload in progress: watch waits, a folder stream skips it
    streamed = {i.uri for i in load_stream(f"folder-stream:{tmp_path}")}
    assert streamed == {f"npz:{tmp_path / 'a.npz'}", f"folder:{tmp_path / 'imgs'}"}
    assert {p.name for p in _watch_candidates(tmp_path)} == {"a.npz", "imgs"}
