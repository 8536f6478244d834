"""Decide: Algorithm 1's branch (`trautoml.decide.plan`), with warm-start models for a search."""
from __future__ import annotations

import dataclasses

from trautoml import decide

__all__ = ["DecideStage"]


class DecideStage:
    """group → **decide**: ``stage(assignment, features, dataset) -> Plan``. A reuse's plan carries what the dataset is
    predicted to reach with the group's model (`trautoml.decide.predict_accuracy`), for the accuracy guard, and the
    training images and epochs of the founder's final training of that model (`Workspace.group_model_source`): a
    reuse trains for those epochs under the one rule of every final training (`trautoml.decide.training_epochs`).

    ``ctx``: the pipeline's context (``workspace``, ``progress``). ``warm_start`` / ``warm_k``: a search first
    trains the models of ``warm_k`` earlier datasets, the ``latest`` ones or the nearest by ``profile`` or
    ``metafeatures`` (`trautoml.warmstart`); None: no warm start beyond what Algorithm 1 gives."""

    def __init__(self, ctx, warm_start: str | None = None, warm_k: int = 3):
        self.ctx, self.warm_start, self.warm_k = ctx, warm_start, warm_k

    def __call__(self, assignment, features=None, dataset=None) -> decide.Plan:
        from trautoml.models.spec import ModelSpec

        ws = self.ctx.workspace
        spec = ws.group_spec(assignment.group)
        plan = decide.plan(assignment, None if spec is None else ModelSpec.from_dict(spec))
        if plan.action == decide.REUSE:
            members, searched = ws.accuracy_points(plan.group, spec)
            level = float(features.mean.mean()) if getattr(features, "kind", None) == "landmarkers" else None
            size, classes = (None, None) if dataset is None else (len(dataset.y_train), dataset.num_classes)
            plan = dataclasses.replace(plan, prediction=decide.predict_accuracy(level, size, members, searched,
                                                                                classes),
                                       source=ws.group_model_source(plan.group))
        if plan.action == decide.SEARCH and self.warm_start is not None:
            from trautoml.warmstart import neighbour_specs

            point = None if features is None else features.mean
            specs = neighbour_specs(ws.datasets(), point, self.warm_start, self.warm_k)
            plan = dataclasses.replace(plan, warm_start=tuple(plan.warm_start) +
                                       tuple(ModelSpec.from_dict(s) for s in specs))
        self.ctx.progress.message(f"  decide: {plan.describe()}")
        return plan
