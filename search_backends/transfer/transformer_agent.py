"""The Transformer agent of Borsos et al. 2019 (§3, Figure 2) over merged conditional search spaces.

Every token is the concatenation of an action, a task and a state embedding, each of size 8 (so the model width
is 24). Action embeddings are unique per state and shared by every space with a state of that name; state
embeddings are looked up by name; the actions of the start state are the search-space embeddings. At each
decision, one input token per *candidate* action is appended to the tokens of the actions sampled so far, learned
positional encodings are added, and each of these sequences goes through a single-head, two-layer Transformer
encoder (the encoder of Vaswani et al.: post-norm, feed-forward width 4x, no dropout here). The encoder's output
at the candidate's position goes through a state-specific fully connected layer to one logit; the softmax over the
candidates' logits is the policy. The encoder is shared by all spaces and tasks. It is written out here
(`EncoderLayer`) rather than taken from ``torch.nn.TransformerEncoderLayer``: the same computation, at a
fraction of the per-call overhead, which dominates for sequences this small.

A decision with a single valid action (the start state in a merged walk) is taken without scoring it; its token
still joins the history.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import math

import torch
from torch import nn

from .agent import Agent, Episode, KeyedTable, action_key, normal_init
from .spaces import Decision

#: Longest walk (tokens) the learned positions cover; the CNN space's longest walk has 29.
MAX_LEN = 64


class EncoderLayer(nn.Module):
    """One post-norm Transformer encoder layer with a single attention head (Vaswani et al. 2017)."""

    def __init__(self, width: int, ff: int):
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm1 = nn.LayerNorm(width)
        self.ff1 = nn.Linear(width, ff)
        self.ff2 = nn.Linear(ff, width)
        self.norm2 = nn.LayerNorm(width)
        self.scale = 1.0 / math.sqrt(width)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """The layer's output for ``x`` (rows, length, width); ``pad`` (rows, length), True at padded positions, keeps
        attention off them (None: no padding)."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        att = (q @ k.transpose(1, 2)) * self.scale
        if pad is not None:
            att = att.masked_fill(pad.unsqueeze(1), float("-inf"))
        x = self.norm1(x + self.proj(att.softmax(-1) @ v))
        return self.norm2(x + self.ff2(torch.relu(self.ff1(x))))


@dataclass
class _Ctx:
    task: torch.Tensor
    tokens: list[torch.Tensor] = field(default_factory=list)


class TransformerAgent(Agent):
    """The Transformer agent (module docstring): action, task and state embeddings of size ``dim`` (tokens of width 3 x
    ``dim``), ``layers`` encoder layers with a feed-forward width ``ff_mult`` x the token width; embeddings and
    positions drawn from N(0, ``embed_std``), the per-state output layers from N(0, ``head_std``), with ``seed``."""

    kind = "transformer"

    def __init__(self, seed: int = 0, dim: int = 8, layers: int = 2, ff_mult: int = 4,
                 embed_std: float = 1.0, head_std: float = 0.1):
        super().__init__(seed)
        self.config = {"dim": dim, "layers": layers, "ff_mult": ff_mult,
                       "embed_std": embed_std, "head_std": head_std}
        width = 3 * dim
        emb = normal_init(embed_std)
        self.actions = KeyedTable(dim, emb, self.gen)
        self.tasks = KeyedTable(dim, emb, self.gen)
        self.states = KeyedTable(dim, emb, self.gen)
        self.heads = KeyedTable(width + 1, normal_init(head_std), self.gen)   # per state: weights and bias
        self.positions = nn.Parameter(torch.empty(MAX_LEN, width))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.gen)))
            self.encoder = nn.ModuleList(EncoderLayer(width, ff_mult * width) for _ in range(layers))
        with torch.no_grad():
            self.positions.normal_(0.0, embed_std, generator=self.gen)

    def register_space(self, state_actions: dict[str, tuple]) -> None:
        for state, actions in state_actions.items():
            self.states.add(state)
            self.heads.add(state)
            for a in actions:
                self.actions.add(action_key(state, a))

    def register_task(self, task: str) -> bool:
        return self.tasks.add(task)

    def _tokens(self, states: list[str], actions: list, task: torch.Tensor) -> torch.Tensor:
        a = self.actions.stack([action_key(s, x) for s, x in zip(states, actions)])
        s = self.states.stack(states)
        return torch.cat([a, task.expand(len(states), -1), s], dim=1)

    def _score(self, x: torch.Tensor, lengths: torch.Tensor, states: list[str]) -> torch.Tensor:
        """Logit of each row of ``x`` (rows, L, width): the encoder output at its last real position."""
        L = x.shape[1]
        if L > MAX_LEN:
            raise ValueError(f"a walk of {L} decisions exceeds the agent's {MAX_LEN} learned positions")
        padded = torch.arange(L).unsqueeze(0) >= lengths.unsqueeze(1)
        pad = padded if bool(padded.any()) else None
        h = x + self.positions[:L]
        for layer in self.encoder:
            h = layer(h, pad)
        last = h[torch.arange(len(lengths)), lengths - 1]
        w = self.heads.stack(states)
        return (last * w[:, :-1]).sum(-1) + w[:, -1]

    # -- sampling --------------------------------------------------------------------------------------------
    def start(self, space: str, task: str) -> Any:
        return _Ctx(task=self.tasks.get(task))

    def next_logits(self, ctx: Any, decision: Decision) -> torch.Tensor:
        k, t = len(decision.actions), len(ctx.tokens)
        cand = self._tokens([decision.state] * k, list(decision.actions), ctx.task).unsqueeze(1)
        x = torch.cat([torch.stack(ctx.tokens).expand(k, -1, -1), cand], dim=1) if t else cand
        return self._score(x, torch.full((k,), t + 1), [decision.state] * k)

    def advance(self, ctx: Any, state: str, action: Any) -> None:
        ctx.tokens.append(self._tokens([state], [action], ctx.task)[0])

    # -- training --------------------------------------------------------------------------------------------
    def episode_logits(self, episodes: list[Episode]) -> list[list[torch.Tensor]]:
        """All scored decisions of all episodes in one encoder pass (rows padded to the longest history)."""
        width = self.positions.shape[1]
        bank = [torch.zeros(1, width)]          # row 0: padding
        offset = 1
        rows: list[list[int]] = []
        row_states: list[str] = []
        where: list[tuple[int, int, int]] = []  # (episode, step, number of candidates)
        for e, ep in enumerate(episodes):
            task = self.tasks.get(ep.task)
            bank.append(self._tokens(ep.states, ep.actions, task))
            c0, offset = offset, offset + len(ep.states)
            for t, (state, acts) in enumerate(zip(ep.states, ep.offered)):
                if len(acts) == 1:
                    continue
                bank.append(self._tokens([state] * len(acts), list(acts), task))
                k0, offset = offset, offset + len(acts)
                hist = list(range(c0, c0 + t))
                rows += [hist + [k0 + j] for j in range(len(acts))]
                row_states += [state] * len(acts)
                where.append((e, t, len(acts)))
        out: list[list[torch.Tensor]] = [[torch.zeros(1) for _ in ep.states] for ep in episodes]
        if not rows:
            return out
        lengths = torch.tensor([len(r) for r in rows])
        L = int(lengths.max())
        idx = torch.tensor([r + [0] * (L - len(r)) for r in rows])
        logits = self._score(torch.cat(bank)[idx], lengths, row_states)
        pos = 0
        for e, t, k in where:
            out[e][t] = logits[pos:pos + k]
            pos += k
        return out
