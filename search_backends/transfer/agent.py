"""What both agents share: named embedding tables, episodes, and the sampling loop over a conditional space.

Embeddings are looked up by *name*: an action by ``"<state>=<json value>"`` (unique per state, shared by every
space that has a state of that name), a task by its id, a state by its name. A table grows when a name is first
seen; the new row is a fresh random vector, the only new parameter (Wong et al. §2.3, Borsos et al. §3). Rows
are stored as ``ParameterDict`` entries keyed by their insertion index, and the name → index map travels with the
weights (`persistence`), so a reloaded agent has exactly the same parameters.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

import torch
from torch import nn

from .reinforce import mixed_log_probs
from .spaces import Decision, Walker


def action_key(state: str, action: Any) -> str:
    """The embedding name of ``action`` at ``state``: ``"<state>=<json value>"``."""
    return f"{state}={json.dumps(action)}"


class KeyedTable(nn.Module):
    """Vectors of size ``dim`` looked up by name, created on first use with ``init``."""

    def __init__(self, dim: int, init: Callable[[torch.Tensor, torch.Generator], None],
                 gen: torch.Generator):
        super().__init__()
        self.dim = dim
        self.rows = nn.ParameterDict()
        self.index: dict[str, int] = {}
        self._init, self._gen = init, gen

    def __contains__(self, name: str) -> bool:
        return name in self.index

    def names(self) -> list[str]:
        """The names with a row, in creation (index) order."""
        return list(self.index)

    def add(self, name: str) -> bool:
        """Create the row for ``name`` unless it exists; True when created."""
        if name in self.index:
            return False
        i = len(self.index)
        t = torch.empty(self.dim)
        self._init(t, self._gen)
        self.rows[str(i)] = nn.Parameter(t)
        self.index[name] = i
        return True

    def get(self, name: str) -> torch.Tensor:
        """The row of ``name``, created first if it is new."""
        self.add(name)
        return self.rows[str(self.index[name])]

    def stack(self, names: list[str]) -> torch.Tensor:
        """The rows of ``names`` (created as needed) stacked into a (len(names), dim) tensor."""
        return torch.stack([self.get(n) for n in names]) if names else torch.empty(0, self.dim)

    def restore_index(self, index: dict[str, int]) -> None:
        """Recreate rows (placeholder values) for a saved name → index map, before loading the state dict."""
        for name, i in sorted(index.items(), key=lambda kv: kv[1]):
            expected = self.index[name] if name in self.index else len(self.index)
            if expected != i:
                raise ValueError(f"saved embedding {name!r} has index {i}, this agent would give it {expected}")
            self.add(name)


def uniform_init(scale: float) -> Callable[[torch.Tensor, torch.Generator], None]:
    """A row initialiser drawing uniformly from [-``scale``, ``scale``] with the given generator."""
    def init(t: torch.Tensor, gen: torch.Generator) -> None:
        with torch.no_grad():
            t.uniform_(-scale, scale, generator=gen)
    return init


def normal_init(std: float) -> Callable[[torch.Tensor, torch.Generator], None]:
    """A row initialiser drawing from a normal distribution of mean 0 and standard deviation ``std`` with the given
    generator."""
    def init(t: torch.Tensor, gen: torch.Generator) -> None:
        with torch.no_grad():
            t.normal_(0.0, std, generator=gen)
    return init


@dataclass
class Episode:
    """One sampled walk: the states visited, the actions offered at each, and the index chosen."""

    space: str
    task: str
    states: list[str] = field(default_factory=list)
    offered: list[tuple] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    gamma: float = 0.0          # the uniform-mixing coefficient it was sampled with
    result: Any = None          # what the space built (a ModelSpec for the model spaces)

    @property
    def actions(self) -> list:
        """The action chosen at each step."""
        return [acts[i] for acts, i in zip(self.offered, self.chosen)]

    def key(self) -> str:
        """The walk's identity as JSON: its space and its actions (what the priority queue deduplicates on)."""
        return json.dumps([self.space, self.actions])

    def steps_json(self) -> list:
        """The steps as plain JSON, ``[state, offered actions, chosen index]`` each (the inverse of `from_steps`)."""
        return [[s, list(a), i] for s, a, i in zip(self.states, self.offered, self.chosen)]

    @classmethod
    def from_steps(cls, space: str, task: str, steps: list, gamma: float = 0.0) -> Episode:
        """The episode of ``space`` on ``task`` described by `steps_json`'s ``steps``, sampled with mixing ``gamma``."""
        return cls(space, task, [s for s, _, _ in steps], [tuple(a) for _, a, _ in steps],
                   [int(i) for _, _, i in steps], gamma)

    @classmethod
    def from_walker(cls, space: str, task: str, walker: Walker, gamma: float = 0.0) -> Episode:
        """The episode a finished ``walker`` took (its steps and its result), for ``space`` on ``task``, sampled with
        mixing ``gamma``."""
        return cls(space, task, [s for s, _ in walker.history], list(walker.offered),
                   [acts.index(a) for (_, a), acts in zip(walker.history, walker.offered)], gamma, walker.result)


class Agent(nn.Module):
    """Base class: tables for actions and tasks, the sampling loop; subclasses define the network."""

    kind = "abstract"

    def __init__(self, seed: int = 0):
        super().__init__()
        self.gen = torch.Generator().manual_seed(int(seed))

    # -- vocabulary ------------------------------------------------------------------------------------------
    def tables(self) -> dict[str, KeyedTable]:
        """The agent's embedding tables (its `KeyedTable` children), by attribute name."""
        return {name: m for name, m in self.named_children() if isinstance(m, KeyedTable)}

    def register_space(self, state_actions: dict[str, tuple]) -> None:
        """Create the embeddings (and per-state rows) for every state and action a space can offer."""
        raise NotImplementedError

    def register_task(self, task: str) -> bool:
        """Create the embedding of ``task`` unless it exists; True when created."""
        raise NotImplementedError

    def vocab(self) -> dict[str, dict[str, int]]:
        """Each table's name → index map (saved with the weights, see `persistence`)."""
        return {name: dict(t.index) for name, t in self.tables().items()}

    def restore_vocab(self, vocab: dict[str, dict[str, int]]) -> None:
        """Recreate the rows of a saved `vocab` (placeholder values) so that the saved state dict can be loaded."""
        tables = self.tables()
        for name, index in vocab.items():
            tables[name].restore_index(index)

    # -- policy ----------------------------------------------------------------------------------------------
    def start(self, space: str, task: str) -> Any:
        """A fresh sampling context for a walk of ``space`` on ``task``."""
        raise NotImplementedError

    def next_logits(self, ctx: Any, decision: Decision) -> torch.Tensor:
        """The logits over ``decision.actions`` in the sampling context ``ctx`` (from `start`)."""
        raise NotImplementedError

    def advance(self, ctx: Any, state: str, action: Any) -> None:
        """Record in ``ctx`` that ``action`` was taken at ``state``."""
        raise NotImplementedError

    def episode_logits(self, episodes: list[Episode]) -> list[list[torch.Tensor]]:
        """Logits over the offered actions at every step of every episode, with gradients."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, walker: Walker, space: str, task: str, gamma: float, rng: random.Random) -> Episode:
        """Walk ``walker`` to the end, drawing each action from ``(1 - gamma) pi + gamma / k``."""
        ctx = self.start(space, task)
        while walker.decision is not None:
            d = walker.decision
            if len(d.actions) == 1:
                i = 0
            else:
                probs = mixed_log_probs(self.next_logits(ctx, d), gamma).exp().tolist()
                i = rng.choices(range(len(probs)), weights=probs)[0]
            self.advance(ctx, d.state, d.actions[i])
            walker.take(d.actions[i])
        return Episode.from_walker(space, task, walker, gamma)
