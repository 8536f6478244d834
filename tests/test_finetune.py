"""Reuse by fine-tuning (`trautoml.models.transfer`, `trautoml.decide.fine_tune_epochs`): the group's weights kept
below a new head, adapted to other class counts, channels and image sizes; ``reuse="retrain"`` keeps the paper's."""
from __future__ import annotations

import pytest
import torch

from trautoml import TrAutoML
from trautoml.models.spec import ModelSpec, build_module
from trautoml.models.transfer import AdaptedNet, warm_network

SPEC = ModelSpec("cnn", {"layers": [{"type": "conv", "filters": 8, "kernel": 3, "stride": 1},
                                    {"type": "pool", "op": "max", "size": 2, "stride": 2},
                                    {"type": "fc", "units": 16}],
                         "activation": "relu", "norm": "batch", "dropout": 0.0})


def _trained_state(shape=(1, 8, 8), classes=10) -> dict:
    torch.manual_seed(0)
    net = build_module(SPEC, shape, classes)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))  # weights no fresh build has
    return net.state_dict()


def test_the_groups_weights_are_kept_below_a_new_head_for_another_class_count():
    state = _trained_state()
    warm = warm_network(SPEC, state, (1, 8, 8), (1, 8, 8), 6)
    own = warm.module.state_dict()
    head = [k for k in own if own[k].shape != state[k].shape]
    assert head == ["8.weight", "8.bias"] and own["8.weight"].shape == (6, 16)  # the classifier only
    assert all(torch.equal(own[k], state[k]) for k in own if k not in head)
    assert (warm.loaded, warm.total) == (len(own) - 2, len(own))
    assert warm.module(torch.zeros(2, 1, 8, 8)).shape == (2, 6)


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 12, 12), (4, 10, 10)])
def test_other_channels_and_sizes_go_through_an_input_adapter_and_keep_every_weight(shape):
    state = _trained_state()
    warm = warm_network(SPEC, state, (1, 8, 8), shape, 10)
    assert isinstance(warm.module, AdaptedNet) and warm.loaded == warm.total
    assert all(torch.equal(warm.module.net.state_dict()[k], v) for k, v in state.items())
    x = torch.rand(3, *shape)
    assert warm.module(x).shape == (3, 10)
    if shape == (3, 8, 8):   # colour into a grey network: the channels averaged, nothing to learn
        assert warm.module.adapter.proj is None
        assert torch.allclose(warm.module.adapter(x), x.mean(1, keepdim=True))


def test_channels_without_a_natural_mapping_get_a_learned_projection():
    state = _trained_state((3, 8, 8))
    warm = warm_network(SPEC, state, (3, 8, 8), (4, 8, 8), 10)
    assert warm.module.adapter.proj is not None and warm.module.adapter.proj.in_channels == 4
    assert warm.loaded == warm.total and warm.module(torch.rand(2, 4, 8, 8)).shape == (2, 10)


@pytest.mark.slow
def test_retrain_keeps_the_papers_reuse_and_fine_tuning_costs_its_fraction(tmp_path):
    """The same datasets in one group (the true families given) with ``reuse="retrain"`` and the default: every
    joiner reuses the founder's spec. The retrain starts afresh for the full epochs; the fine-tuning starts from the
    founder's weights for its fraction of them, but a joiner with other classes trains afresh (a new head needs a
    full training: measured on the reference data)."""
    uris = ["builtin:digits?seed=1", "builtin:digits?seed=1&subsample=0.5",
            "builtin:digits?seed=1&classes=0,1,2,3,4,5"]
    out = {}
    for mode in ("retrain", "fine-tune"):
        t = TrAutoML(tmp_path / mode, preset="tiny", tracking=False, quiet=True, executor="serial", reuse=mode,
                     grouper="given", grouper_options={"labels": ["digits"] * 3})
        try:
            out[mode] = [t.ingest(u) for u in uris]
        finally:
            t.close()
        assert [d.outcome for d in out[mode]] == ["searched", "reused", "reused"]
        assert out[mode][1].spec == out[mode][2].spec == out[mode][0].spec
    (_, retrained, _), (_, tuned, subset) = out["retrain"], out["fine-tune"]
    assert retrained.init_from is None and tuned.init_from["dataset"] == "digits·seed1"
    assert tuned.init_from["epochs"] == pytest.approx(0.1 * retrained.final_epochs)
    assert "fine-tuned from the weights digits·seed1 trained" in tuned.explanation
    assert tuned.init_from["zero_shot"] > 0.5        # digits' weights know its half before any training
    assert tuned.train_flops < 0.35 * retrained.train_flops
    # no member has its 6 classes (`Workspace.member_weights` picks only those): trained afresh
    assert subset.init_from is None and "weights trained afresh" in subset.explanation
    assert "fine-tuned" not in subset.explanation
    assert subset.train_flops == pytest.approx(out["retrain"][2].train_flops, rel=1e-6)


def test_a_founder_is_seeded_with_the_models_of_its_nearest_groups():
    from trautoml.warmstart import nearest_group_specs

    groups = [{"id": "g1", "model": {"space": "a"}}, {"id": "g2", "model": {"space": "b"}},
              {"id": "g3", "model": {"space": "c"}}]
    means = [[0.9, 0.9], [0.2, 0.2], [0.5, 0.5], [0.31, 0.3]]
    member_groups = ["g1", "g2", "g3", "g1"]          # g1's nearest member is its second
    point = [0.3, 0.3]
    assert nearest_group_specs(groups, means, member_groups, point, 2) == [{"space": "a"}, {"space": "b"}]
    assert nearest_group_specs(groups, means, member_groups, point, 5) == [{"space": "a"}, {"space": "b"},
                                                                           {"space": "c"}]
    assert nearest_group_specs(groups, means, member_groups, point, 0) == []
    assert nearest_group_specs([], [], [], point, 1) == []


def test_zero_shot_tells_weights_that_know_the_task_from_weights_that_do_not():
    """Weights trained on digits classify a re-draw of digits above chance before any training; on the same images
    with their labels shuffled (a task they do not know, same class count) they sit at chance."""
    import dataclasses

    import numpy as np
    from scipy import stats

    from trautoml.data import load_dataset
    from trautoml.models.train import train_and_evaluate
    from trautoml.models.transfer import ZERO_SHOT_ALPHA, zero_shot

    digits, other = load_dataset("builtin:digits"), load_dataset("builtin:digits?subsample=0.5&seed=1")
    trained = train_and_evaluate(SPEC, digits, 2.0, 0, keep_module=True).module
    knows = zero_shot(trained, other.x_val, other.y_val, other.input_shape)
    assert knows.knows and knows.accuracy > 0.5 and knows.flops > 0
    shuffled = dataclasses.replace(other, y_val=np.random.default_rng(0).permutation(other.y_val))
    blind = zero_shot(trained, shuffled.x_val, shuffled.y_val, shuffled.input_shape)
    assert not blind.knows and blind.accuracy <= blind.bound
    n, p0 = len(other.y_val), np.bincount(other.y_val).max() / len(other.y_val)
    assert knows.bound == pytest.approx(stats.binom.ppf(1 - ZERO_SHOT_ALPHA, n, p0) / n)


def test_image_digests_name_each_image_by_its_content():
    import numpy as np

    from trautoml.models.transfer import image_digests

    x = np.random.default_rng(0).random((5, 1, 4, 4)).astype(np.float32)
    d = image_digests(x)
    assert d.dtype == np.int64 and len(set(d.tolist())) == 5
    assert np.array_equal(image_digests(x[[3, 1]]), d[[3, 1]])      # the same image, the same digest, anywhere


@pytest.mark.slow
def test_weights_that_saw_a_joiners_held_out_images_are_not_fine_tuned(tmp_path):
    """digits' splits are cut by the URI's seed: seed 2's validation and test images are among seed 1's training
    images. A seed-2 joiner reuses the group's model but trains it afresh, and says why."""
    with TrAutoML(tmp_path / "ws", preset="tiny", tracking=False, quiet=True, executor="serial", seed=3,
                  grouper="given", grouper_options={"labels": ["digits", "digits"]}) as t:
        t.ingest("builtin:digits?seed=1")
        joiner = t.ingest("builtin:digits?seed=2")
    assert joiner.outcome == "reused" and joiner.init_from is None
    assert "'s weights were trained on" in joiner.explanation and "validation and test images" in joiner.explanation
