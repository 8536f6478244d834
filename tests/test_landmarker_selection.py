"""Choosing the landmarkers on reference data (landmarkers.selection, landmarkers.reference) and the versioned
landmarker set a workspace keeps."""
from __future__ import annotations

import json

import numpy as np
import pytest

import landmarkers
from fakes import SPEC, stored_decision
from landmarkers import landmarker_set, reference, selection
from trautoml.grouping.markov import MarkovBFGrouper
from trautoml.data import streams  # noqa: F401 (registers the builtin streams)
from trautoml.registry import STREAMS
from trautoml.data.sources import PHOTOS
from trautoml.workspace import Workspace, WorkspaceError


def test_the_fisher_ratio_matches_a_hand_computation():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([5.0, 6.0, 7.0])
    # grand mean 4; between: 3·(2−4)² + 3·(6−4)² = 24 over 1 df; within: (1+0+1)·2 = 4 over 4 df → F = 24
    assert selection.fisher_ratio([a, b]) == pytest.approx(24.0)
    assert selection.fisher_ratio([np.ones(3), np.ones(3) * 2]) == float("inf")


def test_selection_keeps_learners_and_ranks_by_separation_per_second():
    scores = {"skill": [0.5, 0.4, 0.5, 0.01, 0.3],
              "fisher": [30.0, 40.0, 10.0, 500.0, 20.0],
              "seconds": [0.1, 0.1, 0.1, 0.1, 0.5]}
    # 3 separates best but never learns; 4 separates well but is slow (40 per second, below 2's 100)
    assert selection.select(scores) == [1, 0, 2, 4]
    assert selection.select(scores, keep=2) == [1, 0]


def test_the_reference_data_is_not_in_any_benchmark_stream():
    used = {n.split(".")[0] for n in PHOTOS}
    assert not used & (set(reference._TEXTURES) | set(reference._SCENES) | set(reference._DOCUMENTS))
    for name in ("paper-small", "families", "ci", "demo"):
        uris = [getattr(item, "uri", item) for item in STREAMS.get(name)()]
        assert not any("ref-" in u for u in uris), name
    fams = reference.reference_families()
    assert set(fams) == set(reference.REFERENCE_URIS)
    for members in fams.values():
        full, half = members
        assert full.num_classes == half.num_classes and len(half.y_train) < len(full.y_train)


def test_the_shipped_set_is_versioned_ranked_and_long_enough_for_the_paper_preset():
    version, specs = landmarker_set.load_selected()
    assert version == selection.SET_VERSION == landmarkers.LANDMARKER_SET
    assert len(specs) >= 6 and landmarkers.landmarker_specs(4) == specs[:4]
    record = json.loads(landmarker_set.SELECTED_PATH.read_text())
    assert all(record["scores"]["skill"][c] >= selection.MIN_SKILL for c in record["candidate_index"])
    with pytest.raises(ValueError, match=f"holds {len(specs)} landmarkers, B = {len(specs) + 1} asked"):
        landmarkers.landmarker_specs(len(specs) + 1)


def test_a_corrupted_landmarker_set_is_refused_with_its_path(tmp_path):
    bad = tmp_path / "selected.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="corrupted landmarker set .*selected.json"):
        landmarker_set.load_selected(bad)
    assert landmarker_set.load_selected(tmp_path / "absent.json") is None


def test_a_workspace_refuses_a_profile_made_with_other_landmarkers(tmp_path):
    from trautoml import TrAutoML

    ml = TrAutoML(workspace=tmp_path / "ws", preset="tiny", tracking=False)
    assert ml.settings()["landmarker_set"] == landmarkers.LANDMARKER_SET
    old = {**ml.settings(), "landmarker_set": "monte-carlo-7"}
    with Workspace(tmp_path / "ws") as ws:
        ws.commit_ingest(grouper_name="mh", grouper_state=MarkovBFGrouper().to_dict(), expected_version=None,
                         settings=old, decision=stored_decision("a", "g1"), name="a", uri="npz:a.npz", family="f",
                         profile={"mean": [0.1, 0.2, 0.3]}, assignment={"group": "g1"}, founds_group=True,
                         group_spec=SPEC.to_dict())
    with pytest.raises(WorkspaceError, match="landmarker_set=.monte-carlo-7."):
        ml.ingest("builtin:digits")
    with Workspace(tmp_path / "ws") as ws:
        assert ws.count_datasets() == 1  # refused before anything was written
