"""The three search mechanisms: which backend object each builds, and the errors that name a wrong combination."""
from __future__ import annotations

import pytest

from search_backends.enas import ENAS
from search_backends.hyperband import Hyperband
from search_backends.predefined import PredefinedSearch
from trautoml.mechanisms import make_search_backend, parse_backbone


def test_scratch_builds_the_named_backend_with_the_defaults_it_takes():
    hb = make_search_backend("hyperband", defaults={"eta": 4, "not_a_parameter": 1})
    assert isinstance(hb, Hyperband) and hb.eta == 4
    with pytest.raises(ValueError, match="does not take these options"):
        make_search_backend("hyperband", options={"bogus": 1})
    with pytest.raises(ValueError, match="unknown search backend 'nope'"):
        make_search_backend("nope")


def test_cells_means_enas_in_its_cell_space():
    assert isinstance(make_search_backend("enas", "cells"), ENAS)
    assert make_search_backend("enas", "cells").space == "cells"
    with pytest.raises(ValueError, match="use --backend enas"):
        make_search_backend("hyperband", "cells")
    with pytest.raises(ValueError, match="cell space"):
        make_search_backend("enas", "cells", options={"space": "macro"})


def test_predefined_wraps_the_named_scheduler_around_a_backbone():
    missing = parse_backbone("torchvision:resnet18", weights="/models/r18.pth", cut="layer2")
    assert missing == {"kind": "torchvision", "name": "resnet18", "weights": "/models/r18.pth", "cut": "layer2"}
    with pytest.raises(ValueError, match="r18.pth' does not exist"):
        make_search_backend("random", "predefined", backbone=missing)
    backbone = parse_backbone("torchvision:resnet18", cut="layer2")  # random weights: allowed, nothing downloaded
    search = make_search_backend("hyperband", "predefined", defaults={"eta": 3}, backbone=backbone, freeze=False)
    assert isinstance(search, PredefinedSearch) and search.inner_name == "hyperband" and not search.freeze
    with pytest.raises(ValueError, match="needs a backbone"):
        make_search_backend("random", "predefined")
    with pytest.raises(ValueError, match="random or hyperband"):
        make_search_backend("metaqnn", "predefined", backbone=backbone)
    with pytest.raises(ValueError, match="only used by the predefined mechanism"):
        make_search_backend("random", "scratch", backbone=backbone)


def test_backbone_parsing_errors_name_the_problem():
    assert parse_backbone('{"kind": "file", "path": "m.pt", "spec": {"space": "cnn"}}', cut="3")["cut"] == 3
    with pytest.raises(ValueError, match="expected torchvision:NAME"):
        parse_backbone("resnet18", cut="layer2")
    with pytest.raises(ValueError, match="--cut"):
        parse_backbone("torchvision:resnet18")
    with pytest.raises(ValueError, match="backbone JSON"):
        parse_backbone("{not json", cut="1")
    with pytest.raises(ValueError, match="unknown mechanism 'magic'"):
        make_search_backend("random", "magic")
