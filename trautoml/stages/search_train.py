"""Search/train: a search for a dataset that founds a group (the backend through the trial runner), then its model
trained afresh; or the group's model reused (paper 002, Algorithm 1), fine-tuned from the weights a member of the
group trained (or, with ``reuse="retrain"``, trained afresh as in the paper)."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    ``init``: a fine-tuned reuse's start, also when an escalation's search then won (the member and weights it
    started from, its epochs, the tensors loaded; ``longer``: the epochs it trained on when the guard found it
    short); ``note``: why a reuse asked to fine-tune trained afresh; ``search_flops``: the training FLOPs of the
    search's trials (a backend's own training outside its trials, as ENAS's shared weights, is not counted);
    ``train_flops``: of every final training, a reuse's and an escalation's included (`trautoml.models.flops`;
    cached ones charged what they counted when they ran)."""

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
    init: dict | None = None
    note: str = ""


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
            final, train_s, _ = self.train(result.best, dataset, epochs)
            return Outcome("searched", result.best, final, search_s, train_s, epochs, result.trials,
                           _report(result), search_own_seconds=own_s, search_flops=search_f, train_flops=final.flops)

        assert plan.spec is not None  # a reuse names the group's model
        _, source_epochs = plan.source or (None, None)
        epochs = decide.training_epochs(p.final_epochs, source_epochs, p.search_epochs)
        final, train_s, init, note, check_flops = self.reuse(dataset, plan, epochs)
        check = decide.check_reuse(final.val_accuracy, plan.prediction, p.reuse_tolerance)
        self.ctx.progress.message("  " + check.explain())
        flops = final.flops + check_flops
        if check.escalate and init is not None and init["epochs"] < epochs:
            # fine-tuned and short: train on from where it stopped, to the full training's epochs
            more = self.weights_source(plan.spec, final, dataset)
            final2, train2_s, _ = self.train(plan.spec, dataset, epochs - init["epochs"], more)
            train_s, flops = train_s + train2_s, flops + final2.flops
            longer = final2.val_accuracy >= final.val_accuracy
            init = {**init, "longer": epochs - init["epochs"], "val_first": final.val_accuracy,
                    "kept": "longer" if longer else "first"}
            if longer:
                final = final2
            check = decide.check_reuse(final.val_accuracy, plan.prediction, p.reuse_tolerance)
            self.ctx.progress.message("  trained on: " + check.explain())
        spec = plan.spec if init is not None else adapt_spec(plan.spec, dataset.input_shape, dataset.num_classes)
        if not check.escalate:
            return Outcome("reused", spec, final, 0.0, train_s, epochs, [], {}, check, train_flops=flops, init=init,
                           note=note)
        result, search_s, own_s, search_f = self.search(dataset, decide.escalation(plan), observer)
        found, epochs2 = result.best, decide.training_epochs(p.final_epochs, result.best_resource, p.search_epochs)
        if found == adapt_spec(plan.spec, dataset.input_shape, dataset.num_classes):
            # measured on this dataset already by the reuse: take the best other one
            other = decide.best_other(result.trials, found)
            if other is not None:
                found, epochs2 = other.spec, decide.training_epochs(p.final_epochs, other.resource, p.search_epochs)
        final2, train2_s, _ = self.train(found, dataset, epochs2)
        costs = dict(escalated=True, search_own_seconds=own_s, search_flops=search_f,
                     train_flops=flops + final2.flops)
        if final2.val_accuracy > final.val_accuracy:
            return Outcome("searched", found, final2, search_s, train_s + train2_s, epochs2, result.trials,
                           _report(result), check, init=init, note=note, **costs)
        return Outcome("reused", spec, final, search_s, train_s + train2_s, epochs, result.trials,
                       _report(result), check, init=init, note=note, **costs)

    def reuse(self, dataset, plan: decide.Plan, epochs: float):
        """Train the group's model on ``dataset``: fine-tuned from the weights of the member the plan names
        (`trautoml.models.transfer`) for ``fine_tune_fraction`` of ``epochs`` when every weight fits (the same
        classes; another image shape goes through the input adapter); afresh for ``epochs`` (the spec adapted to
        the dataset's shape) with ``reuse="retrain"``, when those weights are gone, when they were trained on any of
        the dataset's validation or test images (a re-draw of a collection's splits: they would score images they
        learned), when the classes differ (a new
        classifier over features trained for other classes needs a full training: measured on the reference data,
        ``bench/measure_finetune.py``: fine-tuned for half the epochs, a new head reached 0.854 validation skill
        against a retraining's 0.912; the full set from a 2-class founder 0.28–0.76 against 0.60–0.93), or when the
        weights classify the dataset's validation images at chance before training (`zero_shot`: they do not know
        its task, and fine-tuning another family's weights loses 0.13–0.36 skill against retraining). Returns the
        training's result, its seconds, what it started from (None: afresh), why it could not fine-tune as asked
        (for the decision's explanation) and the FLOPs of the zero-shot check."""
        from trautoml.models.transfer import image_digests, warm_network, zero_shot

        p, progress = self.ctx.preset, self.ctx.progress
        assert plan.spec is not None
        note, check_flops = "", 0.0
        if p.reuse == "fine-tune" and plan.init is not None:
            member = plan.init["dataset"]
            weights = self.ctx.workspace.load_weights(plan.init["weights"])
            held_out = np.concatenate([dataset.x_val, dataset.x_test])
            seen = 0 if weights is None else int(np.isin(image_digests(held_out), weights.seen).sum())
            if weights is None:
                note = f"the weights {member} trained are gone: weights trained afresh"
            elif seen:
                note = (f"{member}'s weights were trained on {seen} of its validation and test images: weights "
                        "trained afresh")
            else:
                warm = warm_network(plan.spec, weights.state, weights.shape, dataset.input_shape, dataset.num_classes)
                if warm.loaded < warm.total:
                    note = f"{member}'s weights are for other classes: weights trained afresh"
                else:
                    zs = zero_shot(warm.module, dataset.x_val, dataset.y_val, dataset.input_shape)
                    check_flops = zs.flops
                    if zs.knows:
                        ft = decide.fine_tune_epochs(epochs, p.fine_tune_fraction)
                        source = {"key": plan.init["weights"], "warm": warm, "shape": weights.shape,
                                  "seen": weights.seen}
                        final, seconds, start = self.train(plan.spec, dataset, ft, source)
                        return final, seconds, {**plan.init, "epochs": ft, "zero_shot": zs.accuracy, **start}, "", \
                            check_flops
                    note = (f"{member}'s weights classify its validation images at chance before training "
                            f"({zs.accuracy:.3f}, not above {zs.bound:.3f}): weights trained afresh")
            progress.message("  " + note)
        final, seconds, _ = self.train(adapt_spec(plan.spec, dataset.input_shape, dataset.num_classes), dataset,
                                       epochs)
        return final, seconds, None, note, check_flops

    def weights_source(self, spec, final, dataset) -> dict:
        """The weights a fine-tuned training of ``spec`` ended with (``final``), as the start of the next one."""
        from trautoml.models.transfer import warm_network

        weights = self.ctx.workspace.load_weights(final.weights)
        assert weights is not None, "a training just kept its weights"
        return {"key": final.weights, "shape": weights.shape, "seen": weights.seen,
                "warm": warm_network(spec, weights.state, weights.shape, dataset.input_shape, dataset.num_classes)}

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

    def train(self, spec, dataset, epochs: float, source: dict | None = None):
        """Train the dataset's model on its full train split: afresh, or from the trained weights ``source``
        ({"key": the weights' key, "shape": the input shape they were trained at, "seen": the digests of the images
        they were trained on, "warm": the `WarmStart` network built from them}, fine-tuned at ``fine_tune_lr_scale``
        × the spec's learning rate). Returns the `TrainResult` (its ``flops`` counted, a cached one's as counted when
        it ran; its ``weights``: the key its trained weights are kept under), the seconds it is charged (measured;
        a cached one's measured when it ran) and, for a fine-tuning, how many of the network's tensors it took
        from ``source`` (``loaded`` of ``total``).

        The trained weights are kept in the workspace (`Workspace.save_weights`), so a later member of the group can
        fine-tune from them. With tracking the module is kept too (it is logged); without, a training measured
        before (same dataset, spec, start, epochs, seed and image cap) whose weights are kept is not run again."""
        from trautoml.models.train import TrainResult, train_and_evaluate
        from trautoml.models.transfer import AdaptedNet, image_digests
        from trautoml.search import Trial
        from trautoml.trial_runner import caps_key

        ctx, ws = self.ctx, self.ctx.workspace
        max_train = ctx.preset.final_max_train
        caps, content = caps_key(max_train, None), dataset.content_hash()
        lr_scale = 1.0 if source is None else float(ctx.preset.fine_tune_lr_scale)
        key = spec.key() if source is None else f"{spec.key()}@{source['key']}*{lr_scale!r}"
        weights = hashlib.sha256(f"{content}:{key}:{float(epochs)!r}:{ctx.seed}:{caps}".encode()).hexdigest()[:24]
        start = "afresh" if source is None else "fine-tuned"
        ctx.progress.message(f"  train: {spec.space} {spec.key()} for {epochs:g} epochs, {start}")
        hit = None if self.tracking else ws.cached_trial(content, key, epochs, ctx.seed, caps)
        if hit is not None and ws.load_weights(weights) is not None:
            trial = self.runner(dataset, None, limits=(max_train, None)).charged(
                Trial.from_dict(hit))
            res = TrainResult(trial.val_accuracy, trial.test_accuracy, trial.wall_seconds, epochs, 0,
                              float("nan"), flops=trial.flops or 0.0, weights=weights)
            return res, trial.wall_seconds, dict(hit.get("start") or {})
        module, taken = None, {}
        if source is not None:
            warm = source["warm"]
            module, taken = warm.module, {"loaded": warm.loaded, "total": warm.total}
        res = train_and_evaluate(spec, dataset, epochs, ctx.seed, max_train=max_train, keep_module=True,
                                 module=module, lr_scale=lr_scale)
        net = res.module.net if isinstance(res.module, AdaptedNet) else res.module
        seen = image_digests(dataset.x_train)
        ws.save_weights(weights, net.state_dict(), dataset.input_shape if source is None else source["shape"],
                        seen if source is None else np.concatenate([seen, source["seen"]]))
        trial = Trial(spec=spec, resource=epochs, seed=ctx.seed, val_accuracy=res.val_accuracy,
                      test_accuracy=res.test_accuracy, wall_seconds=res.wall_seconds, flops=res.flops)
        ws.store_trials(content, caps, [{"spec_key": key, "resource": epochs, "seed": ctx.seed,
                                         "trial": {**trial.to_dict(), "start": taken}}])
        res.weights = weights
        if not self.tracking:
            res.module = None
        return res, res.wall_seconds, taken   # what the cache keeps: a rerun from it is charged the same
