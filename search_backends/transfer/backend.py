"""The ``transfer`` search backend: one controller that keeps learning across every search of the stream.

``TransferController(agent="lstm" | "transformer", space="cnn" | "mlp")``. In trautoml a task is a group
(``task.task_id``; the dataset's name when a caller gives none). The controller lives in a state folder —
``state_dir`` given to the constructor, else ``task.state_dir`` — and that folder must be shared by all groups for
transfer to happen (a per-group folder gives every group its own controller trained from scratch). Each search:

1. loads the controller from the folder (`persistence`), or starts a fresh one;
2. prepares the pair (space, group): a group the controller has not served, met by a controller that has already
   learnt from earlier groups, is served by *transfer* — all parameters kept, a fresh task embedding (and, for a
   space it has not searched, fresh embeddings for its unseen states and actions); the Transformer agent mixes
   uniform sampling in over the pair's first 100 samples;
3. trains ``task.warm_start`` specs of its space first (they count against the budget; those on the space's grid
   enter the pair's priority queue);
4. then, until ``budget.max_trials`` trainings: samples ``batch_size`` walks from the policy, trains the new specs
   through ``task.run_trials`` at ``budget.max_epochs`` (one batch, so the core can run them in parallel), and
   makes one REINFORCE update per walk with reward = validation accuracy (0 for a failed trial), saving the
   controller after every update. A walk that builds a spec already measured in this search is not trained again:
   its stored reward updates the policy and it costs no trial (at most ``samples_per_trial`` walks per trial, so
   a converged policy ends the search early instead of looping);
5. returns the best spec by validation accuracy.

No wall-clock cap stops a batch midway: with ``budget.max_seconds`` no new batch starts once it has passed.

Within one search every update is for the group being searched: only its dataset can be trained here. The
multitask side of Wong et al. (each update drawing a task) happens across the stream, one group per search;
`learner.train_multitask` interleaves tasks where all of them can be evaluated at once (the toys, the benchmark).
Training options given to the constructor (``lr``, ``entropy_weight``, ...) override those of a loaded controller.
The controller's files are `artifact_paths` (also in ``info["state_files"]``); they sit in the state folder, which
the caller logs to MLflow.

Measured (bench/bench_transfer_minibench.py, report bench/reports/transfer-minibench-2026-12-03, README "Transfer
controller"): tuned on double XOR, the Transformer is not faster than the LSTM (median 103.5 samples against 76.5,
10 replicas) and, at its tuned setting (lr 5e-3, no priority queue, no entropy), does not stay converged; with that
setting, transfer from two subspaces reached the first thresholds of the tabular mini-benchmark 3–4× sooner than
scratch on MNIST but was slower on Fashion-MNIST; with the papers' settings transfer on Fashion-MNIST reached the
top 10 as often and as fast as scratch (median 116.5 trials against 119.5, 44 of 50 replicas each) and ahead of
regularised evolution (179). The defaults (`learner.AGENT_DEFAULTS`) therefore stay the papers' settings for the
Transformer and the toys' for the LSTM.
"""
from __future__ import annotations

from pathlib import Path

from search_backends.base import SearchBackend, SearchResult, SearchTask, Trial, TrialRequest, best_of
from trautoml.models.spec import ModelSpec

from .agent import Episode
from .learner import AGENT_DEFAULTS, AGENTS, Learner, pair_key
from .persistence import load_learner, save_learner, state_paths
from .spaces import model_space


class TransferController(SearchBackend):
    """The ``transfer`` search backend (module docstring): a `Learner` of kind ``agent`` over the model space ``space``
    (``cnn`` or ``mlp``), kept in ``state_dir`` (default: ``task.state_dir``; in memory without either). ``batch_size``:
    walks sampled per batch of trials; ``samples_per_trial``: at most this many walks per new spec trained;
    ``agent_options`` and ``train_options`` go to the learner."""

    name = "transfer"

    def __init__(self, agent: str = "transformer", space: str = "cnn", batch_size: int = 4,
                 samples_per_trial: int = 20, state_dir: str | Path | None = None,
                 agent_options: dict | None = None, **train_options):
        if agent not in AGENTS:
            raise ValueError(f"unknown agent {agent!r}; expected one of {', '.join(AGENTS)}")
        unknown = set(train_options) - set(AGENT_DEFAULTS[agent])
        if unknown:
            raise ValueError(f"unknown option(s) for the {agent} controller: {', '.join(sorted(unknown))}")
        self._space = model_space(space)
        self.agent, self.space = agent, space
        self.batch_size = max(1, int(batch_size))
        self.samples_per_trial = max(1, int(samples_per_trial))
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.agent_options = dict(agent_options or {})
        self.train_options = train_options
        self._memory: Learner | None = None       # the controller when no state folder is given
        self._folder: Path | None = None

    def artifact_paths(self) -> list[Path]:
        """The controller's files (weights, statistics) after the last search; log them as MLflow artifacts."""
        if self._folder is None:
            return []
        return [p for p in state_paths(self._folder, self.agent) if p.exists()]

    def _learner(self, task: SearchTask) -> Learner:
        folder = self.state_dir or task.state_dir
        self._folder = Path(folder) if folder is not None else None
        learner = load_learner(self._folder, self.agent) if self._folder is not None else self._memory
        if learner is None:
            learner = Learner(self.agent, seed=task.seed, agent_options=self.agent_options, **self.train_options)
        learner.config.update(self.train_options)
        self._memory = learner
        return learner

    def _save(self, learner: Learner) -> None:
        if self._folder is not None:
            save_learner(learner, self._folder)

    def search(self, task: SearchTask) -> SearchResult:
        budget = task.budget
        n_max = budget.trial_count()
        learner = self._learner(task)
        space = self._space
        group = task.task_id or f"dataset:{task.dataset.name}"
        key = pair_key(space.name, group)
        updates_before = learner.updates
        transfer = learner.prepare(space, group)
        measured: dict[ModelSpec, float] = {}
        trials: list[Trial] = []

        def train(specs: list[ModelSpec]) -> None:
            done = task.run_trials([TrialRequest(s, budget.max_epochs, task.seed) for s in specs])
            for t in done:
                measured[t.spec] = t.val_accuracy if t.status == "ok" else 0.0
            trials.extend(done)

        warm = [s for s in dict.fromkeys(task.warm_start) if s.space == space.name][:n_max]
        if warm:
            train(warm)
            for spec in warm:
                actions = space.encode(spec)
                if actions is not None and learner.config["pqt_weight"] > 0:
                    walker = learner.spaces.walker(space.name)
                    for a in [space.name, *actions]:
                        walker.take(a)
                    ep = Episode.from_walker(space.name, group, walker)
                    learner.queues[key].push(ep.key(), measured[spec], ep.steps_json())

        samples = repeats = 0
        max_samples = self.samples_per_trial * n_max
        stopped_early = False
        while len(trials) < n_max and samples < max_samples:
            if task.out_of_time():
                stopped_early = True
                break
            walks: list[Episode] = []
            new: list[ModelSpec] = []
            while len(new) < min(self.batch_size, n_max - len(trials)) and samples < max_samples:
                ep = learner.propose(space.name, group)
                samples += 1
                if ep.result in measured:           # known reward: learn from it now, no trial
                    repeats += 1
                    learner.update(ep, measured[ep.result])
                    self._save(learner)
                    continue
                walks.append(ep)
                if ep.result not in new:
                    new.append(ep.result)
                else:
                    repeats += 1
            if new:
                train(new)
            for ep in walks:
                learner.update(ep, measured[ep.result])
                self._save(learner)
            ok = [t.val_accuracy for t in trials if t.status == "ok"]
            task.progress(f"transfer[{self.agent}]: {len(trials)}/{n_max} trials, {samples} samples, best val "
                          + (f"{max(ok):.4f}" if ok else "n/a"))

        best = best_of(trials)
        summary = {"task": group, "space": space.name, "transfer": transfer, "trials": len(trials),
                   "samples": samples, "best_val_accuracy": best.val_accuracy, "updates": learner.updates}
        learner.history.append(summary)
        self._save(learner)
        return SearchResult(best=best.spec, best_val_accuracy=best.val_accuracy, trials=trials,
                            best_resource=budget.max_epochs, stopped_early=stopped_early,
                            info={"backend": self.name, "agent": self.agent, "space": space.name, "task": group,
                                  "transfer": transfer, "updates_before": updates_before,
                                  "updates": learner.updates, "samples": samples, "repeated_samples": repeats,
                                  "tasks_known": sorted({k.split("|", 1)[1] for k in learner.stats}),
                                  "state_files": [str(p) for p in self.artifact_paths()]})
