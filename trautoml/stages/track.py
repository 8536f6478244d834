"""Track: what an ingest records in MLflow, as an observer the pipeline calls at its stage boundaries.

`IngestObserver` declares the hooks (each does nothing); `MLflowObserver` records a dataset's run: its inputs,
profile, assignment, every trial (child runs), the backend's state, the decision and the trained model, and the
run's end through `trautoml.stages.recovery.Recovery`. An ingest with ``tracking=False`` uses `IngestObserver`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["IngestObserver", "MLflowObserver"]


class IngestObserver:
    """The hooks an ingest calls, in order; override the ones you need. ``run_id``: the MLflow run, if any."""

    run_id: str | None = None

    def start(self, dataset, params: dict) -> None:
        """Before anything is computed (under the workspace lock); ``params``: the ingest's settings."""

    def loaded(self, dataset) -> None:
        """The dataset the ingest works on (its short name chosen)."""

    def profiled(self, features) -> None:
        """After the profile stage (`trautoml.stages.profile.Features`)."""

    def grouped(self, assignment) -> None:
        """After the group stage (the grouper's `Assignment`)."""

    def trials(self, batch: list, first_index: int) -> None:
        """Each batch of trials the search or final training ran (``first_index``: of its first trial)."""

    def backend_state(self, folder: Path) -> None:
        """After a search: the folder the backend keeps its state in."""

    def decided(self, decision, outcome, dataset) -> None:
        """The Decision and the stage's `Outcome`, before the workspace commits them."""

    def committed(self, decision) -> None:
        """After the workspace committed the dataset."""

    def aborted(self, exc: BaseException) -> None:
        """The ingest failed or was interrupted before the commit (the exception is raised again)."""


class MLflowObserver(IngestObserver):
    """Records one ingest in MLflow. ``tracker``: a `trautoml.tracking.Tracker`; ``recovery``: the pipeline's
    `Recovery` (recovers before the run starts, finishes or aborts it)."""

    def __init__(self, tracker, recovery):
        self.tracker, self.recovery = tracker, recovery
        self.run_id = None

    def start(self, dataset, params: dict) -> None:
        self.recovery.recover()
        self.run_id = self.tracker.start_dataset_run(dataset.name, dataset.content_hash(), params)

    def loaded(self, dataset) -> None:
        self.tracker.log_dataset_input(
            self.run_id, name=dataset.name, content_hash=dataset.content_hash(), uri=dataset.uri,
            input_shape=dataset.input_shape, num_classes=dataset.num_classes,
            sizes={split: len(dataset.split(split)[1]) for split in ("train", "val", "test")})

    def profiled(self, features) -> None:
        self.tracker.log_profile(self.run_id, features)

    def grouped(self, assignment) -> None:
        self.tracker.log_assignment(self.run_id, assignment)

    def trials(self, batch: list, first_index: int) -> None:
        self.tracker.log_trials(self.run_id, batch, first_index=first_index)

    def backend_state(self, folder: Path) -> None:
        """What the backend learnt (Q-table, controller weights), as the run's artifacts."""
        self.tracker.log_artifacts_dir(self.run_id, folder, "backend_state")

    def decided(self, decision, outcome, dataset) -> None:
        self.tracker.log_decision(self.run_id, decision, module=outcome.final.module,
                                  input_example=np.ascontiguousarray(dataset.x_val[:2]))
        self.tracker.log_display_tags(self.run_id, decision)

    def committed(self, decision) -> None:
        self.recovery.finish(self.run_id, decision)

    def aborted(self, exc: BaseException) -> None:
        if self.run_id is not None:
            self.recovery.abort(self.run_id, exc)
