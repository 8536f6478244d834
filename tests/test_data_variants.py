"""Derived variants (query parameters), names, seeds and content hashes."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from trautoml.data import Dataset, load_dataset, transforms
from trautoml.data.sources import fashion_mnist_dir

BASE = "builtin:shapes?max_train=800&max_eval=200"


def test_subsample_is_stratified_and_nested():
    full = load_dataset(BASE)
    half = load_dataset(BASE + "&subsample=0.5")
    assert len(half.y_train) == len(full.y_train) // 2
    p_full = np.bincount(full.y_train) / len(full.y_train)
    p_half = np.bincount(half.y_train, minlength=full.num_classes) / len(half.y_train)
    np.testing.assert_allclose(p_half, p_full, atol=1.5 / len(half.y_train))
    np.testing.assert_array_equal(half.x_test, full.x_test)  # the test split stays whole
    assert len(half.y_val) == round(len(full.y_val) / 2)
    # the half is a subset of the capped dataset
    rows = {r.tobytes() for r in full.x_train}
    assert all(r.tobytes() in rows for r in half.x_train)


def test_stratified_take_keeps_proportions_of_imbalanced_labels():
    y = np.repeat(np.arange(4), [500, 300, 150, 50])
    sel = transforms.stratified_take(y, 100, np.random.default_rng(0))
    assert len(sel) == 100 and np.bincount(y[sel]).tolist() == [50, 30, 15, 5]
    sel = transforms.stratified_take(y, 5, np.random.default_rng(0))
    assert len(sel) == 5 and set(y[sel]) == {0, 1, 2, 3}  # no class silently dropped


def test_caps():
    ds = load_dataset("builtin:digits?max_train=300&max_eval=50")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (300, 50, 50)
    assert set(ds.y_train) == set(range(10))


def test_rotation_changes_pixels_not_labels():
    raw = load_dataset(BASE)
    rot = load_dataset(BASE + "&rotate=1")
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(rot.split(split)[1], raw.split(split)[1])
    assert not np.allclose(rot.x_train, raw.x_train)
    assert rot.x_train.shape == raw.x_train.shape
    # rotation keeps most of the mass of a centred-ish shape
    assert abs(rot.x_train.mean() - raw.x_train.mean()) < 0.05


def test_rotate_matches_exact_quarter_turns():
    x = np.random.default_rng(0).random((6, 2, 9, 9)).astype(np.float32)
    np.testing.assert_allclose(transforms.rotate(x, np.full(6, 270.0)), np.rot90(x, 1, axes=(2, 3)), atol=1e-5)
    np.testing.assert_allclose(transforms.rotate(x, np.zeros(6)), x, atol=1e-6)


def test_classes_subset_relabelled_in_given_order():
    full = load_dataset("builtin:digits")
    sub = load_dataset("builtin:digits?classes=7,2,5")
    assert sub.num_classes == 3 and sub.name == "digits?classes=7,2,5"
    assert sub.meta["class_names"] == ["7", "2", "5"]
    for split in ("train", "val", "test"):
        x, y = sub.split(split)
        fx, fy = full.split(split)
        assert set(y) == {0, 1, 2}
        keep = np.isin(fy, [7, 2, 5])
        np.testing.assert_array_equal(x, fx[keep])  # same images, same split as the full dataset
        np.testing.assert_array_equal(np.array([7, 2, 5])[y], fy[keep])


def test_invert_and_resize():
    raw = load_dataset("builtin:digits")
    inv = load_dataset("builtin:digits?invert=1")
    np.testing.assert_allclose(inv.x_train, 1.0 - raw.x_train, atol=1e-6)
    big = load_dataset("builtin:digits?resize=16")
    assert big.input_shape == (1, 16, 16) and big.x_train.dtype == np.float32
    small = load_dataset("builtin:textures?resize=12&max_train=60&max_eval=20")
    assert small.input_shape == (3, 12, 12)
    np.testing.assert_allclose(small.x_train.mean(), load_dataset(
        "builtin:textures?max_train=60&max_eval=20").x_train.mean(), atol=0.01)  # area-preserving shrink


def test_background_replaces_only_dark_pixels():
    raw = load_dataset(BASE)
    for kind in ("noise", "images"):
        bg = load_dataset(f"{BASE}&background={kind}")
        bright = raw.x_train.mean(axis=1, keepdims=True) >= transforms.BACKGROUND_THRESHOLD
        np.testing.assert_array_equal(bg.x_train[np.broadcast_to(bright, bg.x_train.shape)],
                                      raw.x_train[np.broadcast_to(bright, raw.x_train.shape)])
        assert bg.x_train.mean() > raw.x_train.mean() + 0.1
        np.testing.assert_array_equal(bg.y_train, raw.y_train)
    colour = load_dataset("builtin:textures?max_train=50&max_eval=20&background=noise")
    assert colour.input_shape == (3, 32, 32)


def test_names_are_canonical_and_family_is_the_source():
    a = load_dataset("builtin:shapes?subsample=0.50&rotate=1&max_train=500&max_eval=100&invert=0")
    assert a.name == "shapes?max_eval=100&max_train=500&rotate=1&subsample=0.5"
    assert a.family == "shapes" and a.uri.startswith("builtin:shapes?subsample=0.50")
    b = load_dataset("builtin:shapes?max_eval=100&max_train=500&rotate=true&subsample=0.5")
    assert b.name == a.name and b.content_hash() == a.content_hash()
    c = load_dataset("builtin:shapes?max_eval=100&max_train=500&rotate=1&subsample=0.5&seed=3")
    assert c.name == "shapes?max_eval=100&max_train=500&rotate=1&seed=3&subsample=0.5"
    assert c.content_hash() != a.content_hash()
    assert load_dataset("builtin:shapes?max_train=500&seed=0").name == "shapes?max_train=500"


def test_seed_controls_split_and_randomness():
    a = load_dataset("builtin:digits?seed=1")
    b = load_dataset("builtin:digits?seed=1")
    c = load_dataset("builtin:digits?seed=2")
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_loads_are_independent_copies():
    a = load_dataset("builtin:digits")
    a.x_train[:] = 0.0  # the caller owns the arrays; the cached source is untouched
    assert load_dataset("builtin:digits").x_train.max() == 1.0


_HASH_SCRIPT = ("from trautoml.data import load_dataset; "
                "print(load_dataset('builtin:shapes?max_train=300&max_eval=50&rotate=1&background=images')"
                ".content_hash())")


def test_content_hash_stable_across_processes_and_sensitive_to_pixels():
    ds = load_dataset("builtin:shapes?max_train=300&max_eval=50&rotate=1&background=images")
    out = subprocess.run([sys.executable, "-c", _HASH_SCRIPT], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == ds.content_hash()
    x = ds.x_test.copy()
    x[3, 0, 5, 7] = np.nextafter(x[3, 0, 5, 7], np.float32(2))
    changed = Dataset(ds.name, ds.x_train, ds.y_train, ds.x_val, ds.y_val, x, ds.y_test, ds.num_classes)
    assert changed.content_hash() != ds.content_hash()


@pytest.mark.parametrize("uri", [
    pytest.param("builtin:fashion-mnist?max_train=300&max_eval=50&rotate=1",
                 marks=pytest.mark.skipif(not fashion_mnist_dir().is_dir(),
                                          reason="Debian's dataset-fashion-mnist is not installed")),
    "builtin:digits?background=images&invert=1"])
def test_variant_values_stay_in_unit_range(uri):
    ds = load_dataset(uri)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
