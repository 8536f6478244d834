import math

import pytest

from fakes import OPT, FakeRunner, fake_spec, quality, sample_fake, task
from search_backends.hyperband import Hyperband, bracket_cost, brackets, plan_brackets, s_max_of


def test_schedule_R81_eta3():
    assert brackets(81, 3) == [
        [(81, 1.0), (27, 3.0), (9, 9.0), (3, 27.0), (1, 81.0)],
        [(34, 3.0), (11, 9.0), (3, 27.0), (1, 81.0)],
        [(15, 9.0), (5, 27.0), (1, 81.0)],
        [(8, 27.0), (2, 81.0)],
        [(5, 81.0)],
    ]


def test_integer_s_max_keeps_every_bracket():
    assert math.floor(math.log(243) / math.log(3)) == 4  # the floating-point trap
    assert s_max_of(243, 3) == 5
    b = brackets(243, 3)
    assert len(b) == 6 and b[0][0] == (243, 1.0) and b[-1] == [(6, 243.0)]
    assert [len(x) for x in brackets(1000, 10)] == [4, 3, 2, 1]
    assert brackets(1, 3) == [[(1, 1.0)]] and brackets(2, 3) == [[(1, 2.0)]]
    for R, eta in [(81, 3), (100, 4), (27, 2), (30, 3)]:
        for rungs in brackets(R, eta):
            assert rungs[-1][1] == R  # every bracket ends at the full resource
            assert all(n2 == n1 // eta for (n1, _), (n2, _) in zip(rungs, rungs[1:]))
    with pytest.raises(ValueError, match="eta"):
        brackets(81, 1)
    with pytest.raises(ValueError, match="R"):
        brackets(0, 3)


def test_plan_scales_with_the_trial_budget():
    full = brackets(81, 3)
    assert sum(bracket_cost(b, 81) for b in full) == pytest.approx(23.48, abs=0.01)
    assert plan_brackets(81, 3, 24) == full  # 0.52 left after a round: less than one training at R
    assert plan_brackets(81, 3, 25) == full + [[(1, 81.0)]]  # 1.52 left: only s = 0 with n = 1 fits
    assert plan_brackets(81, 3, 1) == [[(1, 81.0)]]
    assert plan_brackets(81, 3, 3) == [[(9, 9.0), (3, 27.0), (1, 81.0)]]
    assert plan_brackets(81, 3, 6) == [full[0], [(1, 81.0)]]
    shrunk = plan_brackets(81, 3, 4.6)
    assert len(shrunk) == 1 and shrunk[0][0][0] < 81 and shrunk[0][-1] == (1, 81.0)
    for budget in [1, 2, 5, 7, 10, 23, 30, 60]:
        plan = plan_brackets(81, 3, budget)
        spent = sum(bracket_cost(b, 81) for b in plan)
        assert budget - 1 < spent <= budget + 1e-9
        assert all(b[-1][1] == 81 and b[-1][0] >= 1 for b in plan)


def test_runs_the_schedule_one_batch_per_rung_and_finds_the_optimum():
    runner = FakeRunner()
    res = Hyperband(eta=3, space=sample_fake).search(task(runner, seed=1, max_trials=24, max_epochs=8.1,
                                                         min_epochs=0.1))
    assert res.info["R"] == 81
    expected = [n for b in brackets(81, 3) for n, _ in b]
    assert [len(c) for c in runner.calls] == expected
    for call, (_, r) in zip(runner.calls, [rung for b in brackets(81, 3) for rung in b]):
        assert all(q.resource == pytest.approx(r * 0.1) for q in call)
    assert len(res.trials) == sum(expected)
    # the landscape ranks configs the same at every resource, so the best sampled config must win at R
    assert res.best == max((t.spec for t in res.trials), key=quality)
    assert res.best_resource == 8.1 and res.info["best_resource_reached"] == pytest.approx(8.1)
    assert res.info["fbe_used"] <= 24 + 1e-9
    assert res.info["configs"] == 81 + 34 + 15 + 8 + 5


def test_promotions_are_the_top_floor_n_over_eta():
    runner = FakeRunner()
    Hyperband(eta=3, space=sample_fake, R=27).search(task(runner, max_trials=4, max_epochs=2.7))
    assert [len(c) for c in runner.calls] == [27, 9, 3, 1]
    for prev, nxt in zip(runner.calls, runner.calls[1:]):
        ranked = sorted(prev, key=lambda q: -quality(q.spec))
        assert {q.spec for q in nxt} == {q.spec for q in ranked[:len(prev) // 3]}
        assert nxt[0].resource == pytest.approx(3 * prev[0].resource)


def test_promotion_uses_the_rung_scores_not_the_spec_order():
    # accuracy inverts at the small resource: a config that is bad at R looks best at r < 1 and is promoted
    def run(requests):
        out = FakeRunner()(requests)
        for t in out:
            t.val_accuracy = quality(t.spec) if t.resource > 0.99 else 1 - quality(t.spec)
        return out

    calls = []
    res = Hyperband(eta=3, space=sample_fake, R=9).search(task(lambda reqs: calls.append(reqs) or run(reqs),
                                                               max_trials=3, max_epochs=1.0))
    first = sorted(calls[0], key=lambda q: quality(q.spec))
    assert {q.spec for q in calls[1]} == {q.spec for q in first[:3]}
    assert res.best == max((q.spec for q in calls[-1]), key=quality)


def test_best_is_taken_at_the_top_rung():
    # small resources score higher here; the result must still come from the largest resource reached
    def run(requests):
        out = FakeRunner()(requests)
        for t in out:
            t.val_accuracy = quality(t.spec) / t.resource
        return out

    res = Hyperband(eta=3, space=sample_fake, R=9).search(task(run, max_trials=3, max_epochs=9.0))
    top = [t for t in res.trials if t.resource == 9.0]
    assert len(top) == 1 and res.best == top[0].spec and res.best_val_accuracy == top[0].val_accuracy


def test_warm_start_enters_the_first_bracket():
    runner = FakeRunner()
    warm = [fake_spec(OPT), fake_spec(5)]
    res = Hyperband(eta=3, space=sample_fake).search(task(runner, warm=warm, max_trials=4, max_epochs=2.7,
                                                          min_epochs=0.1))
    assert [q.spec for q in runner.calls[0][:2]] == warm
    assert res.best == fake_spec(OPT)
    # more warm specs than the first bracket holds: they spill into the next brackets
    many = [fake_spec(i) for i in range(12)]
    runner = FakeRunner()
    Hyperband(eta=3, space=sample_fake, R=9).search(task(runner, warm=many, max_trials=6, max_epochs=1.0))
    tried = {t.spec for c in runner.calls for t in c}
    assert set(many) <= tried


@pytest.mark.parametrize("max_trials", [1, 2, 3, 5, 9, 20])
def test_obeys_max_trials_in_full_budget_equivalents(max_trials):
    runner = FakeRunner()
    res = Hyperband(eta=3, space=sample_fake).search(task(runner, max_trials=max_trials, max_epochs=3.0,
                                                          min_epochs=0.1))
    epochs = sum(t.resource for t in res.trials)
    assert epochs <= max_trials * 3.0 + 1e-6
    assert any(t.resource == pytest.approx(3.0) for t in res.trials)
    if max_trials == 1:
        assert len(res.trials) == 1
    with pytest.raises(ValueError, match="max_trials"):
        Hyperband().search(task(runner, max_trials=0))


def test_max_seconds_stops_after_the_first_rung():
    runner = FakeRunner()
    res = Hyperband(eta=3, space=sample_fake, R=27).search(task(runner, max_trials=8, max_epochs=2.7,
                                                                max_seconds=0.0))
    assert len(runner.calls) == 1 and res.stopped_early
    assert res.info["best_resource_reached"] == pytest.approx(0.1) and res.best_resource == 2.7


def test_failed_trials_rank_last():
    runner = FakeRunner(fail=lambda s: s.arch["x"] % 2 == 0)
    res = Hyperband(eta=3, space=sample_fake, R=9).search(task(runner, max_trials=3, max_epochs=0.9))
    assert res.best.arch["x"] % 2 == 1
    promoted = {q.spec for q in runner.calls[1]}
    assert all(s.arch["x"] % 2 == 1 for s in promoted)


def test_small_space_still_halves():
    runner = FakeRunner()
    res = Hyperband(eta=3, space=lambda rng: fake_spec(rng.randrange(6)), R=27).search(
        task(runner, max_trials=4, max_epochs=2.7))
    # 6 distinct specs exist, not 27: keep floor(6/3) = 2, then 1 (at least one goes on to R)
    assert [len(c) for c in runner.calls] == [6, 2, 1, 1]
    assert res.best == fake_spec(5)
