"""The multitask LSTM controller of Wong et al. 2018 (§2.2, Figure 1 left, §3 "Controller models").

A 2-layer LSTM with 50 units. At every step its input is the embedding of the previously sampled action (size 25)
concatenated with the task embedding (size 25); the first step's "previous action" is a learned start vector.
The skip connection goes across the cell: the cell's output and its input (both of size 50) are added before the
output layer, which "eases the learning of action marginal distributions" — the per-state output rows can
learn a prior over a state's actions from the action/task inputs directly. The output layer is per state: each
(state, action) pair owns an output vector and a bias, so a conditional state offering a subset of its actions
scores exactly that subset. All weights start uniform in [-0.1, 0.1] (the paper: "initialized uniformly at random,
yielding an approximate uniform initial distribution over actions").

The task embeddings are the only task-specific parameters; transfer to a new task adds one fresh row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .agent import Agent, Episode, KeyedTable, action_key, uniform_init
from .spaces import Decision

INIT = 0.1


@dataclass
class _Ctx:
    task: torch.Tensor
    state: tuple[torch.Tensor, torch.Tensor] | None
    out: torch.Tensor | None = None   # cell output + skip, feeding the next decision's logits


class LSTMAgent(Agent):
    """The multitask LSTM controller (module docstring): ``layers`` LSTM layers of ``hidden`` units over action
    embeddings of size ``action_dim`` concatenated with task embeddings of size ``task_dim`` (the two must add up to
    ``hidden``), a per-(state, action) output layer; weights drawn with ``seed``."""

    kind = "lstm"

    def __init__(self, seed: int = 0, hidden: int = 50, action_dim: int = 25, task_dim: int = 25,
                 layers: int = 2):
        super().__init__(seed)
        if action_dim + task_dim != hidden:
            raise ValueError("the skip connection adds the cell input to its output: action_dim + task_dim must "
                             f"equal hidden ({action_dim} + {task_dim} != {hidden})")
        self.config = {"hidden": hidden, "action_dim": action_dim, "task_dim": task_dim, "layers": layers}
        init = uniform_init(INIT)
        self.actions = KeyedTable(action_dim, init, self.gen)
        self.tasks = KeyedTable(task_dim, init, self.gen)
        self.outputs = KeyedTable(hidden + 1, init, self.gen)   # per (state, action): weights and bias
        self.go = nn.Parameter(torch.empty(action_dim))
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        with torch.no_grad():
            for p in [self.go, *self.lstm.parameters()]:
                p.uniform_(-INIT, INIT, generator=self.gen)

    def register_space(self, state_actions: dict[str, tuple]) -> None:
        for state, actions in state_actions.items():
            for a in actions:
                self.actions.add(action_key(state, a))
                self.outputs.add(action_key(state, a))

    def register_task(self, task: str) -> bool:
        return self.tasks.add(task)

    # -- sampling --------------------------------------------------------------------------------------------
    def _cell(self, ctx: _Ctx, prev: torch.Tensor) -> None:
        x = torch.cat([prev, ctx.task]).view(1, 1, -1)
        h, ctx.state = self.lstm(x, ctx.state)
        ctx.out = h.view(-1) + x.view(-1)

    def _scores(self, out: torch.Tensor, state: str, actions) -> torch.Tensor:
        w = self.outputs.stack([action_key(state, a) for a in actions])
        return w[:, :-1] @ out + w[:, -1]

    def start(self, space: str, task: str) -> Any:
        ctx = _Ctx(task=self.tasks.get(task), state=None)
        self._cell(ctx, self.go)
        return ctx

    def next_logits(self, ctx: Any, decision: Decision) -> torch.Tensor:
        return self._scores(ctx.out, decision.state, decision.actions)

    def advance(self, ctx: Any, state: str, action: Any) -> None:
        self._cell(ctx, self.actions.get(action_key(state, action)))

    # -- training --------------------------------------------------------------------------------------------
    def episode_logits(self, episodes: list[Episode]) -> list[list[torch.Tensor]]:
        out = []
        for ep in episodes:
            task = self.tasks.get(ep.task)
            prev = [self.go] + [self.actions.get(action_key(s, a)) for s, a in zip(ep.states[:-1], ep.actions[:-1])]
            x = torch.cat([torch.stack(prev), task.expand(len(prev), -1)], dim=1).unsqueeze(0)
            h, _ = self.lstm(x)
            o = (h + x)[0]
            out.append([self._scores(o[t], s, acts) for t, (s, acts) in enumerate(zip(ep.states, ep.offered))])
        return out

