"""The transfer controller (issue 6): advantage normalisation, transfer, mixing, PQT, merged spaces, persistence."""
import json
import math
import random

import numpy as np
import pytest
import torch

from search_backends import get_backend
from search_backends.base import SearchBudget, SearchTask, Trial
from search_backends.transfer import Learner, TransferController, load_learner, save_learner
from search_backends.transfer.agent import action_key
from search_backends.transfer.persistence import clone_learner, state_paths
from search_backends.transfer.reinforce import RewardStats, TopK, mixed_log_probs, uniform_mix
from search_backends.transfer.spaces import START, CNNSpace, ChainSpace, MLPSpace, model_space
from search_backends.transfer.toys import DOUBLE_XOR, double_xor_reward, main as toys_main
from trautoml.data.dataset import Dataset
from trautoml.models.cnn import MAX_SAMPLE_MACS, cnn_macs, validate_cnn_arch
from trautoml.models.mlp import validate_mlp_arch

AGENTS = ("lstm", "transformer")
CHAIN = ChainSpace("chain", [(f"c{i}", (0, 1, 2)) for i in range(4)])


def chain_reward(actions) -> float:
    return sum(a == 2 for a in actions) / 4


def state(learner):
    return {k: v.detach().clone() for k, v in learner.agent.state_dict().items()}


# ------------------------------------------------------------------------------------- advantage normalisation

def test_reward_stats_follow_the_paper_recursion_bias_corrected():
    st = RewardStats(decay=0.01)
    for r in (0.5, 0.7, 0.6):
        st.update(r)
    m = v = 0.0
    for t, r in enumerate((0.5, 0.7, 0.6), 1):
        m = 0.99 * m + 0.01 * r
        b = m / (1 - 0.99 ** t)
        v = 0.99 * v + 0.01 * (r - b) ** 2
    assert st.mean == pytest.approx(b) and st.var == pytest.approx(v / (1 - 0.99 ** 3))


def test_task_normalised_advantage_makes_100x_reward_scales_update_equally():
    """Same walks, rewards 100x apart: the two tasks get identical advantages and identical updates."""
    learners = [Learner("lstm", seed=3), Learner("lstm", seed=3)]
    for L in learners:
        L.prepare(CHAIN, "task")
    moved = 0
    for _ in range(15):
        eps = [L.propose("chain", "task") for L in learners]
        assert eps[0].actions == eps[1].actions
        r = 0.1 + chain_reward(eps[0].result)
        small, big = learners[0].update(eps[0], r), learners[1].update(eps[1], 100 * r)
        assert big["advantage"] == pytest.approx(small["advantage"], rel=1e-6, abs=1e-9)
        assert big["grad_norm"] == pytest.approx(small["grad_norm"], rel=1e-5, abs=1e-9)
        moved += abs(small["advantage"]) > 0.1
    assert moved >= 5
    for k, v in state(learners[0]).items():
        torch.testing.assert_close(state(learners[1])[k], v)


def test_two_tasks_in_one_controller_get_equal_advantages_despite_scale():
    L = Learner("lstm", seed=0)
    L.prepare(CHAIN, "small")
    L.prepare(CHAIN, "big")
    rng = random.Random(0)
    for _ in range(10):
        r = rng.random()
        a_small = L.update(L.propose("chain", "small"), r)["advantage"]
        a_big = L.update(L.propose("chain", "big"), 100 * r)["advantage"]
        assert a_big == pytest.approx(a_small, rel=1e-6, abs=1e-9)


def test_without_normalisation_the_scale_leaks_into_the_update():
    """Contrast: the plain moving baseline (Borsos et al.) leaves a 100x reward scale in the gradient."""
    learners = [Learner("lstm", seed=1, advantage="baseline"), Learner("lstm", seed=1, advantage="baseline")]
    for L in learners:
        L.prepare(CHAIN, "t")
    rewards = [0.2, 0.9, 0.4]
    for r in rewards:
        e0, e1 = learners[0].propose("chain", "t"), learners[1].propose("chain", "t")
        g0, g1 = learners[0].update(e0, r)["grad_norm"], learners[1].update(e1, 100 * r)["grad_norm"]
    assert g1 > 20 * g0


# ---------------------------------------------------------------------------------------------------- transfer

@pytest.mark.parametrize("agent", AGENTS)
def test_transfer_to_a_new_task_adds_only_a_fresh_task_embedding(agent):
    L = Learner(agent, seed=0)
    space = MLPSpace()
    for task in ("a", "b"):
        L.prepare(space, task)
    for _ in range(3):
        for task in ("a", "b"):
            L.update(L.propose("mlp", task), 0.5)
    before = state(L)
    assert L.prepare(space, "new") is True
    after = state(L)
    added = set(after) - set(before)
    assert len(added) == 1 and set(before) <= set(after)
    (name,) = added
    assert name.startswith("tasks.") and after[name].norm() > 0          # randomly initialised, not zeros
    assert L.agent.tasks.names()[-1] == "new"
    for k, v in before.items():
        torch.testing.assert_close(after[k], v)
    L.update(L.propose("mlp", "new"), 0.7)                               # training continues on the new task
    assert set(state(L)) == set(after)


def test_transfer_to_a_new_space_adds_embeddings_for_unseen_states_and_actions_only():
    L = Learner("transformer", seed=0)
    L.prepare(MLPSpace(), "a")
    L.update(L.propose("mlp", "a"), 0.5)
    before = L.agent.vocab()
    assert L.prepare(CNNSpace(), "a") is True
    after = L.agent.vocab()
    new_states = set(after["states"]) - set(before["states"])
    assert new_states == set(CNNSpace().state_actions()) - set(MLPSpace().state_actions())
    assert {"lr", "activation", "units"} <= set(before["states"]) and "lr" not in new_states
    assert action_key("lr", 0.001) in before["actions"] and action_key(START, "cnn") not in before["actions"]
    assert after["tasks"] == before["tasks"]


def test_first_pair_of_a_fresh_learner_is_not_a_transfer():
    L = Learner("transformer", seed=0)
    assert L.prepare(CHAIN, "a") is False and L.prepare(CHAIN, "b") is False   # nothing learnt yet
    L.update(L.propose("chain", "a"), 1.0)
    assert L.prepare(CHAIN, "c") is True and L.prepare(CHAIN, "c") is False


# ------------------------------------------------------------------------------------------------------ mixing

def test_uniform_mixing_decays_linearly_from_0_1_to_0_over_100_samples():
    assert uniform_mix(0) == pytest.approx(0.1)
    assert uniform_mix(50) == pytest.approx(0.05)
    assert uniform_mix(99) == pytest.approx(0.001)
    assert uniform_mix(100) == 0.0 and uniform_mix(500) == 0.0
    logits = torch.tensor([3.0, 0.0, -2.0, 1.0])
    mixed = mixed_log_probs(logits, 0.1).exp()
    torch.testing.assert_close(mixed, 0.9 * torch.softmax(logits, 0) + 0.1 / 4)
    torch.testing.assert_close(mixed_log_probs(logits, 0.0), torch.log_softmax(logits, 0))


def test_transformer_mixes_only_on_transferred_pairs_and_per_pair_schedule():
    L = Learner("transformer", seed=0)
    L.prepare(CHAIN, "old")
    assert L.gamma("chain", "old") == 0.0
    L.update(L.propose("chain", "old"), 1.0)
    L.prepare(CHAIN, "new")
    gammas = []
    for _ in range(120):
        ep = L.propose("chain", "new")
        gammas.append(ep.gamma)
    assert gammas[0] == pytest.approx(0.1) and gammas[50] == pytest.approx(0.05) and gammas[100:] == [0.0] * 20
    assert all(a > b for a, b in zip(gammas[:100], gammas[1:100]))
    assert L.gamma("chain", "old") == 0.0
    lstm = Learner("lstm", seed=0)
    lstm.prepare(CHAIN, "old")
    lstm.update(lstm.propose("chain", "old"), 1.0)
    lstm.prepare(CHAIN, "new")
    assert lstm.gamma("chain", "new") == 0.0            # Wong et al. transfer without mixing


# --------------------------------------------------------------------------------------------------------- PQT

def test_priority_queue_keeps_the_top_k_distinct_experiences():
    q = TopK(25)
    rng = random.Random(0)
    pushed = {}
    for _ in range(200):
        key = f"seq{rng.randrange(120)}"
        r = rng.random()
        pushed[key] = max(r, pushed.get(key, -1))
        q.push(key, r, [])
    best = sorted(pushed.items(), key=lambda kv: -kv[1])[:25]
    assert [it["key"] for it in q.items] == [k for k, _ in best]
    assert q.rewards() == [r for _, r in best] and len(q) == 25
    assert q.push("bad", -1.0, []) is False and "bad" not in {it["key"] for it in q.items}


def test_transformer_update_fills_its_pair_queue():
    L = Learner("transformer", seed=0)
    L.prepare(CHAIN, "t")
    for _ in range(40):
        ep = L.propose("chain", "t")
        L.update(ep, chain_reward(ep.result))
    q = L.queues["chain|t"]
    assert len(q) == 25 and len({it["key"] for it in q.items}) == 25
    assert q.rewards() == sorted(q.rewards(), reverse=True)


# -------------------------------------------------------------------------------------------- merged spaces

@pytest.mark.parametrize("agent", AGENTS)
def test_merged_space_offers_only_actions_valid_for_the_sampled_space(agent):
    L = Learner(agent, seed=0)
    spaces = {"cnn": CNNSpace(), "mlp": MLPSpace()}
    for sp in spaces.values():
        L.prepare(sp, "t")
    for i in range(12):
        name = ("cnn", "mlp")[i % 2]
        ep = L.propose(name, "t")
        allowed = spaces[name].state_actions()
        assert ep.states[0] == START and ep.offered[0] == (name,)
        for s, offered in zip(ep.states[1:], ep.offered[1:]):
            assert s in allowed and set(offered) <= set(allowed[s])
        if name == "mlp":
            validate_mlp_arch(ep.result.arch)
            assert not {"filters", "conv_layers", "pool"} & set(ep.states)
        else:
            validate_cnn_arch(ep.result.arch)
            assert cnn_macs(ep.result.arch) <= MAX_SAMPLE_MACS
            assert "hidden_layers" not in ep.states
            assert all(512 not in o for s, o in zip(ep.states, ep.offered) if s == "units")
        assert ep.result.space == name
        L.update(ep, 0.5)


def test_model_spaces_walks_are_valid_cheap_and_encode_back():
    rng = random.Random(0)
    for space in (CNNSpace(), MLPSpace()):
        for _ in range(150):
            w = space.walk(lambda d: rng.choice(d.actions))
            spec = w.result
            assert space.encode(spec) == [a for _, a in w.history]
            if space.name == "cnn":
                validate_cnn_arch(spec.arch)
                assert cnn_macs(spec.arch) <= MAX_SAMPLE_MACS
            else:
                validate_mlp_arch(spec.arch)
    lr_offered = set()
    for _ in range(30):
        w = MLPSpace().walk(lambda d: rng.choice(d.actions))
        lr_offered |= {o for (s, _), o in zip(w.history, w.offered) if s == "lr"}
    assert lr_offered == {(0.001, 0.003, 0.01, 0.03, 0.1, 0.3), (0.0001, 0.0003, 0.001, 0.003, 0.01)}
    with pytest.raises(ValueError, match="no search space"):
        model_space("resnet")


def test_lstm_skip_connection_needs_matching_sizes():
    with pytest.raises(ValueError, match="skip connection"):
        Learner("lstm", agent_options={"action_dim": 20, "task_dim": 25})
    L = Learner("lstm")
    assert L.agent.lstm.num_layers == 2 and L.agent.lstm.hidden_size == 50
    assert L.agent.actions.dim == 25 and L.agent.tasks.dim == 25
    T = Learner("transformer")
    assert T.agent.positions.shape[1] == 24 and len(T.agent.encoder) == 2
    assert T.config["lr"] == 5e-4 and T.config["entropy_weight"] == 0.15 and T.config["pqt_weight"] == 5.0


# ------------------------------------------------------------------------------------------------- persistence

@pytest.mark.parametrize("agent", AGENTS)
def test_persistence_round_trip_continues_exactly(agent, tmp_path):
    L = Learner(agent, seed=2)
    L.prepare(CHAIN, "t")
    for _ in range(8):
        ep = L.propose("chain", "t")
        L.update(ep, chain_reward(ep.result))
    pt, js = save_learner(L, tmp_path)
    assert (pt, js) == state_paths(tmp_path, agent)
    torch.load(pt, weights_only=True)                       # plain containers only
    stats = json.loads(js.read_text())["stats"]["chain|t"]
    assert stats["count"] == 8 and "mean" in stats and "std" in stats
    R = load_learner(tmp_path, agent)
    for k, v in state(L).items():
        torch.testing.assert_close(state(R)[k], v)
    assert R.updates == 8 and R.stats["chain|t"].to_dict() == L.stats["chain|t"].to_dict()
    R.prepare(CHAIN, "t")
    for _ in range(5):                                      # same samples, same updates as the original
        a, b = L.propose("chain", "t"), R.propose("chain", "t")
        assert a.actions == b.actions
        L.update(a, chain_reward(a.result))
        R.update(b, chain_reward(b.result))
    for k, v in state(L).items():
        torch.testing.assert_close(state(R)[k], v)
    c = clone_learner(L)
    c.update(c.propose("chain", "t"), 1.0)
    assert c.updates == L.updates + 1 and L.updates == 13   # the clone is independent


def test_load_refuses_mismatched_files(tmp_path):
    L = Learner("lstm")
    L.prepare(CHAIN, "t")
    save_learner(L, tmp_path)
    L.update(L.propose("chain", "t"), 1.0)
    pt, js = state_paths(tmp_path, "lstm")
    meta = json.loads(js.read_text())
    save_learner(L, tmp_path)
    js.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="disagree"):
        load_learner(tmp_path, "lstm")
    assert load_learner(tmp_path / "empty", "lstm") is None


# ----------------------------------------------------------------------------------------------------- backend

def _dataset(name="d"):
    rng = np.random.default_rng(0)
    x = rng.random((12, 1, 8, 8), dtype=np.float32)
    y = np.arange(12) % 2
    return Dataset(name, x, y, x, y, x, y, 2)


class FakeTrials:
    """Scores specs without training: adam, relu and wider layers are better."""

    def __init__(self):
        self.calls = []

    def __call__(self, requests):
        self.calls.append(len(requests))
        out = []
        for q in requests:
            s = q.spec
            acc = 0.4 + 0.2 * (s.train["optimizer"] == "adam") + 0.1 * (s.arch["activation"] == "relu") \
                + 0.001 * sum(s.arch.get("hidden", []))
            out.append(Trial(s, q.resource, q.seed, acc, acc, 0.0))
        return out


@pytest.mark.parametrize("agent", AGENTS)
def test_backend_searches_saves_after_every_update_and_transfers_after_restart(agent, tmp_path):
    assert isinstance(get_backend("transfer", agent=agent, space="mlp"), TransferController)
    run = FakeTrials()
    budget = SearchBudget(max_trials=6, max_epochs=1.0)
    b = TransferController(agent=agent, space="mlp", batch_size=3)
    res = b.search(SearchTask(_dataset(), budget, run, task_id="g1", state_dir=tmp_path))
    assert len(res.trials) <= 6 and all(n <= 3 for n in run.calls) and res.best.space == "mlp"
    assert res.best_val_accuracy == max(t.val_accuracy for t in res.trials)
    assert res.info["transfer"] is False and res.info["updates"] == res.info["samples"]
    assert sorted(b.artifact_paths()) == sorted(state_paths(tmp_path, agent))
    saved = load_learner(tmp_path, agent)
    assert saved.updates == res.info["updates"] and saved.history[-1]["task"] == "g1"
    # a new process: a fresh backend object on the same folder continues, serving a new group by transfer
    b2 = TransferController(agent=agent, space="mlp")
    res2 = b2.search(SearchTask(_dataset("e"), budget, FakeTrials(), task_id="g2", state_dir=tmp_path))
    assert res2.info["transfer"] is True and res2.info["updates_before"] == res.info["updates"]
    assert res2.info["tasks_known"] == ["g1", "g2"]
    assert load_learner(tmp_path, agent).updates == res2.info["updates"]


def test_backend_warm_start_and_repeats_cost_no_trials(tmp_path):
    warm = MLPSpace().walk(lambda d: d.actions[0]).result
    run = FakeTrials()
    b = TransferController(agent="transformer", space="mlp", samples_per_trial=3)
    res = b.search(SearchTask(_dataset(), SearchBudget(max_trials=4), run, task_id="g", warm_start=[warm],
                              state_dir=tmp_path))
    assert res.trials[0].spec == warm
    assert len({t.spec for t in res.trials}) == len(res.trials) <= 4
    assert res.info["samples"] <= 12
    learner = load_learner(tmp_path, "transformer")
    warm_key = json.dumps(["mlp", ["mlp", *MLPSpace().encode(warm)]])     # start action, then the space's
    assert warm_key in {it["key"] for it in learner.queues["mlp|g"].items}


def test_backend_without_state_folder_keeps_learning_in_memory():
    b = TransferController(agent="lstm", space="mlp")
    r1 = b.search(SearchTask(_dataset(), SearchBudget(max_trials=3), FakeTrials(), task_id="a"))
    r2 = b.search(SearchTask(_dataset(), SearchBudget(max_trials=3), FakeTrials(), task_id="b"))
    assert r2.info["transfer"] is True and r2.info["updates_before"] == r1.info["updates"]
    assert b.artifact_paths() == []


def test_backend_rejects_unknown_options():
    with pytest.raises(ValueError, match="agent"):
        TransferController(agent="gru")
    with pytest.raises(ValueError, match="pqt_wieght"):
        TransferController(agent="transformer", pqt_wieght=1)


# -------------------------------------------------------------------------------------------------------- toys

def test_double_xor_reward():
    assert double_xor_reward((1, 0, 1, 0, 0, 0, 0)) == 1.0
    assert double_xor_reward((1, 0, 1, 0, 1, 0, 0)) == 0.0
    assert sum(double_xor_reward(a) for a in np.ndindex(*(2,) * 7)) == 32
    assert [s for s, _ in DOUBLE_XOR.states] == [f"s{i}" for i in range(1, 8)]


def test_toys_cli_prints_json_with_the_median(capsys):
    toys_main(["double-xor", "--agent", "random", "--seeds", "2", "--budget", "100", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["median_samples_to_threshold"] is None and out["reached"] == 0    # uniform policy: 0.25
    toys_main(["multitask", "--agent", "lstm", "--seeds", "1", "--pretrain", "30", "--budget", "20",
               "--threshold", "0.5", "--json"])
    out = json.loads(capsys.readouterr().out)
    for method in ("transfer", "scratch", "random"):
        assert out[method]["runs"] == 2 and len(out[method]["samples_to_threshold"]) == 2
    assert out["median_samples_to_threshold"] == out["transfer"]["median_samples_to_threshold"]
    assert math.isfinite(out["random"]["median_samples_to_threshold"])
