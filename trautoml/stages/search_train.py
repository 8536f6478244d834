"""Search/train: a search for a dataset that founds a group (the backend through the trial runner), or the group's
model reused; then the dataset's model trained afresh (paper 002, Algorithm 1; weights are never copied)."""
from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from trautoml import decide
from trautoml.models.spec import adapt_spec
from trautoml.trial_runner import TrialRunner
from trautoml.workspace import state_dir

__all__ = ["Outcome", "SearchTrainStage"]


@dataclass
class Outcome:
    """What the search/train stage produced for one dataset.

    ``outcome``: ``searched`` or ``reused``; ``spec``: the dataset's model; ``final``: the final training's
    `TrainResult` (its module kept when tracked); ``search_seconds`` / ``train_seconds``: charged seconds;
    ``final_epochs``: epochs of the final training; ``trials`` / ``search_info``: the search's trials and its
    backend's report; ``check``: the reuse check; ``escalated``: a reuse fell short and a search ran;
    ``search_own_seconds``: the backend's compute outside its trials (what a cache cannot replay);
    ``search_flops``: the training FLOPs of the search's trials (a backend's own training outside its trials, as
    ENAS's shared weights, is not counted); ``train_flops``: of every final training, a reuse's and an escalation's
    included (`trautoml.models.flops`; cached ones charged what they counted when they ran)."""

    outcome: str
    spec: Any
    final: Any
    search_seconds: float
    train_seconds: float
    final_epochs: float
    trials: list
    search_info: dict = field(default_factory=dict)
    check: decide.ReuseCheck | None = None
    escalated: bool = False
    search_own_seconds: float = 0.0
    search_flops: float = 0.0
    train_flops: float = 0.0


def _report(result) -> dict:
    """The search's report for the decision record: the backend's ``info`` with the result's typed fields."""
    return {**result.info, "stopped_early": result.stopped_early, "seconds": result.seconds}


class SearchTrainStage:
    """decide → **search/train**: ``stage(dataset, plan, observer) -> Outcome``.

    ``ctx``: the pipeline's context (``preset``, ``seed``, ``root``, ``workspace``, ``executor``, ``progress``).
    ``backend`` / ``backend_name``: the search backend and its registered name (its state folder). ``tracking``:
    with tracking the final model is trained here and kept (it is logged); without, it is a cached trial like the
    search's. ``observer``: gets each batch of trials (``trials``) and the backend's state folder after a search
    (``backend_state``)."""

    def __init__(self, ctx, backend, backend_name: str, tracking: bool):
        self.ctx, self.backend, self.backend_name, self.tracking = ctx, backend, backend_name, tracking

    # ---- the budget and seed of a search
    def budget(self):
        """The preset's search budget (`trautoml.search.SearchBudget`)."""
        from trautoml.search import SearchBudget

        p = self.ctx.preset
        return SearchBudget(max_trials=max(1, round(p.search_trials)), max_epochs=p.search_epochs,
                            min_epochs=p.search_min_epochs, max_seconds=p.search_seconds)

    def seed(self, dataset) -> int:
        """The seed of a search on ``dataset``: fixed by the workspace seed and the dataset's content, so each
        dataset explores its own candidates, and a rerun (or the benchmark's standalone search) repeats it."""
        digest = hashlib.sha256(f"{self.ctx.seed}:{dataset.content_hash()}".encode()).hexdigest()
        return int(digest[:8], 16)

    def runner(self, dataset, observer=None, limits: tuple[int | None, int | None] | None = None) -> TrialRunner:
        """The trial runner for ``dataset`` over the workspace cache and the executor. ``limits``: (max_train,
        max_eval) images a trial uses; default: the preset's search caps."""
        p, ctx = self.ctx.preset, self.ctx
        max_train, max_eval = limits if limits is not None else (p.search_max_train, p.search_max_eval)
        return TrialRunner(dataset, ctx.workspace, lambda: ctx.executor, max_train, max_eval,
                           on_trials=None if observer is None else observer.trials)

    # ---- the stage
    def __call__(self, dataset, plan: decide.Plan, observer) -> Outcome:
        p = self.ctx.preset
        if plan.action == decide.SEARCH:
            result, search_s, own_s, search_f = self.search(dataset, plan, observer)
            epochs = decide.training_epochs(p.final_epochs, result.best_resource, p.search_epochs)
            final, train_s = self.train(result.best, dataset, epochs)
            return Outcome("searched", result.best, final, search_s, train_s, epochs, result.trials,
                           _report(result), search_own_seconds=own_s, search_flops=search_f, train_flops=final.flops)

        assert plan.spec is not None  # a reuse names the group's model
        _, source_epochs = plan.source or (None, None)
        epochs = decide.training_epochs(p.final_epochs, source_epochs, p.search_epochs)
        plan = dataclasses.replace(plan, spec=adapt_spec(plan.spec, dataset.input_shape, dataset.num_classes))
        final, train_s = self.train(plan.spec, dataset, epochs)
        check = decide.check_reuse(final.val_accuracy, plan.prediction, p.reuse_tolerance, len(dataset.y_val))
        self.ctx.progress.message("  " + check.explain())
        if not check.escalate:
            return Outcome("reused", plan.spec, final, 0.0, train_s, epochs, [], {}, check, train_flops=final.flops)
        result, search_s, own_s, search_f = self.search(dataset, decide.escalation(plan), observer)
        found, epochs2 = result.best, decide.training_epochs(p.final_epochs, result.best_resource, p.search_epochs)
        if found == plan.spec:  # measured on this dataset already by its final training: take the best other one
            other = decide.best_other(result.trials, plan.spec)
            if other is not None:
                found, epochs2 = other.spec, decide.training_epochs(p.final_epochs, other.resource, p.search_epochs)
        final2, train2_s = self.train(found, dataset, epochs2)
        costs = dict(escalated=True, search_own_seconds=own_s, search_flops=search_f,
                     train_flops=final.flops + final2.flops)
        if final2.val_accuracy > final.val_accuracy:
            return Outcome("searched", found, final2, search_s, train_s + train2_s, epochs2, result.trials,
                           _report(result), check, **costs)
        return Outcome("reused", plan.spec, final, search_s, train_s + train2_s, epochs, result.trials,
                       _report(result), check, **costs)

    def search(self, dataset, plan: decide.Plan, observer):
        """Run the backend on ``dataset`` (warm-started from the plan's specs, adapted to its shape): the
        `SearchResult`, its wall seconds, the seconds it spent outside its trials, and its trials' FLOPs."""
        from trautoml.search import SearchTask, run_search

        folder = state_dir(self.ctx.root) / "backends" / self.backend_name
        folder.mkdir(parents=True, exist_ok=True)
        runner = self.runner(dataset, observer)
        in_trials, flops = [0.0], [0.0]

        def run_trials(requests):
            t = time.perf_counter()
            try:
                trials = runner(requests)
            finally:
                in_trials[0] += time.perf_counter() - t
            flops[0] += sum(trial.flops or 0.0 for trial in trials)
            return trials

        warm = [adapt_spec(s, dataset.input_shape, dataset.num_classes) for s in plan.warm_start]
        task = SearchTask(dataset=dataset, budget=self.budget(), run_trials=run_trials, seed=self.seed(dataset),
                          warm_start=warm, task_id=plan.group, state_dir=folder,
                          progress=lambda msg: self.ctx.progress.message("  search: " + msg))
        t0 = time.perf_counter()
        result = run_search(self.backend, task)
        seconds = time.perf_counter() - t0
        # whether one of the warm-start models it was given won the search (the benchmark's warm-start rows count)
        result.info["warm_start_won"] = bool(warm) and result.best in warm
        observer.backend_state(folder)
        return result, seconds, max(0.0, seconds - in_trials[0]), flops[0]

    def train(self, spec, dataset, epochs: float):
        """The final training of the dataset's model: weights trained afresh on its full train split. Returns the
        result (its ``flops`` counted, a cached one's as counted when it ran) and the seconds it is charged
        (measured; a cached one's measured when it ran).

        With tracking the module is kept and logged, and the measurement goes into the trial cache; without, no
        module is needed, so a training measured before (same dataset, spec, epochs, seed, image cap) is not run
        again: it is the same call either way (`run_trial` wraps `train_and_evaluate`)."""
        from trautoml.models.train import TrainResult, train_and_evaluate
        from trautoml.search import Trial, TrialRequest

        ctx = self.ctx
        ctx.progress.message(f"  train: {spec.space} {spec.key()} for {epochs:g} epochs")
        limits = (ctx.preset.final_max_train, None)
        if not self.tracking:
            trial = self.runner(dataset, None, limits=limits)([TrialRequest(spec, epochs, ctx.seed)])[0]
            if trial.status != "ok":
                raise RuntimeError(f"the final training of {spec.key()} failed: {trial.error}")
            return TrainResult(trial.val_accuracy, trial.test_accuracy, trial.wall_seconds, epochs, 0,
                               float("nan"), flops=trial.flops or 0.0), trial.wall_seconds
        t0 = time.perf_counter()
        res = train_and_evaluate(spec, dataset, epochs, ctx.seed, max_train=limits[0], keep_module=True)
        seconds = time.perf_counter() - t0
        self.runner(dataset, None, limits=limits).store([
            Trial(spec=spec, resource=epochs, seed=ctx.seed, val_accuracy=res.val_accuracy,
                  test_accuracy=res.test_accuracy, wall_seconds=res.wall_seconds, flops=res.flops)])
        return res, seconds
