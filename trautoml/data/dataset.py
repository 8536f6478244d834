"""The one dataset type every stage consumes: data → profile → group → decide → search/train → track.

Images are stored as float32 arrays shaped (N, C, H, W) with values in [0, 1]; labels as int64 in 0..C-1.
Loaders live beside this module (`trautoml.data.load_dataset`); everything downstream sees only `Dataset`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


class DatasetError(ValueError):
    """Raised for any input the data layer refuses; the message names the problem."""


SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset with train / validation / test splits.

    ``family`` tags the source the dataset derives from (e.g. ``fashion-mnist`` for its rotated variant); the
    stream benchmark scores groupings against it. ``uri`` records how it was loaded, when it was.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    family: str | None = None
    uri: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_arrays(self)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width)."""
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of split ``name`` (``train``, ``val`` or ``test``); another name raises ``DatasetError``."""
        if name not in SPLITS:
            raise DatasetError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def content_hash(self) -> str:
        """SHA-256 over the splits' shapes, dtypes and bytes (little-endian, C order) and the class count.

        Stable across processes and machines: it depends on the data only, not on the name or the URI.
        """
        cached = self.meta.get("_content_hash")
        if cached:
            return cached
        h = hashlib.sha256()
        h.update(f"classes={self.num_classes};".encode())
        for split in SPLITS:
            x, y = self.split(split)
            for arr in (x, y):
                arr = np.ascontiguousarray(arr)
                arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
                h.update(f"{split}:{arr.dtype.str}:{arr.shape};".encode())
                h.update(arr.tobytes())
        digest = h.hexdigest()
        self.meta["_content_hash"] = digest
        return digest

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, shape={self.input_shape}, classes={self.num_classes}, "
                f"train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)}, family={self.family!r})")


def validate_arrays(ds: Dataset) -> None:
    """Refuse malformed data with a message that names the problem (shape, dtype, NaN, labels, sizes)."""
    if ds.num_classes < 2:
        raise DatasetError(f"{ds.name}: a classifier needs at least 2 classes, got {ds.num_classes}")
    for split in SPLITS:
        x, y = ds.split(split)
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            raise DatasetError(f"{ds.name}: {split} split must be numpy arrays")
        if x.ndim != 4:
            raise DatasetError(f"{ds.name}: x_{split} must be (N, C, H, W), got shape {x.shape}")
        if x.dtype != np.float32:
            raise DatasetError(f"{ds.name}: x_{split} must be float32, got {x.dtype}")
        if y.ndim != 1 or y.dtype != np.int64:
            raise DatasetError(f"{ds.name}: y_{split} must be a 1-D int64 array, got {y.dtype} {y.shape}")
        if len(x) != len(y):
            raise DatasetError(f"{ds.name}: x_{split} has {len(x)} samples but y_{split} has {len(y)}")
        if len(y) == 0:
            raise DatasetError(f"{ds.name}: the {split} split is empty")
        if not np.isfinite(x).all():
            raise DatasetError(f"{ds.name}: x_{split} contains NaN or inf")
        if y.min() < 0 or y.max() >= ds.num_classes:
            raise DatasetError(f"{ds.name}: y_{split} has labels outside 0..{ds.num_classes - 1}")
        if x.shape[1:] != ds.x_train.shape[1:]:
            raise DatasetError(f"{ds.name}: x_{split} has image shape {x.shape[1:]}, train has {ds.x_train.shape[1:]}")
    if len(np.unique(ds.y_train)) < 2:
        raise DatasetError(f"{ds.name}: the train split holds a single class")
