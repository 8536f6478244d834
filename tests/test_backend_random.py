import random

import pytest

from fakes import OPT, FakeRunner, fake_spec, quality, sample_fake, task
from search_backends.base import Trial
from search_backends.random_search import RandomSearch, SpecStream, space_sampler


def test_finds_best_of_fake_landscape_in_one_batch():
    runner = FakeRunner()
    res = RandomSearch(space=sample_fake).search(task(runner, max_trials=40, max_epochs=2.0))
    assert len(runner.calls) == 1 and len(res.trials) == 40
    assert all(t.resource == 2.0 for t in res.trials)
    best_x = max(res.trials, key=lambda t: quality(t.spec)).spec
    assert res.best == best_x and res.best_resource == 2.0
    assert res.best_val_accuracy == pytest.approx(quality(best_x) * 2 / 3)
    assert len({t.spec for t in res.trials}) == 40  # distinct specs


def test_warm_start_evaluated_first_and_counted_in_max_trials():
    runner = FakeRunner()
    warm = [fake_spec(OPT), fake_spec(3), fake_spec(OPT)]  # a duplicate is tried once
    res = RandomSearch(space=sample_fake).search(task(runner, warm=warm, max_trials=5))
    specs = [t.spec for t in res.trials]
    assert specs[:2] == [fake_spec(OPT), fake_spec(3)] and len(specs) == 5
    assert res.best == fake_spec(OPT)
    few = RandomSearch(space=sample_fake).search(task(FakeRunner(), warm=warm, max_trials=1))
    assert [t.spec for t in few.trials] == [fake_spec(OPT)]


def test_seeded_and_deterministic():
    a = RandomSearch(space=sample_fake).search(task(FakeRunner(), seed=3, max_trials=6))
    b = RandomSearch(space=sample_fake).search(task(FakeRunner(), seed=3, max_trials=6))
    c = RandomSearch(space=sample_fake).search(task(FakeRunner(), seed=4, max_trials=6))
    assert [t.spec for t in a.trials] == [t.spec for t in b.trials] != [t.spec for t in c.trials]


def test_max_seconds_stops_issuing_chunks():
    runner = FakeRunner()
    res = RandomSearch(space=sample_fake, chunk_size=3).search(task(runner, max_trials=10, max_seconds=0.0))
    assert [len(c) for c in runner.calls] == [3] and res.stopped_early
    runner = FakeRunner()
    res = RandomSearch(space=sample_fake, chunk_size=3).search(task(runner, max_trials=10, max_seconds=60))
    assert [len(c) for c in runner.calls] == [3, 3, 3, 1] and not res.stopped_early


def test_failed_trials_are_kept_but_never_best():
    runner = FakeRunner(fail=lambda s: s.arch["x"] % 2 == 0)
    res = RandomSearch(space=sample_fake).search(task(runner, max_trials=20))
    assert any(t.status == "failed" for t in res.trials)
    assert res.best.arch["x"] % 2 == 1
    with pytest.raises(RuntimeError, match="failed"):
        RandomSearch(space=sample_fake).search(task(FakeRunner(fail=lambda s: True), max_trials=3))


def test_small_space_and_bad_budget():
    res = RandomSearch(space=lambda rng: fake_spec(rng.randrange(3))).search(task(FakeRunner(), max_trials=10))
    assert len(res.trials) == 3  # only three distinct specs exist
    with pytest.raises(ValueError, match="max_trials"):
        RandomSearch(space=sample_fake).search(task(FakeRunner(), max_trials=0))


def test_space_names():
    assert space_sampler("cnn")(random.Random(0)).space == "cnn"
    assert space_sampler("mlp")(random.Random(0)).space == "mlp"
    with pytest.raises(ValueError, match="cnn, mlp"):
        space_sampler("transformer")
    flat = lambda reqs: [Trial(r.spec, r.resource, r.seed, 0.5, 0.5, 0.0) for r in reqs]  # noqa: E731
    res = RandomSearch(space="mlp").search(task(flat, max_trials=3))
    assert {t.spec.space for t in res.trials} == {"mlp"} and res.info["space"] == "mlp"


def test_spec_stream_never_repeats():
    stream = SpecStream(sample_fake, random.Random(0), [fake_spec(1)])
    a, b = stream.take(10), stream.take(10)
    assert a[0] == fake_spec(1) and len(set(a + b)) == 20
