"""Recovery: MLflow brought in line with the workspace, whatever point a crash, kill or error stopped an ingest at.

The workspace's commit is the truth: a dataset is ingested once its row is committed. MLflow is made to agree:

* `Recovery.recover` (before an ingest starts a run, once per pipeline): runs of committed datasets are finished
  and their model registered; RUNNING runs of dead processes that never committed are marked KILLED, and so are
  their RUNNING trial runs (the rerun ingest starts a fresh run, `Tracker.start_dataset_run` deletes the killed one);
* `Recovery.ensure_finished`: a committed ingest whose run a kill left open is finished when its dataset comes again;
* `Recovery.abort`: an ingest that failed or was interrupted marks its run FAILED or KILLED;
* `Recovery.finish`: after the commit, the group's registered model gets this member's version and the run ends.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Recovery"]


class Recovery:
    """MLflow's side of an ingest's durability. ``tracker``: a `trautoml.tracking.Tracker`; ``workspace``: a zero-
    argument callable returning the `trautoml.workspace.Workspace`; ``progress``: a `trautoml.progress.Progress`."""

    def __init__(self, tracker, workspace, progress):
        self.tracker, self._workspace, self.progress = tracker, workspace, progress
        self.recovered = False

    def register(self, group: str, run_id: str) -> None:
        """Register the run's model as a version of the group's model, unless it is one already."""
        if not self.tracker.client.search_model_versions(f"run_id = '{run_id}'"):
            self.tracker.register_group_model(group, run_id)

    def recover(self) -> list[str]:
        """Bring MLflow in line with the workspace after a crash (once; call under the workspace lock). Returns the
        runs touched."""
        if self.recovered:
            return []
        tracker, ws = self.tracker, self._workspace()
        committed = {r["run_id"]: r for r in ws.datasets() if r["run_id"]}
        touched = []
        unfinished = tracker.client.search_runs([tracker.experiment_id], "attributes.status != 'FINISHED'",
                                                max_results=10_000)
        for run in unfinished:
            rid = run.info.run_id
            if rid in committed:
                self.register(committed[rid]["group_id"], rid)
                tracker.end_run(rid, "FINISHED")
                touched.append(rid)
        touched += tracker.close_stale_runs()
        for run in tracker.client.search_runs([tracker.experiment_id], "attributes.status = 'RUNNING'",
                                              max_results=10_000):
            parent = run.data.tags.get("mlflow.parentRunId")
            if parent and tracker.client.get_run(parent).info.status != "RUNNING":
                tracker.end_run(run.info.run_id, "KILLED")
                touched.append(run.info.run_id)
        self.recovered = True
        return touched

    def ensure_finished(self, decision) -> None:
        """A committed ingest whose MLflow run a crash left open (killed after the commit): finish it now, so
        rerunning the same command leaves no run RUNNING."""
        if decision.run_id is None:
            return
        try:
            status = self.tracker.client.get_run(decision.run_id).info.status
        except Exception:  # noqa: BLE001 - store unreachable or run gone: nothing of ours to finish
            return
        if status != "FINISHED":
            with self._workspace().lock():
                self.recovered = False
                self.recover()

    def abort(self, run_id: str, exc: BaseException) -> None:
        """Mark the dataset's run KILLED (interrupted) or FAILED. An interrupt that landed inside an MLflow call can
        leave that call's database session open, held by the traceback's frames, and with it SQLite's lock: the
        frames are cleared first so the session closes. MLflow's own error log stays quiet here; a run that still
        cannot be closed is closed by `recover` on the next ingest."""
        import gc
        import logging
        import traceback

        status = "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED"
        traceback.clear_frames(exc.__traceback__)
        gc.collect()
        previous = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        try:
            self.tracker.end_run(run_id, status)
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        finally:
            logging.disable(previous)

    def finish(self, run_id: str, decision) -> None:
        """After the commit: the group's registered model gets this member's version, the groups picture, and the
        run is finished. A failure here loses nothing: `recover` completes it next time."""
        try:
            self.register(decision.group, run_id)
            names, means, groups = self._workspace().profile_points()
            self.tracker.log_groups_figure(run_id, names, np.array(means, dtype=float), groups,
                                           highlight=decision.dataset)
            self.tracker.end_run(run_id, "FINISHED")
        except Exception as exc:  # noqa: BLE001 - the ingest is committed; recovery finishes the run later
            self.progress.message(f"warning: finishing MLflow run {run_id} failed ({exc}); the next ingest "
                                  "finishes it")
