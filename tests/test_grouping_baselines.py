"""Baseline groupers: one interface with the MH grouper, their rules, save/restore, degenerate input."""
import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from trautoml.decision import REASONS
from trautoml.grouping import (GROUPERS, KMeansGrouper, MetaFeatureGrouper, RandomGrouper, SequentialKMeansGrouper,
                               grouper_from_dict, make_grouper)

from fakes import synthetic_stream

pytestmark = pytest.mark.filterwarnings("error")

ALL = [("mh", {}), ("random", {}), ("random", {"n_groups": 3, "seed": 1}), ("kmeans", {"k": 6}),
       ("seq-kmeans", {}), ("metafeatures", {})]


@pytest.mark.parametrize("name,kwargs", ALL)
def test_every_grouper_runs_through_the_same_interface_and_restores(name, kwargs):
    labels, data = synthetic_stream(np.random.default_rng(0), n=40)
    g = make_grouper(name, **kwargs)
    out = [g.observe(X) for X in data[:20]]
    assert out[0].founded and out[0].group == "g1" and out[0].reason == "empty-cluster"
    for i, a in enumerate(out):
        assert a.index == i and a.reason in REASONS and a.method == name
        assert a.founded == (a.reason != "test-accepted") and a.explain()
    assert g.n_observed == 20 and g.labels() == [a.group for a in out]
    assert sorted(i for m in g.groups().values() for i in m) == list(range(20))
    restored = grouper_from_dict(json.loads(json.dumps(g.to_dict())))
    assert type(restored) is GROUPERS[name]
    assert [restored.observe(X).to_dict() for X in data[20:]] == [g.observe(X).to_dict() for X in data[20:]]
    assert restored.to_dict() == g.to_dict()


@pytest.mark.parametrize("name,kwargs", [("kmeans", {"k": 6}), ("seq-kmeans", {}), ("metafeatures", {})])
def test_similarity_baselines_recover_well_separated_groups(name, kwargs):
    labels, data = synthetic_stream(np.random.default_rng(1), n=60)
    g = make_grouper(name, **kwargs)
    for X in data:
        g.observe(X)
    assert adjusted_rand_score(labels, g.labels()) >= 0.8


def test_random_grouper_modes():
    g = RandomGrouper(n_groups=3, seed=0)
    for _ in range(50):
        g.observe(np.full(4, 0.5))
    assert g.n_groups == 3
    g = RandomGrouper(p_new=0.0)
    for _ in range(10):
        g.observe(np.full(4, 0.5))
    assert g.n_groups == 1
    g = RandomGrouper(p_new=1.0)
    for _ in range(10):
        g.observe(np.full(4, 0.5))
    assert g.n_groups == 10


def test_kmeans_joins_the_group_of_its_cluster_and_founds_when_isolated():
    g = KMeansGrouper(k=2)
    assert g.observe(np.full(3, 0.2)).founded
    assert g.observe(np.full(3, 0.8)).founded            # k = 2: a second cluster
    a = g.observe(np.full(3, 0.21))
    assert not a.founded and a.group == "g1"
    assert g.observe(np.full(3, 0.79)).group == "g2"


def test_sequential_kmeans_threshold_and_running_mean():
    g = SequentialKMeansGrouper(threshold=0.05)
    g.observe(np.full(6, 0.50))
    assert g.observe(np.full(6, 0.54)).group == "g1"     # RMS distance 0.04
    assert g._centres[0] == pytest.approx(np.full(6, 0.52))
    a = g.observe(np.full(6, 0.60))                       # 0.08 from the centre 0.52
    assert a.founded and a.extra["distance"] == pytest.approx(0.08)


def test_metafeature_grouper_takes_vectors_and_standardises():
    rng = np.random.default_rng(2)
    scales = np.array([1.0, 1e3, 1e-3, 10.0])            # features on very different scales
    centres = rng.normal(size=(3, 4)) * 3 * scales
    labels = rng.integers(3, size=30)
    g = MetaFeatureGrouper(threshold=0.5)
    for i, lab in enumerate(labels):
        v = centres[lab] + rng.normal(size=4) * 0.05 * scales
        g.observe(v if i % 2 else v[None, :])             # D or 1 × D
    assert adjusted_rand_score(labels, g.labels()) >= 0.9
    with pytest.raises(ValueError, match="dimensions"):
        g.observe(np.zeros(5))


@pytest.mark.parametrize("name,kwargs", ALL[1:])
def test_degenerate_input_gives_no_warning(name, kwargs):
    g = make_grouper(name, **kwargs)
    for X in [np.full((8, 6), 0.5)] * 3 + [np.zeros((8, 6)), np.zeros(6), np.ones((1, 6))]:
        a = g.observe(X)
        assert a.explain()
    if name == "random":  # labels drawn without looking at the data: the same as for any other input
        other = make_grouper(name, **kwargs)
        for _ in range(6):
            other.observe(np.random.default_rng(1).uniform(size=(8, 6)))
        assert g.labels() == other.labels()
    else:  # identical constant profiles are one group
        assert g.labels()[0] == g.labels()[1] == g.labels()[2]
    with pytest.raises(ValueError, match="NaN"):
        g.observe(np.full(6, np.nan))


def test_metafeature_scale_is_floored_so_the_second_dataset_can_join():
    """With two vectors every differing feature is exactly 2 stream standard deviations apart: without the floor
    (a tenth of the feature's magnitude) a 1 % difference would found a group as surely as a 100 % one."""
    g = MetaFeatureGrouper(threshold=0.5)
    base = np.array([7.0, 10.0, 0.3, 0.8])
    g.observe(base)
    assert g.observe(base * [1.01, 1, 1, 1]).reason == "test-accepted"       # 1 % apart: joins
    assert g.observe(base * [3.0, 1, 1, 1]).reason == "empty-cluster"        # 3 × the size: founds


def test_the_given_grouping_is_the_true_one_and_restores():
    labels, data = synthetic_stream(np.random.default_rng(3), n=20)
    g = make_grouper("given", labels=[f"family{lab}" for lab in labels])
    for x in data:
        g.observe(x)
    assert adjusted_rand_score(labels, g.labels()) == 1.0
    again = grouper_from_dict(g.to_dict())
    assert again.labels() == g.labels()
    with pytest.raises(ValueError, match="names 20 datasets; this is dataset 21"):
        g.observe(data[0])
