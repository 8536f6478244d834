"""A peer from outside: syne-tune's transfer-learning HPO (``ZeroShotTransfer``; Wistuba, Schilling & Schmidt-Thieme,
*Sequential Model-Free Hyperparameter Tuning*, ICDM 2015) as a search backend, ``synetune-zeroshot``.

Needs the optional extra ``peers`` (``pip install -e ".[peers]"``: syne-tune 0.16, which pulls xgboost).

How it is driven, and where it differs from trautoml's own searches:

* **Its space.** syne-tune wants a flat configuration space of named hyper-parameters; trautoml's ``cnn`` space is a
  variable-length list of layers. `FLAT_SPACE` is the ``cnn`` space with one value shared across layers: 1–4 convs
  of the same width and kernel, each followed by the same pooling (or none), 0–2 fc layers of the same width, and
  the same training hyper-parameters as ``cnn`` (the learning rate as a fraction of the optimizer's log-range).
  `to_spec` maps a configuration to a ``cnn`` spec, so every trial is trained and cached as trautoml's are; a
  configuration above the ``cnn`` space's compute cap is skipped, as the ``cnn`` sampler redraws such archs.
* **What it transfers.** ``transfer_learning_evaluations`` is this backend's own history: every configuration it
  trained on each earlier dataset (task) with its validation accuracy, kept in ``task.state_dir`` from one
  search to the next, as the transfer controller keeps its weights. With two or more earlier tasks, syne-tune fits
  an xgboost surrogate per task (``use_surrogates=True``: the tasks' configurations differ) and proposes the
  configurations of best average rank over them; with one, it ranks that task's configurations; with none, it
  samples at random from `FLAT_SPACE`.
* **Its budget.** ``budget.max_trials`` configurations, each trained at ``budget.max_epochs`` (syne-tune's FIFO
  scheduling: no early stopping), after the task's warm-start specs; with ``budget.max_seconds`` no new chunk of
  trials starts once it has passed. Its own compute (the surrogates) is search time like any backend's.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from trautoml.models.cnn import (ACTIVATIONS, BATCH_SIZES, DROPOUTS, FC_UNITS, FILTERS, INIT_SCALE_RANGE, KERNELS,
                                 LR_RANGE, NORMS, POOL_OPS, WEIGHT_DECAY_RANGE, cheap_enough)
from trautoml.models.spec import ModelSpec
from trautoml.search import SearchBackend, SearchResult, SearchTask, Trial, TrialRequest, best_of


METRIC = "val_accuracy"
HISTORY_FILE = "zeroshot-history.json"


def _require_syne_tune():
    try:
        import syne_tune  # noqa: F401
    except ImportError as exc:
        raise ImportError("the synetune-zeroshot backend needs syne-tune: pip install -e \".[peers]\"") from exc


def flat_space() -> dict:
    """`FLAT_SPACE` as syne-tune domains (see the module docstring)."""
    _require_syne_tune()
    from syne_tune.config_space import choice, loguniform, uniform

    return {
        "n_conv": choice([1, 2, 3, 4]), "filters": choice(list(FILTERS)), "kernel": choice(list(KERNELS)),
        "pool": choice(["none", *POOL_OPS]), "n_fc": choice([0, 1, 2]), "fc_units": choice(list(FC_UNITS)),
        "activation": choice(list(ACTIVATIONS)), "norm": choice(list(NORMS)), "dropout": choice(list(DROPOUTS)),
        "optimizer": choice(["sgd", "adam"]), "lr_frac": uniform(0.0, 1.0),
        "weight_decay": loguniform(*WEIGHT_DECAY_RANGE), "init_scale": loguniform(*INIT_SCALE_RANGE),
        "batch_size": choice(list(BATCH_SIZES)),
    }


def _3g(x: float) -> float:
    return float(f"{float(x):.3g}")


def to_spec(config: dict) -> ModelSpec:
    """The ``cnn`` spec of one flat configuration."""
    layers: list[dict] = []
    for _ in range(int(config["n_conv"])):
        layers.append({"type": "conv", "filters": int(config["filters"]), "kernel": int(config["kernel"]),
                       "stride": 1})
        if config["pool"] != "none":
            layers.append({"type": "pool", "op": str(config["pool"]), "size": 2, "stride": 2})
    layers += [{"type": "fc", "units": int(config["fc_units"])} for _ in range(int(config["n_fc"]))]
    lo, hi = LR_RANGE[config["optimizer"]]
    lr = math.exp(math.log(lo) + float(config["lr_frac"]) * (math.log(hi) - math.log(lo)))
    arch = {"layers": layers, "activation": str(config["activation"]), "norm": str(config["norm"]),
            "dropout": float(config["dropout"])}
    train = {"optimizer": str(config["optimizer"]), "lr": _3g(lr), "momentum": 0.9,
             "weight_decay": _3g(config["weight_decay"]), "init_scale": _3g(config["init_scale"]),
             "batch_size": int(config["batch_size"])}
    return ModelSpec("cnn", arch, train)


def _plain(config: dict) -> dict:
    """A configuration with numpy scalars made JSON-able."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in config.items()}


class ZeroShotSearch(SearchBackend):
    """syne-tune's ``ZeroShotTransfer`` over `FLAT_SPACE`, transferring this backend's earlier searches (module
    docstring). ``chunk_size``: trials sent to the executor at once."""

    name = "synetune-zeroshot"

    def __init__(self, chunk_size: int = 4):
        _require_syne_tune()
        self.chunk_size = max(1, int(chunk_size))

    # -------------------------------------------------------------------------------------------- the history
    @staticmethod
    def _load(state_dir: Path | None) -> dict[str, list]:
        if state_dir is None or not (Path(state_dir) / HISTORY_FILE).exists():
            return {}
        return json.loads((Path(state_dir) / HISTORY_FILE).read_text())

    @staticmethod
    def _save(state_dir: Path | None, history: dict) -> None:
        if state_dir is None:
            return
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        tmp = Path(state_dir) / (HISTORY_FILE + ".tmp")
        tmp.write_text(json.dumps(history))
        tmp.replace(Path(state_dir) / HISTORY_FILE)

    def _proposer(self, space: dict, history: dict, seed: int):
        """syne-tune's scheduler over the earlier tasks' evaluations (None without any)."""
        import pandas as pd
        from syne_tune.optimizer.schedulers.transfer_learning.transfer_learning_task_evaluation import (
            TransferLearningTaskEvaluations)
        from syne_tune.optimizer.schedulers.transfer_learning.zero_shot import ZeroShotTransfer

        evaluations = {}
        for task, rows in history.items():
            rows = [r for r in rows if r["val_accuracy"] is not None]
            if not rows:
                continue
            evaluations[task] = TransferLearningTaskEvaluations(
                configuration_space=space, hyperparameters=pd.DataFrame([r["config"] for r in rows]),
                objectives_names=[METRIC],
                objectives_evaluations=np.array([r["val_accuracy"] for r in rows], float).reshape(-1, 1, 1, 1))
        if not evaluations:
            return None

        class Seeded(ZeroShotTransfer):
            """syne-tune 0.16 draws the surrogates' candidate configurations before it sets ``random_state``
            (an AttributeError with ``use_surrogates=True``): set it first, from the same seed."""

            def __init__(self, **kwargs):
                self.random_state = np.random.RandomState(kwargs["random_seed"])
                super().__init__(**kwargs)

        return Seeded(config_space=space, metric=METRIC, transfer_learning_evaluations=evaluations,
                      do_minimize=False, use_surrogates=len(evaluations) > 1, random_seed=seed)

    # -------------------------------------------------------------------------------------------- the search
    def search(self, task: SearchTask) -> SearchResult:
        import logging

        budget = task.budget
        n = budget.trial_count()
        t0 = time.monotonic()
        space = flat_space()
        history = self._load(task.state_dir)
        earlier = {k: v for k, v in history.items() if k != str(task.task_id)}
        logging.getLogger("syne_tune").setLevel(logging.ERROR)  # its "configs must occur in all tasks" notice
        proposer = self._proposer(space, earlier, task.seed)
        rng = np.random.RandomState(task.seed)

        def propose() -> dict:
            config = proposer.get_config() if proposer is not None else None
            if config is None:  # no history, or its candidates are used up: a random configuration
                config = {k: v.sample(random_state=rng) for k, v in space.items()}
            return _plain(config)

        warm = list(dict.fromkeys(task.warm_start))[:n]
        planned: list[tuple[ModelSpec, dict | None]] = [(s, None) for s in warm]
        seen = {s.key() for s in warm}
        for _ in range(50 * n):
            if len(planned) >= n:
                break
            config = propose()
            spec = to_spec(config)
            if spec.key() in seen or not cheap_enough(spec.arch):
                continue
            seen.add(spec.key())
            planned.append((spec, config))
        transfer_seconds = time.monotonic() - t0

        trials: list[Trial] = []
        stopped_early = False
        rows = []
        for i in range(0, len(planned), self.chunk_size):
            if task.out_of_time():
                stopped_early = True
                break
            chunk = planned[i:i + self.chunk_size]
            done = task.run_trials([TrialRequest(s, budget.max_epochs, task.seed) for s, _ in chunk])
            trials += done
            rows += [{"config": c, "val_accuracy": t.val_accuracy if t.status == "ok" else None}
                     for (_, c), t in zip(chunk, done) if c is not None]
            ok = [t.val_accuracy for t in trials if t.status == "ok"]
            task.progress(f"{self.name}: {len(trials)}/{len(planned)} trials, best val "
                          + (f"{max(ok):.4f}" if ok else "n/a"))
        history[str(task.task_id)] = rows
        self._save(task.state_dir, history)
        best = best_of(trials)
        return SearchResult(best=best.spec, best_val_accuracy=best.val_accuracy, trials=trials,
                            best_resource=budget.max_epochs, stopped_early=stopped_early,
                            info={"backend": self.name, "earlier_tasks": len(earlier), "configs": len(trials),
                                  "transfer_seconds": transfer_seconds})
