"""A learner: one agent, its optimiser and the per-(space, task) statistics, proposing walks and learning from them.

Tasks and spaces are named by the caller. A (space, task) pair seen for the first time by a learner that has
already been updated is a *transfer*: every parameter is kept, the embeddings the pair needs and the learner has
never seen (a new task's embedding; for a new space, its unseen states and actions) are added with fresh random
values, and training continues. The Transformer agent then samples from the policy mixed with the uniform
distribution, the mixing coefficient decaying over the pair's first 100 samples (Borsos et al. §3); the LSTM
controller transfers as Wong et al. do, without mixing.

Training rules per agent (defaults in `AGENT_DEFAULTS`, all overridable):

- ``lstm`` (Wong et al.): REINFORCE with the task-normalised advantage, Adam. The paper's learning rate (1e-4)
  went with thousands of trials per task; trautoml's searches have tens, so our default is higher
  (``LSTM_LR`` = 1e-3). Measured on the toys (5 seeds): 3e-3 and 1e-2 converge faster on double XOR (medians
  152 and 84 samples vs 267) but collapse the policy during multitask pretraining to one sequence for every
  task, after which transfer cannot explore and does worse than training from scratch; 1e-3 keeps both usable.
- ``transformer`` (Borsos et al.): REINFORCE with a moving baseline per pair, entropy 0.15, priority-queue training
  (top 25 per pair, weight 5), Adam 5e-4.

One call of `update` is one gradient step for one finished walk, as in both papers ("gradient updates after
every child completes"). Multitask training draws a pair per walk (`train_multitask`).
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch

from trautoml.models.train import single_thread

from .agent import Agent, Episode
from .lstm_agent import LSTMAgent
from .reinforce import (BASELINE_DECAY, ENTROPY_WEIGHT, MIX_SAMPLES, MIX_START, PQT_TOP_K, PQT_WEIGHT,
                        WONG_DECAY, RewardStats, TopK, entropy, mixed_log_probs, uniform_mix)
from .spaces import MergedSpace, SearchSpace
from .transformer_agent import TransformerAgent

AGENTS: dict[str, type[Agent]] = {"lstm": LSTMAgent, "transformer": TransformerAgent}

LSTM_LR = 1e-3
AGENT_DEFAULTS: dict[str, dict] = {
    "lstm": {"lr": LSTM_LR, "advantage": "normalized", "decay": WONG_DECAY, "entropy_weight": 0.0,
             "pqt_weight": 0.0, "pqt_top_k": PQT_TOP_K, "mix_start": 0.0, "mix_samples": MIX_SAMPLES},
    "transformer": {"lr": 5e-4, "advantage": "baseline", "decay": BASELINE_DECAY,
                    "entropy_weight": ENTROPY_WEIGHT, "pqt_weight": PQT_WEIGHT, "pqt_top_k": PQT_TOP_K,
                    "mix_start": MIX_START, "mix_samples": MIX_SAMPLES},
}


def pair_key(space: str, task: str) -> str:
    """The key of the (``space``, ``task``) pair in a learner's statistics and queues: ``"space|task"``."""
    return f"{space}|{task}"


class Learner:
    """A search policy that learns: an agent of kind ``agent`` (``lstm`` or ``transformer``, built with
    ``agent_options``), its Adam optimiser and the per-(space, task) statistics (module docstring). ``train_options``
    override the kind's `AGENT_DEFAULTS`; an unknown one raises ValueError."""

    def __init__(self, agent: str = "transformer", seed: int = 0, agent_options: dict | None = None,
                 **train_options):
        if agent not in AGENTS:
            raise ValueError(f"unknown agent {agent!r}; expected one of {', '.join(AGENTS)}")
        unknown = set(train_options) - set(AGENT_DEFAULTS[agent])
        if unknown:
            raise ValueError(f"unknown option(s) for the {agent} learner: {', '.join(sorted(unknown))}")
        if train_options.get("advantage", "baseline") not in ("baseline", "normalized"):
            raise ValueError("advantage must be 'baseline' or 'normalized'")
        self.kind = agent
        self.seed = int(seed)
        self.agent_options = dict(agent_options or {})
        self.config = {**AGENT_DEFAULTS[agent], **train_options}
        self.agent: Agent = AGENTS[agent](seed=self.seed, **self.agent_options)
        self.spaces = MergedSpace([])
        self.stats: dict[str, RewardStats] = {}
        self.queues: dict[str, TopK] = {}
        self.samples: dict[str, int] = {}
        self.transferred: set[str] = set()
        self.updates = 0
        #: One summary per search served (the backend appends to it).
        self.history: list[dict] = []
        self.rng = random.Random(self.seed)
        self._opt: torch.optim.Optimizer | None = None
        self._opt_names: list[str] = []

    # -- tasks and spaces ------------------------------------------------------------------------------------
    def prepare(self, space: SearchSpace, task: str) -> bool:
        """Make the learner ready for ``(space, task)``; True when this starts a transfer to a new pair."""
        self.spaces.add(space)
        self.agent.register_space(self.spaces.state_actions(space.name))
        self.agent.register_task(task)
        key = pair_key(space.name, task)
        if key in self.stats:
            return False
        self.stats[key] = RewardStats(decay=float(self.config["decay"]))
        self.queues[key] = TopK(int(self.config["pqt_top_k"]))
        self.samples[key] = 0
        if self.updates > 0:
            self.transferred.add(key)
        return key in self.transferred

    def gamma(self, space: str, task: str) -> float:
        """The uniform-mixing coefficient for the pair's next sample (0 unless the pair started by transfer)."""
        key = pair_key(space, task)
        if key not in self.transferred:
            return 0.0
        return uniform_mix(self.samples[key], float(self.config["mix_start"]), int(self.config["mix_samples"]))

    def propose(self, space: str, task: str) -> Episode:
        """Sample one walk for a prepared pair."""
        key = pair_key(space, task)
        if key not in self.stats or space not in self.spaces.spaces:
            raise KeyError(f"call prepare() for space {space!r} and task {task!r} first (a loaded learner "
                           "knows its statistics but not the space objects)")
        with single_thread():
            ep = self.agent.sample(self.spaces.walker(space), space, task, self.gamma(space, task), self.rng)
        self.samples[key] += 1
        return ep

    # -- learning --------------------------------------------------------------------------------------------
    def optimizer(self) -> torch.optim.Optimizer:
        """Adam over every parameter; rebuilt (moments kept) when embeddings were added since the last step."""
        named = sorted(self.agent.named_parameters())
        names = [n for n, _ in named]
        if self._opt is None or names != self._opt_names:
            old = self._opt
            opt = torch.optim.Adam([p for _, p in named], lr=float(self.config["lr"]), foreach=True)
            if old is not None:
                for _, p in named:
                    if p in old.state:
                        opt.state[p] = old.state[p]
            self._opt, self._opt_names = opt, names
        return self._opt

    def optimizer_state(self) -> dict[str, dict]:
        """Adam's per-parameter state, keyed by parameter name (empty before the first update)."""
        if self._opt is None:
            return {}
        names = {id(p): n for n, p in self.agent.named_parameters()}
        return {names[id(p)]: dict(s) for p, s in self._opt.state.items() if id(p) in names}

    def load_optimizer_state(self, state: dict[str, dict]) -> None:
        """Restore Adam's per-parameter state saved by `optimizer_state` (by parameter name; an empty state is a
        no-op)."""
        if not state:
            return
        opt = self.optimizer()
        for name, p in self.agent.named_parameters():
            if name in state:
                opt.state[p] = state[name]

    def advantage(self, ep: Episode, reward: float) -> float:
        """The advantage of ``reward`` for the episode's pair, by the configured rule (``normalized``: Wong et al.,
        ``baseline``: Borsos et al.); updates the pair's reward statistics."""
        st = self.stats[pair_key(ep.space, ep.task)]
        if self.config["advantage"] == "normalized":
            return st.normalized_advantage(reward)
        return st.baseline_advantage(reward)

    def update(self, ep: Episode, reward: float) -> dict:
        """One gradient step on a finished walk and its reward; returns what it did."""
        with single_thread():
            return self._update(ep, reward)

    def _update(self, ep: Episode, reward: float) -> dict:
        key = pair_key(ep.space, ep.task)
        adv = self.advantage(ep, float(reward))
        episodes = [ep]
        if self.config["pqt_weight"] > 0:
            self.queues[key].push(ep.key(), float(reward), ep.steps_json())
            best = self.queues[key].sample(self.rng)
            assert best is not None  # the queue holds at least the experience just pushed
            episodes.append(Episode.from_steps(ep.space, ep.task, best["steps"]))
        opt = self.optimizer()
        logits = self.agent.episode_logits(episodes)
        logp = torch.stack([mixed_log_probs(lg, ep.gamma)[i] for lg, i in zip(logits[0], ep.chosen)]).sum()
        loss = -adv * logp
        if self.config["entropy_weight"] > 0:
            loss = loss - self.config["entropy_weight"] * torch.stack([entropy(lg) for lg in logits[0]]).mean()
        if len(episodes) > 1:
            pqt = torch.stack([torch.log_softmax(lg, -1)[i] for lg, i in zip(logits[1], episodes[1].chosen)]).sum()
            loss = loss - self.config["pqt_weight"] * pqt
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.agent.parameters() if p.grad is not None]
        grad_norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
        opt.step()
        self.updates += 1
        return {"advantage": adv, "loss": float(loss.detach()), "grad_norm": grad_norm, "reward": float(reward)}


def train_multitask(learner: Learner, pairs: Sequence[tuple[SearchSpace, str]],
                    reward: Callable[[Episode], float], samples: int) -> list[tuple[str, float]]:
    """Multitask training (Wong et al. §2.2): every walk draws its (space, task) pair uniformly, then updates.

    ``reward(episode)`` scores a finished walk (``episode.space``, ``episode.task``, ``episode.result``).
    Returns the (pair key, reward) of every walk, in order.
    """
    for space, task in pairs:
        learner.prepare(space, task)
    seen = []
    for _ in range(samples):
        space, task = learner.rng.choice(list(pairs))
        ep = learner.propose(space.name, task)
        r = float(reward(ep))
        learner.update(ep, r)
        seen.append((pair_key(space.name, task), r))
    return seen
