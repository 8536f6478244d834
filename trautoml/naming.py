"""Short readable dataset names for the CLI, the MLflow UI and the groups picture.

A dataset loaded from a URI is shown as its source, then what was done to it, joined by ``·``:
``builtin:fashion-mnist?max_train=2000&max_eval=500&rotate=1`` → ``fashion-mnist·rotated``,
``builtin:digits?subsample=0.5`` → ``digits·half``, ``npz:/data/cats.npz`` → ``cats`` (a file's stem, a folder's
name). Size caps (``max_train``, ``max_eval``) are left out: they change how much of a source is used, not what it
is. A name somebody chose (a manifest's ``name``, a ``Dataset`` built in Python) is kept as it is.

Names are unique within a workspace: a readable name already held by other content gets ``·2``, ``·3``, …
(`unique_name`). They are stable: a name is given once, when the dataset is first ingested, and stored with it;
ingesting the same content again returns the same decision under the same name. The URI stays the run's tag
``trautoml.uri`` and parameter ``uri``; `find_dataset` accepts a name, the URI, the long name the URI derives
(``digits?subsample=0.5``) or a content hash (prefix).
"""
from __future__ import annotations

from collections.abc import Callable

SEPARATOR = "·"
#: Parameters that only cap how many images are used: left out of readable names.
_CAPS = ("max_train", "max_eval")
#: The order words appear in: what the images are, then how many and how large, then the seed.
_ORDER = ("classes", "rotate", "background", "invert", "subsample", "resize", "seed")


def _word(key: str, value) -> str:
    if key == "rotate":
        return "rotated"
    if key == "invert":
        return "inverted"
    if key == "background":
        return {"images": "image-bg", "noise": "noise-bg"}.get(str(value), f"{value}-bg")
    if key == "subsample":
        return "half" if float(value) == 0.5 else f"sub{float(value):g}"
    if key == "resize":
        return f"{value}px"
    if key == "classes":
        return "classes" + "-".join(str(c) for c in value)
    if key == "seed":
        return f"seed{value}"
    return f"{key}{value}"


def readable_name(uri: str | None, name: str | None = None) -> str | None:
    """The short readable name of a dataset loaded from ``uri`` whose (long) name is ``name``; ``name`` itself
    when somebody chose it (it is not the URI's derived name) or when the URI cannot be read."""
    from trautoml.data import DatasetError
    from trautoml.data.loaders import parse_uri

    if not uri:
        return name
    try:
        p = parse_uri(uri)
    except DatasetError:
        return name
    if name is not None and name != p.name:
        return name
    keys = [k for k in _ORDER if k in p.params] + sorted(k for k in p.params if k not in _ORDER and k not in _CAPS)
    return SEPARATOR.join([p.base_name] + [_word(k, p.params[k]) for k in keys])


def item_name(item) -> str:
    """What progress lines call a stream item (a URI, a `StreamItem`, a `Dataset`) before it is ingested: its
    readable name where it has one."""
    if isinstance(item, str):
        return readable_name(item) or item
    uri, name = getattr(item, "uri", None), getattr(item, "name", None)
    return readable_name(uri, name) or name or "dataset"


def unique_name(base: str, taken: Callable[[str], bool]) -> str:
    """``base``, or ``base·2``, ``base·3``, … : the first that ``taken`` says is free."""
    name, k = base, 1
    while taken(name):
        k += 1
        name = f"{base}{SEPARATOR}{k}"
    return name


def find_dataset(workspace, text: str) -> dict | None:
    """The workspace's dataset row that ``text`` names: its name (or content hash / unique hash prefix), its URI,
    or its long name (the URI's derived name, e.g. ``digits?subsample=0.5``); None if none does."""
    from trautoml.data import DatasetError
    from trautoml.data.loaders import parse_uri

    row = workspace.dataset_row(text)
    if row is not None:
        return row
    wanted = {text.strip()}
    try:
        wanted.add(parse_uri(text).name)
    except DatasetError:
        pass
    found = None
    for r in workspace.datasets():  # the latest match wins, as for names
        if not r.get("uri"):
            continue
        if r["uri"] in wanted:
            found = r
            continue
        try:
            if parse_uri(r["uri"]).name in wanted:
                found = r
        except DatasetError:
            continue
    return found
