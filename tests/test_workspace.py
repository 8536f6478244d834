"""The durable workspace (SQLite, one transaction per ingest, a lock), presets and the decision rules — no training."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from fakes import OTHER, SETTINGS, SPEC, commit, stored_decision
from trautoml import decide
from trautoml.presets import PRESETS, get_preset
from trautoml.workspace import Workspace, WorkspaceError, state_path


def _counts(path):
    with sqlite3.connect(path) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("datasets", "groups", "grouper", "trials", "profiles")}


def test_state_lives_under_dot_trautoml_and_survives_reopening(tmp_path):
    with Workspace(tmp_path) as ws:
        commit(ws, "a", "g1", founds=True, version=None)
        commit(ws, "b", "g1", founds=False, version=1, outcome="reused", val=0.6)
        commit(ws, "c", "g2", founds=True, version=2, spec=OTHER)
        assert commit(ws, "d", "g1", founds=False, version=3, outcome="searched", spec=OTHER, val=0.9) == 4
    assert state_path(tmp_path) == tmp_path / ".trautoml" / "state.db"
    with sqlite3.connect(state_path(tmp_path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Workspace(tmp_path, create=False) as ws:
        assert ws.groups() == [{"id": "g1", "members": ["a", "b", "d"], "model": SPEC.to_dict()},
                               {"id": "g2", "members": ["c"], "model": OTHER.to_dict()}]
        assert ws.grouper_state() == ("mh", {"n": "d"}, 4)
        assert ws.decision_by_hash("hash-b").outcome == "reused"
        assert ws.dataset_row("c")["decision"]["group"] == "g2"
        assert ws.dataset_row("hash-c")["name"] == "c"  # a content hash works as a name
        # the accuracy guard's points: members of g1 that trained g1's model (d escalated to another one), and the
        # searched datasets (none has a landmarker profile here, so no point has a level)
        assert ws.accuracy_points("g1", SPEC.to_dict()) == ([(None, None, 0.8, None), (None, None, 0.6, None)], [])
        assert ws.accuracy_points("g1", OTHER.to_dict()) == ([(None, None, 0.9, None)], [])
        assert ws.profile_points() == (["a", "b", "c", "d"], [[0.1, 0.2, 0.3]] * 4, ["g1", "g1", "g2", "g1"])


def test_opening_a_missing_workspace_read_only_creates_nothing(tmp_path):
    with pytest.raises(WorkspaceError, match="no trautoml workspace"):
        Workspace(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("case", ["stale-version", "duplicate", "join-unknown-group", "found-existing-group"])
def test_a_refused_commit_changes_nothing(tmp_path, case):
    ws = Workspace(tmp_path)
    commit(ws, "a", "g1", founds=True, version=None)
    before = _counts(state_path(tmp_path))
    state_before = ws.grouper_state()
    with pytest.raises(WorkspaceError):
        if case == "stale-version":
            commit(ws, "b", "g1", founds=False, version=None)
        elif case == "duplicate":
            commit(ws, "a", "g1", founds=False, version=1)
        elif case == "join-unknown-group":
            commit(ws, "b", "g7", founds=False, version=1)
        else:
            commit(ws, "b", "g1", founds=True, version=1)
    assert _counts(state_path(tmp_path)) == before
    assert ws.grouper_state() == state_before


def test_settings_are_fixed_by_the_first_ingest(tmp_path):
    ws = Workspace(tmp_path)
    ws.check_settings({"anything": 1})  # empty workspace: any settings
    commit(ws, "a", "g1", founds=True, version=None)
    ws.check_settings(dict(SETTINGS))
    with pytest.raises(WorkspaceError, match="n_trials=5 \\(asked 8\\)"):
        ws.check_settings({**SETTINGS, "n_trials": 8})


def test_trial_and_profile_caches_round_trip(tmp_path):
    ws = Workspace(tmp_path)
    trial = {"spec": SPEC.to_dict(), "resource": 1.0, "seed": 0, "val_accuracy": 0.5, "test_accuracy": 0.4,
             "wall_seconds": 3.25, "status": "ok", "error": None, "cached": False}
    ws.store_trials("h", "{}", [{"spec_key": SPEC.key(), "resource": 1.0, "seed": 0, "trial": trial}])
    assert ws.cached_trial("h", SPEC.key(), 1.0, 0, "{}") == trial
    assert ws.cached_trial("h", SPEC.key(), 1.0, 1, "{}") is None  # another seed
    assert ws.cached_trial("h", SPEC.key(), 1.0, 0, '{"max_train": 9}') is None  # other data caps
    ws.store_profile("h", "k", {"trials": [[0.5]]})
    assert ws.cached_profile("h", "k") == {"trials": [[0.5]]} and ws.cached_profile("h", "k2") is None


def test_state_is_json_not_pickle(tmp_path):
    ws = Workspace(tmp_path)
    commit(ws, "a", "g1", founds=True, version=None)
    with sqlite3.connect(state_path(tmp_path)) as db:
        for table, col in (("grouper", "state"), ("datasets", "decision"), ("datasets", "profile"),
                           ("groups", "spec")):
            values = [value for (value,) in db.execute(f"SELECT {col} FROM {table}")]
            assert values, f"{table}.{col} holds no row: nothing was checked"
            for value in values:
                assert isinstance(json.loads(value), dict | list), (table, col)


def _lock_holder(root, seconds: float) -> subprocess.Popen:
    """Another process that takes the workspace lock and holds it for ``seconds``."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from trautoml.workspace import Workspace\n"
         "with Workspace(sys.argv[1]).lock():\n    print('held', flush=True); time.sleep(float(sys.argv[2]))",
         str(root), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_the_lock_serialises_processes(tmp_path):
    ws = Workspace(tmp_path)
    holder = _lock_holder(tmp_path, 4)
    try:
        with pytest.raises(TimeoutError, match="busy"):
            with ws.lock(timeout=0.5):
                pass
        t0 = time.monotonic()
        with ws.lock(timeout=60):  # granted once the holder exits
            assert time.monotonic() - t0 > 0.5
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_releases_the_lock(tmp_path):
    ws = Workspace(tmp_path)
    holder = _lock_holder(tmp_path, 60)
    holder.kill()
    holder.wait()
    with ws.lock(timeout=10):
        pass


# ---------------------------------------------------------------------------------------------- presets
def test_presets_and_overrides():
    assert set(PRESETS) == {"tiny", "small", "paper"}
    paper = get_preset("paper")
    assert (paper.n_models, paper.n_trials, paper.eta) == (6, 15, 3)   # T = 15: the guard's power at 3 trial-sd
    assert round(paper.search_epochs / paper.search_min_epochs) == 81  # Hyperband R = 81
    for p in PRESETS.values():
        assert p.n_trials > p.n_models and p.reuse_tolerance == 0.02   # the accuracy guard is on
    p = get_preset("tiny", n_trials="7", search_seconds="none", reuse_tolerance="0.1", alpha=0.01)
    assert (p.n_trials, p.search_seconds, p.reuse_tolerance, p.alpha) == (7, None, 0.1, 0.01)
    with pytest.raises(ValueError, match="unknown setting"):
        get_preset("tiny", bogus=1)
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")
    with pytest.raises(ValueError, match="T=3"):
        get_preset("tiny", n_trials=3)
    with pytest.raises(ValueError, match="cannot read"):
        get_preset("tiny", n_trials="many")


# ---------------------------------------------------------------------------------------------- decide
def _assignment(group, founded, reason):
    return SimpleNamespace(group=group, founded=founded, reason=reason)


def test_algorithm_1_branches():
    p = decide.plan(_assignment("g1", True, "empty-cluster"), None)
    assert (p.action, p.founds_group, p.group) == ("search", True, "g1")
    p = decide.plan(_assignment("g2", True, "test-rejected"), None)
    assert (p.action, p.founds_group, p.reason) == ("search", True, "test-rejected")
    p = decide.plan(_assignment("g1", False, "test-accepted"), SPEC)
    assert (p.action, p.founds_group, p.spec) == ("reuse", False, SPEC)
    with pytest.raises(ValueError, match="no model"):
        decide.plan(_assignment("g9", False, "test-accepted"), None)


def test_accuracy_points_carry_each_datasets_landmarker_level(tmp_path):
    with Workspace(tmp_path) as ws:
        commit(ws, "a", "g1", founds=True, version=None, val=0.9, level=0.7)
        commit(ws, "b", "g1", founds=False, version=1, outcome="reused", val=0.8, level=0.6)
        commit(ws, "c", "g2", founds=True, version=2, spec=OTHER, val=0.5, level=0.3)
        members, searched = ws.accuracy_points("g1", SPEC.to_dict())
    assert [(p.level, p.val) for p in members] == [pytest.approx((0.7, 0.9)), pytest.approx((0.6, 0.8))]
    assert [(p.level, p.val) for p in searched] == [pytest.approx((0.7, 0.9)), pytest.approx((0.3, 0.5))]


def P(level, val, size=None):
    return decide.AccuracyPoint(level, size, val)


def test_prediction_corrects_the_members_accuracy_for_difficulty():
    # searched datasets on the line v = 0.2 + 0.8·m: slope 0.8, no residual
    searched = [P(m, 0.2 + 0.8 * m) for m in (0.3, 0.5, 0.7, 0.9)]
    p = decide.predict_accuracy(0.4, None, [P(0.6, 0.7), P(0.5, 0.62)], searched)
    # anchors 0.7 + 0.8·(0.4 − 0.6) = 0.54 and 0.62 + 0.8·(0.4 − 0.5) = 0.54
    assert p.value == pytest.approx(0.54) and p.slope == pytest.approx(0.8) and p.sigma == pytest.approx(0, abs=1e-9)
    assert (p.members, p.points, p.size_slope) == (2, 4, 0.0)
    # a harder dataset than the members is not expected to reach their accuracy; the old members-only check was
    assert decide.predict_accuracy(0.4, None, [P(0.6, 0.7)], searched[:2]).slope == 0.0  # too few points: no slope
    falling = [P(0.3, 0.9), P(0.5, 0.7), P(0.7, 0.5)]
    assert decide.predict_accuracy(0.4, None, [P(0.6, 0.7)], falling).slope == pytest.approx(0, abs=1e-8)  # b ≥ 0
    assert decide.predict_accuracy(None, None, [P(None, 0.7)], searched).value == pytest.approx(0.7)  # no level
    assert decide.predict_accuracy(0.4, None, [], searched).value is None


def test_prediction_corrects_for_fewer_training_images():
    # a half subsample of a member (the same profile, half the images) is predicted SIZE_SLOPE·ln 2 lower in skill
    import math

    member = P(0.6, 0.9, 2000)
    p = decide.predict_accuracy(0.6, 1000, [member], [])
    assert p.value == pytest.approx(0.9 - decide.SIZE_SLOPE * math.log(2)) and p.size_slope == decide.SIZE_SLOPE
    # the stream's difficulty slope is fitted on the searched datasets' skill less the size effect: datasets whose
    # accuracy differs only through their size give no slope
    searched = [P(m, 0.5 + decide.SIZE_SLOPE * math.log(n), n) for m, n in ((0.3, 300), (0.5, 3000), (0.7, 900))]
    assert decide.predict_accuracy(0.6, 2000, [member], searched).slope == pytest.approx(0.0, abs=1e-9)
    # unknown sizes (records written before they were kept): no size correction
    assert decide.predict_accuracy(0.6, None, [member], []).value == pytest.approx(0.9)


def test_an_escalation_trains_the_best_model_other_than_the_groups():
    from trautoml.models.spec import ModelSpec
    from trautoml.search import Trial

    def trial(spec, resource, val, status="ok"):
        return Trial(spec, resource, 0, val, val, 1.0, status=status)

    third, broken = (ModelSpec("cnn", OTHER.arch, {"lr": lr}) for lr in (0.5, 0.7))
    trials = [trial(SPEC, 3.0, 0.97), trial(OTHER, 1.0, 0.99), trial(OTHER, 3.0, 0.9), trial(third, 3.0, 0.95),
              trial(broken, 3.0, 0.99, "failed")]
    best = decide.best_other(trials, SPEC)
    assert best.spec == third and best.resource == 3.0   # the largest resource first, then the best val
    assert decide.best_other([trial(SPEC, 3.0, 0.97)], SPEC) is None


def test_accuracy_guard_keeps_and_escalates():
    pred = decide.Prediction(value=0.9, sigma=0.0, slope=0.0, members=4, points=4)
    assert pred.to_dict()["size_slope"] == 0.0
    assert not decide.check_reuse(0.1, pred, None).escalate              # off: the paper's plain reuse
    keep = decide.check_reuse(0.885, pred, 0.02)                           # within the floor
    assert not keep.escalate and keep.tolerance == pytest.approx(0.02) and "stands" in keep.explain()
    esc = decide.check_reuse(0.85, pred, 0.02)
    assert esc.escalate and esc.reference == pytest.approx(0.9) and "escalate" in esc.explain()
    # the prediction's own uncertainty widens it: a one-sided t prediction interval on the fit's 4 degrees of
    # freedom, σ scaled by the spread of the anchors' and the slope's errors
    fitted = decide.Prediction(value=0.9, sigma=0.05, slope=0.5, members=2, points=6, spread=1.2, df=4)
    assert decide.check_reuse(0.85, fitted, 0.02).tolerance == pytest.approx(2.7764451 * 0.05 * 1.2)
    assert not decide.check_reuse(0.75, fitted, 0.02).escalate and decide.check_reuse(0.73, fitted, 0.02).escalate
    assert not decide.check_reuse(0.1, decide.Prediction(None, None, 0.0, 0, 0), 0.02).escalate  # nothing to compare
    # too early in the stream to know the prediction's error: the guard does not judge, and says so
    early = decide.check_reuse(0.1, decide.Prediction(0.9, None, 0.0, 1, 2), 0.02)
    assert early.waiting and not early.escalate and "fewer than 4 searched datasets" in early.explain()
    assert decide.check_reuse(0.85, pred, 0.02).to_dict()["prediction"]["value"] == 0.9
    p = decide.escalation(decide.plan(_assignment("g1", False, "test-accepted"), SPEC))
    assert (p.action, p.founds_group, p.warm_start, p.group) == ("search", False, (SPEC,), "g1")


def test_a_decision_recorded_with_an_extra_dict_is_read_into_its_fields():
    """Workspaces written before the Decision had typed fields keep the details in ``extra``."""
    from trautoml.decision import Decision

    d = stored_decision("old", "g1").to_dict()
    for key in ("trials", "cached_trials", "founded", "escalated", "search", "uri"):
        d.pop(key)
    d["extra"] = {"trials": 7, "cached_trials": 3, "founded": True, "escalated": {"kept": "reused"},
                  "search": {"backend": "random"}, "uri": "builtin:digits", "something_else": 1}
    back = Decision.from_dict(d)
    assert (back.trials, back.cached_trials, back.founded, back.uri) == (7, 3, True, "builtin:digits")
    assert back.escalated == {"kept": "reused"} and back.search == {"backend": "random"}
    assert Decision.from_dict(back.to_dict()) == back


def test_prediction_works_in_skill_above_chance():
    # a member with 10 classes reached 0.82 (skill 0.8); the new dataset, 5 of its classes, is predicted the same
    # skill: 0.2 + 0.8·0.8 = 0.84, not 0.82 (and its landmarkers' higher accuracy is chance, not ease)
    member = decide.AccuracyPoint(0.46, 1000, 0.82, 10)          # landmarker skill 0.4
    p = decide.predict_accuracy(0.52, 1000, [member], [], classes=5)   # landmarker skill 0.4
    assert p.value == pytest.approx(0.84)
    assert decide.skill(0.84, 5) == pytest.approx(0.8) and decide.skill(0.7, None) == 0.7
    # never past 1: an easier dataset than a member at 0.99, with a steep slope
    steep = [decide.AccuracyPoint(m, None, 0.5 + m, 10) for m in (0.1, 0.2, 0.3, 0.4)]
    assert decide.predict_accuracy(0.9, None, [decide.AccuracyPoint(0.4, None, 0.99, 10)], steep,
                                   classes=10).value == 1.0
    # nor below chance: a member at chance, and a half-size dataset
    assert decide.predict_accuracy(0.1, 500, [decide.AccuracyPoint(0.1, 1000, 0.1, 10)], [],
                                   classes=10).value == pytest.approx(0.1)


def test_one_training_rule_for_a_searched_and_a_reused_model():
    # the preset's final epochs, whatever the model's search chose and whatever the dataset's size
    assert decide.training_epochs(3.0, 1.0, 2.0) == 3.0
    # else the epochs the model's search chose (a reuse: its founder's final training), else the search's budget
    assert decide.training_epochs(None, 1.0, 2.0) == 1.0 and decide.training_epochs(None, None, 2.0) == 2.0
