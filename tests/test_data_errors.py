"""Every kind of bad input is refused with a DatasetError whose message names the problem."""
from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
from PIL import Image

from trautoml.data import DatasetError, load_dataset, load_stream
from trautoml.data.sources import read_idx


def _npz(tmp_path, name="d.npz", **arrays):
    base = {"x_train": np.zeros((20, 6, 6), dtype=np.uint8), "y_train": np.arange(20) % 2}
    base.update(arrays)
    base = {k: v for k, v in base.items() if v is not None}
    p = tmp_path / name
    np.savez(p, **base)
    return p


def _idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()


@pytest.mark.parametrize("arrays, pattern", [
    ({"x_train": np.full((20, 6, 6), np.nan, dtype=np.float32)}, "NaN or inf"),
    ({"x_train": np.full((20, 6, 6), np.inf)}, "NaN or inf"),
    ({"x_train": np.full((20, 6, 6), 2.0)}, r"float pixels must lie in \[0, 1\]"),
    ({"x_train": np.full((20, 6, 6), 300, dtype=np.int32)}, "integer pixels must lie in 0..255"),
    ({"x_train": np.zeros((20, 36))}, "unsupported image shape"),
    ({"x_train": np.zeros((20, 6, 6, 4))}, "unsupported image shape"),
    ({"x_train": np.zeros((20, 1, 6, 6, 1))}, "unsupported image shape"),
    ({"x_train": np.zeros((20, 6, 6), dtype=np.complex64)}, "unsupported dtype complex64"),
    ({"x_train": np.array([["a"] * 6] * 6 * 20).reshape(20, 6, 6)}, "unsupported dtype"),
    ({"y_train": np.arange(19) % 2}, "x_train has 20 samples but y_train has 19"),
    ({"y_train": np.zeros(20, dtype=np.int64)}, "single class"),
    ({"y_train": -(np.arange(20) % 2)}, "negative label"),
    ({"y_train": np.arange(20) % 2 + 0.5}, "labels must be integers"),
    ({"y_train": np.array(["a", "b"] * 10)}, "unsupported label dtype"),
    ({"y_train": np.arange(20) % 3, "num_classes": np.array(2)}, r"labels outside 0..1"),
    ({"x_test": np.zeros((0, 6, 6), dtype=np.uint8), "y_test": np.zeros(0, dtype=np.int64)}, "test split is empty"),
    ({"x_test": np.zeros((4, 5, 5), dtype=np.uint8), "y_test": np.arange(4) % 2}, "x_test has image shape"),
    ({"x_val": np.zeros((4, 6, 6), dtype=np.uint8)}, "x_val is given without its y_val"),
    ({"x_train": None}, "missing array 'x_train'"),
    ({"layout": np.array("NWHC")}, "unknown layout"),
])
def test_bad_npz_contents(tmp_path, arrays, pattern):
    with pytest.raises(DatasetError, match=pattern):
        load_dataset(f"npz:{_npz(tmp_path, **arrays)}")


def test_npz_object_arrays_are_refused(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, x_train=np.array([np.zeros(3), None], dtype=object), y_train=np.arange(2))
    with pytest.raises(DatasetError, match="cannot read npz"):
        load_dataset(f"npz:{p}")


def test_truncated_and_fake_npz(tmp_path):
    good = _npz(tmp_path, x_train=np.random.default_rng(0).integers(0, 256, (200, 16, 16), dtype=np.uint8),
                y_train=np.arange(200) % 2)
    data = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="corrupted or truncated npz"):
        load_dataset(f"npz:{tmp_path / 'cut.npz'}")
    (tmp_path / "fake.npz").write_text("not a zip")
    with pytest.raises(DatasetError, match="npz"):
        load_dataset(str(tmp_path / "fake.npz"))


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(DatasetError, match="file not found: .*nothere.npz"):
        load_dataset(f"npz:{tmp_path / 'nothere.npz'}")
    with pytest.raises(DatasetError, match="file not found: .*nothere.npz"):
        load_dataset(str(tmp_path / "nothere.npz"))
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_dataset(str(tmp_path / "nothere"))
    with pytest.raises(DatasetError, match="folder not found"):
        load_dataset(f"folder:{tmp_path / 'nodir'}")
    (tmp_path / "a.csv").write_text("1,2")
    with pytest.raises(DatasetError, match="unsupported file type"):
        load_dataset(str(tmp_path / "a.csv"))


def test_corrupted_gzip_and_idx(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    blob = gzip.compress(_idx_bytes(arr))
    bad = bytearray(blob)
    bad[len(bad) // 2: len(bad) // 2 + 64] = b"\x00" * 64
    (tmp_path / "bad.gz").write_bytes(bytes(bad))
    with pytest.raises(DatasetError, match="corrupted or unreadable gzip"):
        read_idx(tmp_path / "bad.gz")
    (tmp_path / "short.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="gzip"):
        read_idx(tmp_path / "short.gz")
    (tmp_path / "trunc").write_bytes(_idx_bytes(arr)[:-10])
    with pytest.raises(DatasetError, match="truncated or corrupted IDX"):
        read_idx(tmp_path / "trunc")
    (tmp_path / "magic").write_bytes(b"\x01\x02\x03\x04" + arr.tobytes())
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(tmp_path / "magic")


def test_corrupted_fashion_mnist_files(tmp_path, monkeypatch):
    for split, n in (("train", 20), ("t10k", 10)):
        arr = np.zeros((n, 28, 28), dtype=np.uint8)
        (tmp_path / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
        (tmp_path / f"{split}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(_idx_bytes((np.arange(n) % 10).astype(np.uint8))))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    monkeypatch.setenv("TRAUTOML_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("builtin:fashion-mnist")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="missing file .*t10k-labels-idx1-ubyte.gz"):
        load_dataset("builtin:fashion-mnist")


def test_bad_images_in_folder(tmp_path):
    root = tmp_path / "imgs"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((6, 6), 40 * i, dtype=np.uint8)).save(root / c / f"{i}.png")
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DatasetError, match="corrupted or unreadable image .*broken.png"):
        load_dataset(f"folder:{root}")
    (root / "b" / "broken.png").unlink()
    (root / "c").mkdir()
    with pytest.raises(DatasetError, match="class folder c holds no images"):
        load_dataset(f"folder:{root}")
    with pytest.raises(DatasetError, match="no class sub-folders"):
        load_dataset(f"folder:{root / 'a'}")
    (root / "c").rmdir()
    for i in range(3):
        Image.fromarray(np.zeros((6, 6), dtype=np.uint8)).save(root / "a" / f"x{i}.png")
    single = tmp_path / "single"
    (single / "only").mkdir(parents=True)
    Image.fromarray(np.zeros((6, 6), dtype=np.uint8)).save(single / "only" / "0.png")
    with pytest.raises(DatasetError, match="single class"):
        load_dataset(f"folder:{single}")


def test_cifar_pickle_with_foreign_globals_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(base / name, "wb") as f:
            pickle.dump({"data": Evil(), "labels": [0]}, f)
    with pytest.raises(DatasetError, match="refusing to load builtins.print"):
        load_dataset(f"torchvision:CIFAR10?root={tmp_path}")


@pytest.mark.parametrize("uri, pattern", [
    ("http://example.org/x.npz", "unknown dataset URI scheme 'http'; available: builtin, npz, folder, torchvision"),
    ("builtin:imagenet", "unknown builtin dataset 'imagenet'"),
    ("builtin:", "missing name after 'builtin:'"),
    ("builtin:digits?colour=1", "unknown parameter 'colour'"),
    ("builtin:digits?root=/tmp", "unknown parameter 'root'"),
    ("builtin:digits?rotate=maybe", "rotate='maybe'"),
    ("builtin:digits?subsample=0", r"subsample='0': must lie in \(0, 1\]"),
    ("builtin:digits?subsample=1.5", "subsample"),
    ("builtin:digits?subsample=abc", "subsample"),
    ("builtin:digits?resize=2", "resize"),
    ("builtin:digits?background=stars", "background='stars'"),
    ("builtin:digits?classes=3", "at least 2 classes"),
    ("builtin:digits?classes=1,1", "distinct"),
    ("builtin:digits?classes=1,x", "comma-separated"),
    ("builtin:digits?classes=1,12", "names class 12"),
    ("builtin:digits?seed=-1", "seed"),
    ("builtin:digits?max_train=1", "max_train"),
    ("builtin:digits?rotate=1&rotate=0", "given twice"),
    ("builtin:digits?rotate", "malformed query"),
    ("torchvision:ImageNet?root=/tmp", "unknown torchvision dataset 'ImageNet'"),
    ("torchvision:MNIST", r"need \?root=PATH"),
    ("stream:demo", "use trautoml.data.load_stream"),
    ("", "empty dataset URI"),
])
def test_bad_uris(uri, pattern):
    with pytest.raises(DatasetError, match=pattern):
        load_dataset(uri)


def test_variant_that_empties_a_split():
    with pytest.raises(DatasetError, match="single class"):
        load_dataset("builtin:digits?max_train=2&classes=0,1&subsample=0.5")


def test_bad_streams(tmp_path):
    with pytest.raises(DatasetError, match="unknown stream 'nope'"):
        load_stream("stream:nope")
    with pytest.raises(DatasetError, match="not a stream URI"):
        load_stream("builtin:digits")
    with pytest.raises(DatasetError, match="manifest not found"):
        load_stream(f"manifest:{tmp_path / 'm.txt'}")
    (tmp_path / "m.json").write_text("[1, 2")
    with pytest.raises(DatasetError, match="invalid JSON"):
        load_stream(f"manifest:{tmp_path / 'm.json'}")
    (tmp_path / "m.json").write_text('[{"url": "builtin:digits"}]')
    with pytest.raises(DatasetError, match="entry 0"):
        load_stream(f"manifest:{tmp_path / 'm.json'}")
    (tmp_path / "m.txt").write_text("# nothing\n\n")
    with pytest.raises(DatasetError, match="lists no datasets"):
        load_stream(f"manifest:{tmp_path / 'm.txt'}")
    (tmp_path / "m.txt").write_text("stream:demo\n")
    with pytest.raises(DatasetError, match="is a stream"):
        load_stream(f"manifest:{tmp_path / 'm.txt'}")
    (tmp_path / "m.txt").write_text("builtin:digits?bogus=1\n")
    with pytest.raises(DatasetError, match="unknown parameter 'bogus'"):
        load_stream(f"manifest:{tmp_path / 'm.txt'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no .npz files"):
        load_stream(f"folder-stream:{tmp_path / 'empty'}")


def test_corrupted_torchvision_mnist_raw(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 20), ("t10k", 10)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((n, 28, 28), dtype=np.uint8))[:-100])
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(_idx_bytes((np.arange(n) % 10).astype(np.uint8)))
    with pytest.raises(DatasetError, match="corrupted or unreadable"):
        load_dataset(f"torchvision:MNIST?root={tmp_path}")
