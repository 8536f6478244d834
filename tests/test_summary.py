"""What grouping saved (trautoml.summary): the arithmetic on a hand-made stream of decisions."""
from __future__ import annotations

import json

import pytest

from trautoml.decision import Decision
from trautoml.models.spec import ModelSpec
from trautoml.summary import summarize

SPEC = ModelSpec(space="cnn", arch={"layers": []})


def _d(name, group, outcome, search, test, *, val=None, profile=1.0, train=2.0, escalated=None):
    reason = "empty-cluster" if outcome == "searched" and not escalated else "test-accepted"
    return Decision(dataset=name, content_hash="h" + name, group=group, outcome=outcome, reason=reason, spec=SPEC,
                    backend="hyperband", val_accuracy=test if val is None else val, test_accuracy=test,
                    profile_seconds=profile, search_seconds=search, train_seconds=train,
                    escalated=None if escalated is None else {"kept": escalated})


def _stream():
    """g1: searched in 10 s and 20 s, two reuses; g2: searched in 40 s, one reuse, one reuse that the accuracy
    guard escalated (a 30 s search that did not beat the reused model)."""
    return [_d("a", "g1", "searched", 10.0, 0.90), _d("b", "g1", "reused", 0.0, 0.86),
            _d("c", "g1", "searched", 20.0, 0.80), _d("d", "g1", "reused", 0.0, 0.82),
            _d("e", "g2", "searched", 40.0, 0.70), _d("f", "g2", "reused", 0.0, 0.60),
            _d("g", "g2", "reused", 30.0, 0.65, escalated="reused")]


def test_counts_time_and_estimate_on_a_hand_made_stream():
    s = summarize(_stream())
    assert (s.datasets, s.groups, s.searched, s.reused) == (7, 2, 3, 4)
    assert (s.searches, s.escalations, s.escalations_kept_search) == (4, 1, 0)
    assert s.search_seconds == pytest.approx(100.0)  # 10 + 20 + 40 + 30
    assert s.profile_seconds == pytest.approx(7.0) and s.train_seconds == pytest.approx(14.0)
    # g1: measured 10 + 20, two reuses at g1's mean search (15 s); g2: measured 40 + 30, one reuse at 35 s
    g1, g2 = s.per_group
    assert g1.estimated_all_search_seconds == pytest.approx(60.0)
    assert g2.estimated_all_search_seconds == pytest.approx(105.0)
    assert s.estimated_all_search_seconds == pytest.approx(165.0)
    assert s.saved_search_seconds == pytest.approx(65.0)
    assert s.net_saved_seconds == pytest.approx(58.0)  # profiling is the price of grouping


def test_accuracies_side_by_side():
    s = summarize(_stream())
    assert s.searched_test_accuracy == pytest.approx((0.90 + 0.80 + 0.70) / 3)
    assert s.reused_test_accuracy == pytest.approx((0.86 + 0.82 + 0.60 + 0.65) / 4)
    # each reuse against its group's searched mean: g1 0.85, g2 0.70
    gaps = [0.86 - 0.85, 0.82 - 0.85, 0.60 - 0.70, 0.65 - 0.70]
    assert s.reused_minus_group_test_accuracy == pytest.approx(sum(gaps) / 4)
    assert s.per_group[0].searched_test_accuracy == pytest.approx(0.85)
    assert s.per_group[1].reused_test_accuracy == pytest.approx(0.625)


def test_an_escalation_that_kept_the_search_counts_as_searched():
    s = summarize([_d("a", "g1", "searched", 8.0, 0.9), _d("b", "g1", "searched", 12.0, 0.8, escalated="searched")])
    assert (s.searched, s.reused, s.searches, s.escalations, s.escalations_kept_search) == (2, 0, 2, 1, 1)
    assert s.estimated_all_search_seconds == pytest.approx(20.0) and s.saved_search_seconds == pytest.approx(0.0)
    assert "escalated 1 reuse(s)" in s.text()


def test_a_group_without_a_measured_search_is_estimated_at_the_stream_mean():
    # g2's founder searched in an earlier workspace state we do not see here (e.g. a decision list cut short)
    s = summarize([_d("a", "g1", "searched", 10.0, 0.9), _d("b", "g1", "searched", 30.0, 0.9),
                   _d("c", "g2", "reused", 0.0, 0.8)])
    assert s.per_group[1].estimated_all_search_seconds == pytest.approx(20.0)
    assert s.estimated_all_search_seconds == pytest.approx(60.0)
    assert s.reused_minus_group_test_accuracy is None  # no searched member in g2 to compare with


def test_empty_stream_and_serialisation():
    assert summarize([]).datasets == 0 and summarize([]).text() == "no datasets ingested yet"
    s = summarize(_stream())
    d = json.loads(json.dumps(s.to_dict()))
    assert d["datasets"] == 7 and len(d["per_group"]) == 2 and "estimate_method" in d
    text = s.text()
    assert "4 searches run, 4 models reused" in text and "searching all 7 would have cost" in text
    assert "| g1 | 4 | 2 | 2 |" in s.markdown()
