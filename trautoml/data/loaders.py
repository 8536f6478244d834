"""``load_dataset(uri)``: URI parsing, splits and derived variants. The URI grammar is documented in
``trautoml.data`` (the package docstring); this module implements it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from trautoml.registry import BUILTIN_DATASETS, DATASET_SOURCES, STREAM_SOURCES, Registry

from . import procedural, sources, transforms
from .dataset import SPLITS, Dataset, DatasetError

#: The stream URI schemes, for ``scheme in STREAM_SCHEMES``: the registry itself (``trautoml.data.streams`` fills
#: it), so a registered scheme counts as a stream's wherever a URI is sorted into dataset or stream.
STREAM_SCHEMES = STREAM_SOURCES
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.S)

#: test share carved from train when a source has no test split; val share carved from the rest when it has no val
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(key, v):
    if v.lower() in _TRUE:
        return True
    if v.lower() in _FALSE:
        return False
    raise DatasetError(f"parameter {key}={v!r}: expected 1 or 0")


def _int(lo, hi=None):
    def parse(key, v):
        try:
            n = int(v)
        except ValueError:
            raise DatasetError(f"parameter {key}={v!r}: expected an integer") from None
        if n < lo or (hi is not None and n > hi):
            raise DatasetError(f"parameter {key}={v!r}: must lie in {lo}..{hi if hi is not None else '∞'}")
        return n
    return parse


def _ratio(key, v):
    try:
        r = float(v)
    except ValueError:
        raise DatasetError(f"parameter {key}={v!r}: expected a number in (0, 1]") from None
    if not 0.0 < r <= 1.0:
        raise DatasetError(f"parameter {key}={v!r}: must lie in (0, 1]")
    return r


def _background(key, v):
    if v not in ("noise", "images"):
        raise DatasetError(f"parameter {key}={v!r}: expected 'noise' or 'images'")
    return v


def _classes(key, v):
    try:
        cs = [int(c) for c in v.split(",") if c.strip() != ""]
    except ValueError:
        raise DatasetError(f"parameter {key}={v!r}: expected comma-separated class indices, e.g. 0,3,5") from None
    if len(cs) < 2:
        raise DatasetError(f"parameter {key}={v!r}: a classifier needs at least 2 classes")
    if len(set(cs)) != len(cs) or min(cs) < 0:
        raise DatasetError(f"parameter {key}={v!r}: class indices must be distinct and >= 0")
    return tuple(cs)


#: derivation parameters, applied in this order (see the package docstring)
PARAMS = {
    "classes": _classes,
    "max_train": _int(2),
    "max_eval": _int(1),
    "subsample": _ratio,
    "resize": _int(4, 512),
    "rotate": _bool,
    "background": _background,
    "invert": _bool,
    "seed": _int(0),
}


def _canon(key, value) -> str:
    if isinstance(value, bool):
        return "1"
    if isinstance(value, tuple):
        return ",".join(str(c) for c in value)
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def registered(registry: Registry, name: str, where: str = ""):
    """``registry.get(name)``, an unknown name raising ``DatasetError`` with the registry's message.

    ``registry``: one of the data layer's registries (``DATASET_SOURCES``, ``BUILTIN_DATASETS``, ``STREAM_SOURCES``,
    ``STREAMS``); ``name``: the name asked for; ``where``: appended to the message (e.g. the URI it came from)."""
    try:
        return registry.get(name)
    except ValueError as e:
        if name in registry:  # the name exists: the ValueError came from loading its entry point
            raise
        raise DatasetError(f"{e}{where}") from None


class DatasetSource:
    """What one dataset URI scheme means: ``scheme:TARGET?query`` → a ``sources.RawSource``.

    Register an instance under its scheme, ``trautoml.registry.DATASET_SOURCES.register("myscheme", source)``, or
    name one (or its class, or a bare ``read`` function) in the entry-point group ``trautoml.dataset_sources``; the
    derivation parameters (``PARAMS``), splits and names then work for the new scheme as for the built-in ones.

    ``read``: ``read(target, options) -> RawSource``, the source's splits as ``sources.make_source`` builds them
        (``target``: the URI's text between the colon and the ``?``; ``options``: this scheme's own query
        parameters as given, strings). A subclass may override the method instead.
    ``path``: TARGET is a file or folder path (a manifest resolves a relative one against its own folder; an empty
        one is reported as a missing path, not a missing name).
    ``options``: query parameters of this scheme's own, beside ``PARAMS`` (``torchvision`` takes ``root``).
    ``path_options``: those of ``options`` whose values are paths, resolved like a path TARGET.
    """

    def __init__(self, read=None, *, path: bool = False, options: tuple = (), path_options: tuple = ()):
        if read is not None:
            self.read = read  # type: ignore[method-assign]  # an instance's reader stands in for the method
        self.path, self.options, self.path_options = path, tuple(options), tuple(path_options)

    def read(self, target: str, options: dict) -> sources.RawSource:
        """The raw source ``target`` names (``options``: this scheme's query parameters); ``DatasetError`` if bad."""
        raise NotImplementedError(f"{type(self).__name__} reads nothing: pass read= or override read()")

    def check(self, target: str, options: dict) -> None:
        """Refuse a bad ``target`` or missing ``options`` while the URI is parsed (``DatasetError``), before any
        reading; the default accepts everything."""

    def base_name(self, target: str, options: dict) -> str:
        """The dataset's name before its derivation parameters, without reading it: ``target`` itself, or the
        file or folder name of a path."""
        return Path(target).expanduser().resolve().name if self.path else target

    def family(self, target: str, options: dict) -> str:
        """The family the datasets of ``target`` belong to, without reading them (a stream's items are tagged with
        it; keep it the ``RawSource``'s ``family``); the base name by default."""
        return self.base_name(target, options)


def dataset_source(scheme: str, where: str = "") -> DatasetSource:
    """The ``DatasetSource`` registered for ``scheme`` (a registered class is instantiated, a bare function becomes
    a source's ``read``); an unknown scheme raises ``DatasetError`` listing the known ones (``where`` appended)."""
    source = registered(DATASET_SOURCES, scheme, where)
    if isinstance(source, type) and issubclass(source, DatasetSource):
        return source()
    if not isinstance(source, DatasetSource):
        return DatasetSource(source)
    return source


class _Builtin(DatasetSource):
    def check(self, target, options):
        registered(BUILTIN_DATASETS, target)

    def read(self, target, options):
        return registered(BUILTIN_DATASETS, target)()


class _Npz(DatasetSource):
    def __init__(self):
        super().__init__(path=True)

    def read(self, target, options):
        return sources.read_npz(Path(target).expanduser())

    def base_name(self, target, options):
        return Path(target).stem

    def family(self, target, options):
        return _npz_family(target) or self.base_name(target, options)


class _Folder(DatasetSource):
    def __init__(self):
        super().__init__(path=True)

    def read(self, target, options):
        return sources.read_folder(Path(target).expanduser())


class _Torchvision(DatasetSource):
    def __init__(self):
        super().__init__(options=("root",), path_options=("root",))

    def check(self, target, options):
        sources.torchvision_family(target)  # validates the name
        if "root" not in options:
            raise DatasetError(f"torchvision:{target}: torchvision datasets need ?root=PATH (the folder torchvision "
                               "would use; trautoml never downloads)")

    def read(self, target, options):
        return sources.read_torchvision(target, options["root"])

    def base_name(self, target, options):
        return sources.torchvision_family(target)


DATASET_SOURCES.register("builtin", _Builtin())
DATASET_SOURCES.register("npz", _Npz())
DATASET_SOURCES.register("folder", _Folder())
DATASET_SOURCES.register("torchvision", _Torchvision())


@dataclass(frozen=True)
class ParsedURI:
    """A dataset URI taken apart: ``scheme`` (a key of ``DATASET_SOURCES``), ``target`` (the text between the colon
    and the ``?``), ``params`` (the canonical derivation parameters, false flags and seed 0 dropped) and
    ``options`` (the scheme's own query parameters, e.g. torchvision's ``root``)."""
    uri: str
    scheme: str
    target: str
    params: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    @property
    def source(self) -> DatasetSource:
        """The ``DatasetSource`` registered for ``scheme``."""
        return dataset_source(self.scheme)

    @property
    def seed(self) -> int:
        """The ``seed`` derivation parameter (0 when absent)."""
        return self.params.get("seed", 0)

    @property
    def base_name(self) -> str:
        """The source's name for ``target`` before the derivation parameters (see ``DatasetSource.base_name``)."""
        return self.source.base_name(self.target, self.options)

    @property
    def name(self) -> str:
        """Readable and unique per derivation: base name, then the parameters sorted by key."""
        q = "&".join(f"{k}={_canon(k, self.params[k])}" for k in sorted(self.params))
        return f"{self.base_name}?{q}" if q else self.base_name

    @property
    def family(self) -> str:
        """The family of ``target``'s datasets, without reading them (see ``DatasetSource.family``)."""
        return self.source.family(self.target, self.options)


def _npz_family(path: str) -> str | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["family"]) if "family" in z.files else None
    except Exception:  # noqa: BLE001 - anything unreadable is reported by load(), not while naming it
        return None


def split_scheme(uri: str) -> tuple[str | None, str]:
    """('scheme', rest) for ``scheme:rest``; (None, uri) for a bare path (incl. one that exists and has a colon)."""
    m = _SCHEME_RE.match(uri)
    if m and not Path(uri.partition("?")[0]).exists():
        return m.group(1).lower(), m.group(2)
    return None, uri


def is_stream_scheme(scheme: str | None) -> bool:
    """Whether ``scheme`` (from ``split_scheme``; None for a bare path) names a stream, not a dataset."""
    return scheme is not None and scheme not in DATASET_SOURCES and scheme in STREAM_SOURCES


def parse_uri(uri: str) -> ParsedURI:
    """Take a dataset URI apart and check it (scheme, target, query parameters) without reading any data;
    ``DatasetError`` names what is wrong."""
    if not isinstance(uri, str) or not uri.strip():
        raise DatasetError(f"empty dataset URI {uri!r}")
    uri = uri.strip()
    scheme, rest = split_scheme(uri)
    if is_stream_scheme(scheme):
        raise DatasetError(f"{uri!r} names a stream of datasets; use trautoml.data.load_stream")
    if scheme is not None:
        dataset_source(scheme, f", or a path to a .npz file or a folder; stream schemes (for load_stream): "
                               f"{', '.join(STREAM_SOURCES)} (in {uri!r})")
    target, _, query = rest.partition("?")
    if scheme is None:
        p = Path(target).expanduser()
        if p.is_dir():
            scheme = "folder"
        elif p.suffix.lower() == ".npz":
            scheme = "npz"
        elif p.exists():
            raise DatasetError(f"{target}: unsupported file type; a dataset file must be .npz (or give a folder)")
        else:
            raise DatasetError(f"no such file or folder: {target}")
    source = dataset_source(scheme)
    if not target:
        raise DatasetError(f"{uri!r}: missing {'path' if source.path else 'name'} after '{scheme}:'")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise DatasetError(f"{uri!r}: malformed query string {query!r}") from None
    params, options, seen = {}, {}, set()
    for key, value in pairs:
        if key in seen:
            raise DatasetError(f"{uri!r}: parameter {key!r} given twice")
        seen.add(key)
        if key in source.options:
            options[key] = value
        elif key in PARAMS:
            v = PARAMS[key](key, value)
            if v is not False and not (key == "seed" and v == 0):  # defaults leave the name alone
                params[key] = v
        else:
            allowed = sorted(PARAMS) + sorted(source.options)
            raise DatasetError(f"{uri!r}: unknown parameter {key!r}; allowed: {', '.join(allowed)}")
    source.check(target, options)
    return ParsedURI(uri, scheme, target, params, options)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """Independent seeded streams per step, so adding one parameter never changes another step's draws."""
    return np.random.default_rng([seed, *stream])


def load_dataset(uri: str, *, family: str | None = None, name: str | None = None) -> Dataset:
    """Load the dataset a URI names (see the ``trautoml.data`` docstring for the grammar).

    Raw sources are decoded once per process; each call selects, converts and transforms afresh, so the returned
    arrays are the caller's own. ``family`` and ``name`` override the derived tags (stream manifests use them).
    """
    p = parse_uri(uri)
    raw = p.source.read(p.target, p.options)
    prm, seed = p.params, p.seed
    where = p.name

    # 1. splits the source lacks: test carved from train, then val from what is left (seeded, stratified)
    idx = {s: np.arange(len(raw.splits[s][1])) for s in raw.splits}
    origin = {s: s for s in raw.splits}
    y_train = raw.splits["train"][1]
    if "test" not in idx:
        keep, carved = transforms.stratified_split(y_train, TEST_FRACTION, _rng(seed, 1))
        idx["train"], idx["test"], origin["test"] = keep, carved, "train"
    if "val" not in idx:
        keep, carved = transforms.stratified_split(y_train[idx["train"]], VAL_FRACTION, _rng(seed, 2))
        idx["train"], idx["val"], origin["val"] = idx["train"][keep], idx["train"][carved], "train"

    labels = {s: raw.splits[origin[s]][1][idx[s]] for s in SPLITS}
    num_classes = raw.num_classes
    class_names = list(raw.class_names) if raw.class_names else None

    # 2. class subset, relabelled 0..k-1 in the order given
    if "classes" in prm:
        chosen = prm["classes"]
        bad = [c for c in chosen if c >= num_classes]
        if bad:
            raise DatasetError(f"{where}: classes={_canon('classes', chosen)} names class {bad[0]}, but the source "
                               f"has classes 0..{num_classes - 1}")
        lut = np.full(num_classes, -1, dtype=np.int64)
        lut[list(chosen)] = np.arange(len(chosen))
        for s in SPLITS:
            keep = lut[labels[s]] >= 0
            idx[s], labels[s] = idx[s][keep], lut[labels[s][keep]]
        num_classes = len(chosen)
        class_names = [class_names[c] for c in chosen] if class_names else None

    # 3. caps (stratified), then the subsample of the learning data (train and val; test stays whole)
    picks = []
    if "max_train" in prm:
        picks.append(("train", prm["max_train"], 3))
    if "max_eval" in prm:
        picks += [("val", prm["max_eval"], 4), ("test", prm["max_eval"], 5)]
    if "subsample" in prm:
        picks += [(s, None, 6 + i) for i, s in enumerate(("train", "val"))]
    for s, cap, stream in picks:
        k = cap if cap is not None else int(round(prm["subsample"] * len(labels[s])))
        if k < len(labels[s]):
            sel = transforms.stratified_take(labels[s], max(k, 1), _rng(seed, stream))
            idx[s], labels[s] = idx[s][sel], labels[s][sel]

    # 4. gather and convert to float32 in [0, 1]
    xs = {}
    for s in SPLITS:
        x = raw.splits[origin[s]][0][idx[s]]
        xs[s] = x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x.astype(np.float32)

    # 5. image transforms, in this order: resize, rotate, background, invert
    for i, s in enumerate(SPLITS):
        x = xs[s]
        if "resize" in prm:
            x = transforms.resize(x, prm["resize"])
        if prm.get("rotate"):
            x = transforms.rotate(x, _rng(seed, 10, i).uniform(0.0, 360.0, len(x)))
        if "background" in prm:
            rng = _rng(seed, 11, i)
            if prm["background"] == "noise":
                bg = rng.random(x.shape, dtype=np.float32)
            else:
                bg = transforms.random_patches(_natural_pool(), len(x), x.shape[2], x.shape[3], x.shape[1], rng)
            x = transforms.replace_background(x, bg)
        if prm.get("invert"):
            x = np.float32(1.0) - x
        xs[s] = np.ascontiguousarray(x, dtype=np.float32)

    meta = {"scheme": p.scheme, "params": {k: _canon(k, v) for k, v in prm.items()}}
    if class_names:
        meta["class_names"] = class_names
    return Dataset(name=name or p.name, x_train=xs["train"], y_train=labels["train"], x_val=xs["val"],
                   y_val=labels["val"], x_test=xs["test"], y_test=labels["test"], num_classes=num_classes,
                   family=family or raw.family, uri=uri, meta=meta)


@lru_cache(maxsize=1)
def _natural_pool() -> np.ndarray:
    return procedural.natural_pool()
