"""The profile carries signal on real data (fixed seeds): Fashion-MNIST and its stratified 50% subset profile closer
to each other (Euclidean distance of the mean vectors) than Fashion-MNIST and sklearn's digits."""
import numpy as np
import pytest

from landmarkers import ProfileBudget, profile
from trautoml.data import load_dataset
from trautoml.executor import LocalExecutor, SerialExecutor


def _load(uri):
    return load_dataset(uri)  # builtin:fashion-mnist needs Debian's dataset-fashion-mnist (./install.sh installs it)


def _distances(executor, **kw):
    fm = profile(_load("builtin:fashion-mnist"), executor=executor, **kw)
    half = profile(_load("builtin:fashion-mnist?subsample=0.5"), executor=executor, **kw)
    digits = profile(_load("builtin:digits"), executor=executor, **kw)
    for p in (fm, half, digits):
        assert ((p.trials >= 0) & (p.trials <= 1)).all()
    return float(np.linalg.norm(fm.mean - half.mean)), float(np.linalg.norm(fm.mean - digits.mean))


def test_subset_profiles_closer_than_another_dataset_fast():
    """Small caps (4 landmarkers × 3 trials on 256 images): ~10 s on 2 cores."""
    near, far = _distances(SerialExecutor(), n_models=4, n_trials=3, seed=0,
                           budget=ProfileBudget(epochs=1.0, max_train=256, max_eval=300))
    assert near < far, (near, far)
    assert far > 2 * near


@pytest.mark.slow
def test_subset_profiles_closer_than_another_dataset_default_budget():
    """The defaults (6 × 8, 1,024 images), over the machine's cores."""
    ex = LocalExecutor()
    try:
        near, far = _distances(ex, seed=0)
    finally:
        ex.close()
    assert near < far / 3, (near, far)
