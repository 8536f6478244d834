"""Group: the workspace's grouper observes the dataset's features (paper 002 §3, Algorithm 1's assignment)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from trautoml.mechanisms import accepted_kwargs
from trautoml.workspace import WorkspaceError

if TYPE_CHECKING:
    from trautoml.grouping.base import Grouper

__all__ = ["GroupStage"]


class GroupStage:
    """profile → **group**: ``stage(features) -> (grouper, state version, Assignment)``.

    ``ctx``: the pipeline's context (``preset``, ``seed``, ``workspace``, ``progress``, ``root``). ``name`` /
    ``options``: the grouper in `trautoml.registry.GROUPERS` and keyword arguments for it (with the preset's
    ``alpha``, ``gamma``, ``K``, ``sigma0_sq`` and the seed). Building the stage validates both."""

    def __init__(self, ctx, name: str, options: dict | None = None):
        self.ctx, self.name, self.options = ctx, name, dict(options or {})
        self._committed: tuple[int, Grouper] | None = None  # (state version, grouper): see `grouper`
        self.fresh()

    def grouper_class(self):
        """The grouper class registered under the stage's name (ValueError naming the known groupers)."""
        from trautoml.grouping import GROUPERS

        return GROUPERS.get(self.name)

    def kwargs(self) -> dict:
        """The grouper's keyword arguments: the preset's grouping parameters, the seed, the stage's options."""
        p = self.ctx.preset
        return {"alpha": p.alpha, "gamma": p.gamma, "K": p.K, "sigma0_sq": p.sigma0_sq, "seed": self.ctx.seed,
                "first_look": p.n_trials_first, **self.options}

    def settings(self) -> dict:
        """The grouping settings a workspace keeps for good."""
        p = self.ctx.preset
        s = {"grouper": self.name, "alpha": p.alpha, "gamma": p.gamma, "K": p.K, "sigma0_sq": p.sigma0_sq}
        if self.options:
            s["grouper_options"] = self.options
        return s

    def fresh(self):
        """A grouper that has seen nothing."""
        cls = self.grouper_class()
        return cls(**accepted_kwargs(cls, self.kwargs()))

    def grouper(self):
        """The workspace's grouper (a fresh one before the first dataset) and the state version it stands for.

        Restoring replays every dataset grouped so far (``from_dict``), work that grows with the stream; so the
        grouper this stage committed last is used as it is while the workspace still holds that very version
        (nobody else committed since). It is handed out once: whoever observes with it must commit again."""
        committed, self._committed = self._committed, None
        ws = self.ctx.workspace
        head = ws.grouper_version()
        if head is None:
            return self.fresh(), None
        name, version = head
        if name != self.name:
            raise WorkspaceError(f"workspace {self.ctx.root} groups with {name!r}, not {self.name!r}")
        if committed is not None and committed[0] == version:
            return committed[1], version
        _, d, version = ws.grouper_state()
        return self.grouper_class().from_dict(d), version

    def _peek(self):
        """The workspace's grouper, handed back at once (the next `grouper` call gets the same object)."""
        grouper, version = self.grouper()
        if version is not None:
            self._committed = (version, grouper)
        return grouper

    def first_look(self) -> int | None:
        """After how many trials the workspace's grouper may let a profile stop (`Grouper.first_look`; a restored
        grouper keeps the value it was made with)."""
        return self._peek().first_look

    def settled(self, trials) -> bool:
        """Whether the workspace's grouper needs no more trials than these (`Grouper.settled`)."""
        return self._peek().settled(trials)

    def committed(self, version, grouper) -> None:
        """The workspace now holds ``grouper`` as state ``version`` (kept for the next `grouper` call)."""
        self._committed = (version, grouper)

    def __call__(self, features):
        grouper, version = self.grouper()
        assignment = grouper.observe(features.trials)
        self.ctx.progress.message("  group: " + assignment.explain().replace("\n", "\n         "))
        return grouper, version, assignment
