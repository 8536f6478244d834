"""Statistical meta-features of a dataset: the auto-sklearn-style baseline (Feurer et al. 2015) that the paper
compares its landmarker profile against (paper 002 §3.1, "[26] ... statistics about the number of data points,
features, and classes, as well as data skewness, and the entropy of the targets").

Computed on the train split; the pixel and PCA statistics on a seeded, stratified subsample of at most
``max_samples`` images (so a dataset of any size costs well under a second). Every value is a finite float.
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset
from .transforms import stratified_take

METAFEATURE_NAMES = (
    "log_n_train",                 # log number of training images
    "n_classes",
    "log_n_classes",
    "channels",
    "height",
    "width",
    "log_pixels",                  # log(C·H·W), the number of input features
    "log_features_per_sample",     # log(C·H·W / n_train): auto-sklearn's dataset ratio
    "class_entropy",               # entropy of the train label distribution, bits
    "class_prob_min",              # smallest class share
    "class_prob_max",              # largest class share
    "class_ratio_min_max",         # smallest / largest class count
    "pixel_mean",                  # mean intensity
    "pixel_std",                   # mean over images of the per-image intensity std
    "skewness_mean",               # per-image skewness of the pixel values: mean over images
    "skewness_std",                # ... and its std over images
    "kurtosis_mean",               # per-image excess kurtosis of the pixel values: mean over images
    "kurtosis_std",
    "pca_fraction_95",             # components for 95 % of the variance / the most there can be (min(n-1, C·H·W))
    "pca_skewness_pc1",            # skewness of the data projected on the first principal component
    "pca_kurtosis_pc1",            # its excess kurtosis
)


def _moments(a: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Skewness and excess kurtosis along ``axis``; 0 where the values are constant."""
    a = a.astype(np.float64, copy=False)
    d = a - a.mean(axis=axis, keepdims=True)
    m2 = (d ** 2).mean(axis=axis)
    m3 = (d ** 3).mean(axis=axis)
    m4 = (d ** 4).mean(axis=axis)
    flat = m2 <= 1e-12
    m2s = np.where(flat, 1.0, m2)
    skew = np.where(flat, 0.0, m3 / m2s ** 1.5)
    kurt = np.where(flat, 0.0, m4 / m2s ** 2 - 3.0)
    return skew, kurt


def statistical_metafeatures(dataset: Dataset, max_samples: int = 500, seed: int = 0) -> dict[str, float]:
    """The meta-features named in ``METAFEATURE_NAMES``, in that order."""
    x, y = dataset.x_train, dataset.y_train
    n = len(y)
    c, h, w = dataset.input_shape
    d = c * h * w
    counts = np.bincount(y, minlength=dataset.num_classes).astype(np.float64)
    present = counts[counts > 0]
    probs = present / n
    sel = stratified_take(y, max_samples, np.random.default_rng([seed, 0x3F])) if n > max_samples else np.arange(n)
    flat = x[sel].reshape(len(sel), d).astype(np.float64)

    skew, kurt = _moments(flat, axis=1)
    frac95, pc_skew, pc_kurt = _pca_stats(flat)
    out = {
        "log_n_train": np.log(n),
        "n_classes": dataset.num_classes,
        "log_n_classes": np.log(dataset.num_classes),
        "channels": c,
        "height": h,
        "width": w,
        "log_pixels": np.log(d),
        "log_features_per_sample": np.log(d / n),
        "class_entropy": float(-(probs * np.log2(probs)).sum()),
        "class_prob_min": counts.min() / n,
        "class_prob_max": counts.max() / n,
        "class_ratio_min_max": counts.min() / counts.max(),
        "pixel_mean": flat.mean(),
        "pixel_std": flat.std(axis=1).mean(),
        "skewness_mean": skew.mean(),
        "skewness_std": skew.std(),
        "kurtosis_mean": kurt.mean(),
        "kurtosis_std": kurt.std(),
        "pca_fraction_95": frac95,
        "pca_skewness_pc1": pc_skew,
        "pca_kurtosis_pc1": pc_kurt,
    }
    assert tuple(out) == METAFEATURE_NAMES
    return {k: float(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)) for k, v in out.items()}


def _pca_stats(flat: np.ndarray) -> tuple[float, float, float]:
    """(fraction of components for 95 % variance, skewness and kurtosis of the first-PC scores).

    The first component's sign is fixed so its loadings sum to >= 0 (otherwise the skewness sign would be
    arbitrary). Uses the n×n Gram matrix when there are more pixels than samples.
    """
    import scipy.linalg
    from threadpoolctl import threadpool_limits

    n, d = flat.shape
    if n < 2:
        return 0.0, 0.0, 0.0
    xc = flat - flat.mean(axis=0)
    gram = d > n
    # One BLAS thread: on a busy 2-core machine multithreaded OpenBLAS eigen-solvers spin and take seconds
    # where one thread takes milliseconds. Eigenvalues alone, then only the top eigenvector.
    with threadpool_limits(limits=1, user_api="blas"):
        m = xc @ xc.T if gram else xc.T @ xc
        evals = np.linalg.eigvalsh(m)
        top = scipy.linalg.eigh(m, subset_by_index=[len(m) - 1, len(m) - 1])[1][:, 0]
    v1 = xc.T @ top if gram else top
    evals = np.clip(evals[::-1], 0.0, None)
    total = evals.sum()
    if total <= 1e-12:
        return 0.0, 0.0, 0.0
    n95 = int(np.searchsorted(np.cumsum(evals) / total, 0.95) + 1)
    v1 = v1 / max(np.linalg.norm(v1), 1e-12)
    if v1.sum() < 0:
        v1 = -v1
    skew, kurt = _moments((xc @ v1)[None], axis=1)
    return n95 / min(n - 1, d), float(skew[0]), float(kurt[0])
