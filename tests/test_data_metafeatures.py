"""Statistical meta-features (the auto-sklearn-style baseline)."""
from __future__ import annotations

import math

import numpy as np

from trautoml.data import METAFEATURE_NAMES, Dataset, load_dataset, statistical_metafeatures


def test_keys_order_and_finiteness():
    for uri in ("builtin:digits", "builtin:textures?max_train=600&max_eval=50", "builtin:shapes?rotate=1"):
        mf = statistical_metafeatures(load_dataset(uri))
        assert tuple(mf) == METAFEATURE_NAMES
        assert all(isinstance(v, float) and math.isfinite(v) for v in mf.values())


def test_values_make_sense():
    ds = load_dataset("builtin:textures?max_train=600&max_eval=50")
    mf = statistical_metafeatures(ds)
    assert (mf["channels"], mf["height"], mf["width"]) == (3.0, 32.0, 32.0)
    assert mf["n_classes"] == 6 and math.isclose(mf["log_n_train"], math.log(600))
    assert math.isclose(mf["class_entropy"], math.log2(6), rel_tol=1e-3)  # balanced
    assert math.isclose(mf["class_ratio_min_max"], 1.0, rel_tol=1e-2)
    assert 0.0 < mf["pca_fraction_95"] <= 1.0
    assert math.isclose(mf["log_pixels"], math.log(3 * 32 * 32))


def test_imbalance_and_constant_images():
    x = np.zeros((40, 1, 4, 4), dtype=np.float32)
    x[:10] = 1.0
    y = np.array([0] * 30 + [1] * 10)
    ds = Dataset("flat", x, y, x[:4], y[:4] * 0 + np.array([0, 1, 0, 1]), x[:4], np.array([0, 1, 0, 1]), 2)
    mf = statistical_metafeatures(ds)
    assert math.isclose(mf["class_prob_min"], 0.25) and math.isclose(mf["class_prob_max"], 0.75)
    assert math.isclose(mf["class_ratio_min_max"], 1 / 3)
    assert mf["skewness_mean"] == 0.0 and mf["kurtosis_mean"] == 0.0  # constant images: defined as 0
    assert all(math.isfinite(v) for v in mf.values())


def test_deterministic_and_discriminative():
    a = load_dataset("builtin:shapes")
    m1 = statistical_metafeatures(a)
    assert m1 == statistical_metafeatures(a)
    m2 = statistical_metafeatures(load_dataset("builtin:shapes?background=noise"))
    assert m2["pixel_mean"] > m1["pixel_mean"] + 0.2
