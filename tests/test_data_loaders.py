"""Each dataset loader on files the test writes itself (npz, PNG folders, torchvision on-disk layouts, IDX)."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trautoml.data import Dataset, DatasetError, load_dataset
from trautoml.data.sources import FASHION_MNIST_DIR


def write_idx(path: Path, arr: np.ndarray, compress: bool = False) -> Path:
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def mnist_like(n: int, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % classes).astype(np.uint8)


def write_mnist_files(folder: Path, n_train=60, n_test=20, compress=False, suffix="") -> None:
    for split, n in (("train", n_train), ("t10k", n_test)):
        x, y = mnist_like(n, seed=len(split))
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", x, compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", y, compress)


def check(ds: Dataset, shape, classes) -> None:
    assert isinstance(ds, Dataset)
    assert ds.input_shape == shape
    assert ds.num_classes == classes
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert len(x) == len(y) > 0


# ---------------------------------------------------------------------------------------------- npz


def test_npz_nhwc_uint8_with_all_splits(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"x_{s}": rng.integers(0, 256, (n, 12, 10, 3), dtype=np.uint8) for s, n in
              (("train", 40), ("val", 10), ("test", 12))}
    arrays.update({f"y_{s}": np.arange(len(arrays[f"x_{s}"])) % 4 for s in ("train", "val", "test")})
    p = tmp_path / "colour.npz"
    np.savez(p, **arrays, class_names=np.array(["a", "b", "c", "d"]), family="my-family")
    ds = load_dataset(f"npz:{p}")
    check(ds, (3, 12, 10), 4)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (40, 10, 12)  # the file's own splits are kept
    np.testing.assert_allclose(ds.x_val, arrays["x_val"].transpose(0, 3, 1, 2) / 255.0, atol=1e-6)
    assert ds.name == "colour" and ds.family == "my-family" and ds.uri == f"npz:{p}"
    assert ds.meta["class_names"] == ["a", "b", "c", "d"]


def test_npz_layout_rules(tmp_path):
    rng = np.random.default_rng(1)
    y = np.arange(50) % 5
    cases = {
        "nhw": (rng.random((50, 9, 9)), None, (1, 9, 9)),
        "nchw": (rng.random((50, 3, 9, 9)).astype(np.float32), None, (3, 9, 9)),
        "nhwc": (rng.random((50, 9, 9, 1)), None, (1, 9, 9)),
        "both": (rng.random((50, 3, 3, 3)), None, (3, 3, 3)),            # ambiguous → NCHW
        "forced": (rng.random((50, 3, 3, 3)), "NHWC", (3, 3, 3)),
    }
    for name, (x, layout, shape) in cases.items():
        extra = {"layout": layout} if layout else {}
        p = tmp_path / f"{name}.npz"
        np.savez(p, x_train=x, y_train=y, **extra)
        ds = load_dataset(str(p))  # bare path → npz
        check(ds, shape, 5)
        assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 50
    forced = load_dataset(str(tmp_path / "forced.npz"))
    both = load_dataset(str(tmp_path / "both.npz"))
    assert not np.array_equal(forced.x_train, both.x_train)  # the layout key changed the interpretation


def test_npz_splits_carved_when_missing(tmp_path):
    x = np.random.default_rng(2).integers(0, 256, (200, 8, 8), dtype=np.uint8)
    y = np.arange(200) % 4
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (144, 16, 40)  # 20 % test, then 10 % val
    for split in ("train", "val", "test"):
        assert np.bincount(ds.split(split)[1], minlength=4).min() == np.bincount(ds.split(split)[1]).max()
    np.savez(tmp_path / "tt.npz", x_train=x[:150], y_train=y[:150], x_test=x[150:], y_test=y[150:])
    ds = load_dataset(f"npz:{tmp_path / 'tt.npz'}")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (135, 15, 50)  # val from train only


def test_npz_num_classes_and_float_labels(tmp_path):
    x = np.zeros((30, 4, 4), dtype=np.uint8)
    x[:, 0, 0] = np.arange(30)
    np.savez(tmp_path / "c.npz", x_train=x, y_train=(np.arange(30) % 3).astype(np.float64), num_classes=5)
    assert load_dataset(str(tmp_path / "c.npz")).num_classes == 5


# ---------------------------------------------------------------------------------------------- folders


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_folder_of_pngs_grey(tmp_path):
    rng = np.random.default_rng(3)
    for c in ("cat", "ant", "bee"):
        for i in range(7):
            _png(tmp_path / "bugs" / c / f"{i}.png", rng.integers(0, 256, (10, 10), dtype=np.uint8))
    (tmp_path / "bugs" / "notes.txt").write_text("ignored")
    ds = load_dataset(f"folder:{tmp_path / 'bugs'}")
    check(ds, (1, 10, 10), 3)
    assert ds.meta["class_names"] == ["ant", "bee", "cat"]  # sorted by name
    assert ds.family == "bugs" and ds.name == "bugs"
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 21
    assert load_dataset(str(tmp_path / "bugs")).content_hash() == ds.content_hash()  # bare directory → folder


def test_folder_mixed_colour_and_sizes(tmp_path):
    rng = np.random.default_rng(4)
    root = tmp_path / "mixed"
    for c in ("a", "b"):
        for i in range(5):
            _png(root / c / f"{i}.png", rng.integers(0, 256, (16, 12, 3), dtype=np.uint8))
        _png(root / c / "grey.png", rng.integers(0, 256, (16, 12), dtype=np.uint8))
        _png(root / c / "big.png", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
        Image.fromarray(rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)).save(root / c / "photo.jpg", quality=90)
    ds = load_dataset(f"folder:{root}")
    check(ds, (3, 16, 12), 2)  # any colour → RGB; the most common size (H=16, W=12) wins


def test_folder_presplit(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "split"
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        for c in ("x", "y"):
            for i in range(n):
                _png(root / split / c / f"{i}.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    ds = load_dataset(f"folder:{root}")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (12, 4, 6)
    assert ds.meta["class_names"] == ["x", "y"]


# ---------------------------------------------------------------------------------------------- torchvision layouts


def test_torchvision_mnist_raw_via_torchvision(tmp_path):
    write_mnist_files(tmp_path / "MNIST" / "raw")
    ds = load_dataset(f"torchvision:MNIST?root={tmp_path}")
    check(ds, (1, 28, 28), 10)
    assert ds.family == "mnist" and len(ds.y_test) == 20 and len(ds.y_train) + len(ds.y_val) == 60
    x, y = mnist_like(20, seed=len("t10k"))
    np.testing.assert_allclose(ds.x_test[:, 0], x / 255.0, atol=1e-6)
    np.testing.assert_array_equal(ds.y_test, y)


def test_torchvision_fashion_and_kmnist_gz_only(tmp_path):
    write_mnist_files(tmp_path / "FashionMNIST" / "raw", compress=True, suffix=".gz")
    write_mnist_files(tmp_path / "KMNIST" / "raw", compress=True, suffix=".gz")
    a = load_dataset(f"torchvision:FashionMNIST?root={tmp_path}")
    b = load_dataset(f"torchvision:kmnist?root={tmp_path}&max_train=20")
    assert a.family == "fashion-mnist" and b.family == "kmnist" and len(b.y_train) == 20


def test_torchvision_missing_file_named(tmp_path):
    with pytest.raises(DatasetError, match=r"MNIST/raw/train-images-idx3-ubyte"):
        load_dataset(f"torchvision:MNIST?root={tmp_path}")
    with pytest.raises(DatasetError, match="cifar-10-batches-py/data_batch_1"):
        load_dataset(f"torchvision:CIFAR10?root={tmp_path}")
    with pytest.raises(DatasetError, match="root folder not found"):
        load_dataset(f"torchvision:SVHN?root={tmp_path / 'nope'}")


def _cifar_batch(path: Path, n: int, seed: int, label_key: str, classes: int) -> None:
    rng = np.random.default_rng(seed)
    batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), label_key: list(np.arange(n) % classes),
             "batch_label": "test batch"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def test_torchvision_cifar10_and_100(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        _cifar_batch(base / f"data_batch_{i}", 20, i, "labels", 10)
    _cifar_batch(base / "test_batch", 20, 9, "labels", 10)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    ds = load_dataset(f"torchvision:CIFAR10?root={tmp_path}")
    check(ds, (3, 32, 32), 10)
    assert len(ds.y_train) + len(ds.y_val) == 100 and len(ds.y_test) == 20
    assert ds.meta["class_names"][3] == "c3"
    raw = np.random.default_rng(9).integers(0, 256, (20, 3072), dtype=np.uint8).reshape(20, 3, 32, 32)
    np.testing.assert_allclose(ds.x_test, raw / 255.0, atol=1e-6)

    base = tmp_path / "cifar-100-python"
    _cifar_batch(base / "train", 300, 1, "fine_labels", 100)
    _cifar_batch(base / "test", 100, 2, "fine_labels", 100)
    ds = load_dataset(f"torchvision:CIFAR100?root={tmp_path}")
    check(ds, (3, 32, 32), 100)


def test_torchvision_svhn_and_stl10(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(6)
    for split, n in (("train", 30), ("test", 10)):
        savemat(tmp_path / f"{split}_32x32.mat",
                {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": (np.arange(n) % 10 + 1)[:, None]})
    ds = load_dataset(f"torchvision:SVHN?root={tmp_path}")
    check(ds, (3, 32, 32), 10)
    assert set(ds.y_test) == set(range(10))  # label 10 means digit 0

    base = tmp_path / "stl10_binary"
    base.mkdir()
    for split, n in (("train", 20), ("test", 10)):
        rng.integers(0, 256, n * 3 * 96 * 96, dtype=np.uint8).tofile(base / f"{split}_X.bin")
        (np.arange(n) % 10 + 1).astype(np.uint8).tofile(base / f"{split}_y.bin")
    ds = load_dataset(f"torchvision:STL10?root={tmp_path}&resize=32")
    check(ds, (3, 32, 32), 10)


# ---------------------------------------------------------------------------------------------- builtin


def test_builtin_generated_families():
    digits = load_dataset("builtin:digits")
    check(digits, (1, 8, 8), 10)
    assert len(digits.y_train) + len(digits.y_val) + len(digits.y_test) == 1797
    shapes = load_dataset("builtin:shapes")
    check(shapes, (1, 28, 28), 8)
    textures = load_dataset("builtin:textures")
    check(textures, (3, 32, 32), 6)
    assert {digits.family, shapes.family, textures.family} == {"digits", "shapes", "textures"}


def test_builtin_fashion_mnist_from_env_dir(tmp_path, monkeypatch):
    write_mnist_files(tmp_path, n_train=50, n_test=10, compress=True, suffix=".gz")
    monkeypatch.setenv("TRAUTOML_FASHION_MNIST_DIR", str(tmp_path))
    ds = load_dataset("builtin:fashion-mnist")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (45, 5, 10)
    assert ds.family == "fashion-mnist" and ds.meta["class_names"][0] == "t-shirt"
    monkeypatch.setenv("TRAUTOML_FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("builtin:fashion-mnist")


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(),
                    reason=f"Debian package dataset-fashion-mnist is not installed ({FASHION_MNIST_DIR} missing)")
def test_builtin_fashion_mnist_real(monkeypatch):
    monkeypatch.delenv("TRAUTOML_FASHION_MNIST_DIR", raising=False)
    ds = load_dataset("builtin:fashion-mnist")
    check(ds, (1, 28, 28), 10)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (54000, 6000, 10000)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    from trautoml.data.sources import _read_idx_cached

    decoded = _read_idx_cached.cache_info().misses
    load_dataset("builtin:fashion-mnist?max_train=1000")
    assert _read_idx_cached.cache_info().misses == decoded  # the gzip is decoded once per process
