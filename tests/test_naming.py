"""Short readable dataset names (trautoml.naming): readable, unique within a workspace, stable."""
from __future__ import annotations

import pytest

from trautoml.data import load_stream
from trautoml.naming import find_dataset, readable_name, unique_name


@pytest.mark.parametrize("uri, name", [
    ("builtin:fashion-mnist?max_train=2000&max_eval=500&rotate=1", "fashion-mnist·rotated"),
    ("builtin:digits?subsample=0.5", "digits·half"),
    ("builtin:digits?subsample=0.7", "digits·sub0.7"),
    ("builtin:shapes?background=images&max_train=2000", "shapes·image-bg"),
    ("builtin:digits?invert=1&rotate=1&seed=3&classes=0,3", "digits·classes0-3·rotated·inverted·seed3"),
    ("builtin:textures?resize=24&subsample=0.5", "textures·half·24px"),
    ("npz:/data/incoming/cats.npz", "cats"),
])
def test_readable_names(uri, name):
    assert readable_name(uri) == name


def test_a_chosen_name_is_kept_and_an_unreadable_uri_keeps_the_name():
    assert readable_name("builtin:digits?rotate=1", name="my digits") == "my digits"
    assert readable_name("builtin:digits?rotate=1", name="digits?rotate=1") == "digits·rotated"
    assert readable_name(None, name="made in python") == "made in python"
    assert readable_name("builtin:nope", name="x") == "x"


def test_built_in_streams_get_distinct_names():
    for stream in ("stream:demo", "stream:paper-small", "stream:ci"):
        names = [readable_name(i.uri, i.name) for i in load_stream(stream)]
        assert len(set(names)) == len(names), stream
        assert not any("?" in n or "=" in n for n in names)


def test_unique_names_take_the_next_free_suffix():
    taken = {"digits", "digits·2"}
    assert unique_name("digits", taken.__contains__) == "digits·3"
    assert unique_name("shapes", taken.__contains__) == "shapes"


class _FakeWorkspace:
    def __init__(self, rows):
        self.rows = rows

    def dataset_row(self, text):
        return next((r for r in reversed(self.rows) if r["name"] == text), None)

    def datasets(self):
        return self.rows


def test_find_dataset_by_name_uri_or_long_name():
    ws = _FakeWorkspace([{"name": "digits", "uri": "builtin:digits"},
                         {"name": "digits·half", "uri": "builtin:digits?subsample=0.5"}])
    for text in ("digits·half", "builtin:digits?subsample=0.5", "digits?subsample=0.5",
                 "builtin:digits?subsample=0.50"):
        assert find_dataset(ws, text)["name"] == "digits·half", text
    assert find_dataset(ws, "nope") is None


def test_an_ingest_takes_a_free_readable_name_under_the_workspace_lock(tmp_path):
    """A workspace already holding a 'digits': another digits variant whose readable name is also 'digits' (it
    differs only in a size cap) becomes 'digits·2'; a rotated one is 'digits·rotated'; the stored names hold."""
    from fakes import commit
    from trautoml.api import TrAutoML
    from trautoml.data import load_dataset
    from trautoml.workspace import Workspace

    with Workspace(tmp_path) as ws:
        commit(ws, "digits", "g1", founds=True, version=None)
    t = TrAutoML(tmp_path, preset="tiny", quiet=True)
    capped = t._named(load_dataset("builtin:digits?max_train=500"))
    assert capped.name == "digits·2" and capped.uri == "builtin:digits?max_train=500"
    assert capped.content_hash() == load_dataset("builtin:digits?max_train=500").content_hash()
    assert t._named(load_dataset("builtin:digits?rotate=1")).name == "digits·rotated"
    assert [r["name"] for r in t.workspace.datasets()] == ["digits"]
    t.close()
