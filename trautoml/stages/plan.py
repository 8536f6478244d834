"""Decide: Algorithm 1's branch (`trautoml.decide.plan`), with warm-start models for a search."""
from __future__ import annotations

import dataclasses

from trautoml import decide

__all__ = ["DecideStage"]


class DecideStage:
    """group → **decide**: ``stage(assignment, features, dataset) -> Plan``. A reuse's plan carries what the dataset is
    predicted to reach with the group's model (`trautoml.decide.predict_accuracy`), for the accuracy guard, and the
    training images and epochs of the founder's final training of that model (`Workspace.group_model_source`): a
    reuse trains for those epochs under the one rule of every final training (`trautoml.decide.training_epochs`), and
    the member whose trained weights it fine-tunes (`Workspace.member_weights`: the nearest by profile).

    A search (a founder's, or a rejected merge's) is seeded with the models of the preset's ``founder_warm_k``
    nearest groups by landmarker profile (`trautoml.warmstart.nearest_group_specs`): grouping and warm-starting
    meet, and a founder close to an earlier group starts from that group's model inside its own budget (the
    backend trains the seeds first, in its first rung beside its own samples).

    ``ctx``: the pipeline's context (``workspace``, ``progress``, ``preset``). ``warm_start`` / ``warm_k``: instead,
    a search first trains the models of ``warm_k`` earlier datasets, the ``latest`` ones or the nearest by
    ``profile`` or ``metafeatures`` (`trautoml.warmstart`); None: the nearest groups' models as above."""

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
            point = None if features is None else features.mean
            plan = dataclasses.replace(plan, prediction=decide.predict_accuracy(level, size, members, searched,
                                                                                classes),
                                       source=ws.group_model_source(plan.group),
                                       init=ws.member_weights(plan.group, spec, point, classes))
        k = self.ctx.preset.founder_warm_k
        if plan.action == decide.SEARCH and self.warm_start is None and k > 0 and features is not None \
                and getattr(features, "kind", None) == "landmarkers":
            from trautoml.warmstart import nearest_group_specs

            _, means, member_groups = ws.profile_points()
            specs = nearest_group_specs(ws.groups(), means, member_groups, features.mean, k)
            plan = dataclasses.replace(plan, warm_start=tuple(plan.warm_start) +
                                       tuple(ModelSpec.from_dict(s) for s in specs))
        if plan.action == decide.SEARCH and self.warm_start is not None:
            from trautoml.warmstart import neighbour_specs

            point = None if features is None else features.mean
            specs = neighbour_specs(ws.datasets(), point, self.warm_start, self.warm_k)
            plan = dataclasses.replace(plan, warm_start=tuple(plan.warm_start) +
                                       tuple(ModelSpec.from_dict(s) for s in specs))
        self.ctx.progress.message(f"  decide: {plan.describe()}")
        return plan
