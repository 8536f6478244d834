"""The policy-gradient pieces both agents train with: reward statistics, advantages, priority queues, mixing.

Wong et al. 2018 (§2.2): REINFORCE with *task-specific advantage normalisation*,
``A' = (R - b_t) / sigma_t`` with ``b_t = (1 - a) b_{t-1} + a R`` and ``sigma^2_t = (1 - a) sigma^2_{t-1} +
a (R - b_t)^2``, ``a = 0.01``, ``t`` indexing the task's trials. The recursion needs starting values the paper
does not give; we use the bias-corrected moving averages (as Adam does: divide by ``1 - (1 - a)^t``), i.e.
starting values taken from the data. This keeps the statistics meaningful after the few trials a search has
(a zero start would put the baseline at 1% of the first reward) and makes the advantage invariant to the scale of
a task's rewards: multiplying every reward of a task by c multiplies b and sigma by c and leaves A' unchanged.
As in the paper's equations, b_t and sigma_t include the current reward.

Borsos et al. 2019 (Appendix A): REINFORCE with a moving-average baseline per (search space, task) pair (the
baseline *before* the current reward, bias-corrected likewise; the paper gives no decay, we use
``BASELINE_DECAY``), entropy regularisation (0.15) and priority-queue training (Abolafia et al. 2018: the top
K = 25 distinct experiences per pair, the log-likelihood of one drawn uniformly from them, weight 5). On transfer,
sampling mixes the policy with the uniform distribution, ``pi' = (1 - g) pi + g / k``, with g decayed linearly
from 0.1 to 0 over the first 100 samples (`uniform_mix`).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

WONG_DECAY = 0.01
BASELINE_DECAY = 0.05
PQT_TOP_K = 25
PQT_WEIGHT = 5.0
ENTROPY_WEIGHT = 0.15
MIX_START = 0.1
MIX_SAMPLES = 100
#: A spread below this fraction of the mean reward is rounding noise (rewards that never varied): advantage 0.
#: Relative, so that the advantage stays invariant to the scale of a task's rewards.
RELATIVE_SIGMA_FLOOR = 1e-9


@dataclass
class RewardStats:
    """Bias-corrected exponential moving mean and variance of one task's rewards."""

    decay: float = WONG_DECAY
    count: int = 0
    m: float = 0.0   # raw EMA of rewards
    v: float = 0.0   # raw EMA of squared deviations

    def _correction(self) -> float:
        return 1.0 - (1.0 - self.decay) ** self.count

    @property
    def mean(self) -> float:
        """The bias-corrected moving mean of the rewards so far (0 before the first)."""
        return self.m / self._correction() if self.count else 0.0

    @property
    def var(self) -> float:
        """The bias-corrected moving variance of the rewards so far (0 before the first)."""
        return self.v / self._correction() if self.count else 0.0

    @property
    def std(self) -> float:
        """The square root of `var`."""
        return math.sqrt(max(self.var, 0.0))

    def update(self, reward: float) -> None:
        """Fold ``reward`` into the moving mean and variance (weight ``decay``)."""
        a = self.decay
        self.count += 1
        self.m = (1 - a) * self.m + a * reward
        self.v = (1 - a) * self.v + a * (reward - self.mean) ** 2

    def normalized_advantage(self, reward: float) -> float:
        """Wong et al.: update with the reward, then ``(R - b) / sigma`` (0 while sigma is 0)."""
        self.update(reward)
        std = self.std
        if std == 0.0 or std <= RELATIVE_SIGMA_FLOOR * abs(self.mean):
            return 0.0
        return (reward - self.mean) / std

    def baseline_advantage(self, reward: float) -> float:
        """Borsos et al.: ``R - b`` with the baseline before this reward (0 for the first), then update."""
        adv = reward - self.mean if self.count else 0.0
        self.update(reward)
        return adv

    def to_dict(self) -> dict:
        """Plain JSON: the state (``decay``, ``count``, ``m``, ``v``), plus ``mean`` and ``std`` for the record."""
        return {"decay": self.decay, "count": self.count, "m": self.m, "v": self.v,
                "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> RewardStats:
        """The inverse of `to_dict` (``mean`` and ``std`` are recomputed)."""
        return cls(decay=float(d["decay"]), count=int(d["count"]), m=float(d["m"]), v=float(d["v"]))


class TopK:
    """The K best distinct experiences (an action sequence and its offered action sets) by reward."""

    def __init__(self, k: int = PQT_TOP_K, items: list | None = None):
        self.k = int(k)
        self.items: list[dict] = list(items or [])   # {"key": str, "reward": float, "steps": [...]}, best first

    def push(self, key: str, reward: float, steps: list) -> bool:
        """Insert unless present (a better reward for a present key replaces it); keep the top K. True if kept."""
        for item in self.items:
            if item["key"] == key:
                if reward <= item["reward"]:
                    return True
                self.items.remove(item)
                break
        self.items.append({"key": key, "reward": float(reward), "steps": steps})
        self.items.sort(key=lambda it: -it["reward"])
        kept = any(it["key"] == key for it in self.items[:self.k])
        del self.items[self.k:]
        return kept

    def sample(self, rng: random.Random) -> dict | None:
        """One kept experience drawn uniformly with ``rng``, or None when there is none."""
        return rng.choice(self.items) if self.items else None

    def __len__(self) -> int:
        return len(self.items)

    def rewards(self) -> list[float]:
        """The kept experiences' rewards, best first."""
        return [it["reward"] for it in self.items]


def uniform_mix(samples_since_transfer: int, start: float = MIX_START, over: int = MIX_SAMPLES) -> float:
    """The mixing coefficient g for the n-th sample (0-based) after transfer: 0.1 linearly down to 0 at 100."""
    if over <= 0:
        return 0.0
    return max(0.0, start * (1.0 - samples_since_transfer / over))


def mixed_log_probs(logits: torch.Tensor, gamma: float) -> torch.Tensor:
    """log of ``(1 - g) softmax(logits) + g / k`` over the last dimension (exactly log_softmax when g = 0)."""
    logp = torch.log_softmax(logits, dim=-1)
    if gamma <= 0:
        return logp
    k = logits.shape[-1]
    return torch.logaddexp(logp + math.log1p(-gamma), torch.full_like(logp, math.log(gamma / k)))


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """The entropy of ``softmax(logits)`` over the last dimension."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)
