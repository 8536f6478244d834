"""MetaQNN (Baker et al., ICLR 2017): tabular Q-learning over layer-by-layer CNN architectures.

An agent walks a finite state space one layer at a time, starting from the input, choosing among convolution
(filter count, kernel size, stride 1), max pooling (size, stride), fully connected (units) and terminate. Each
finished walk is a network; it is trained (through ``task.run_trials``, at ``budget.max_epochs``) and its
validation accuracy is the reward, given on the terminating transition only. Learning is plain Q-learning

    Q(s_i, u) <- (1 - alpha) Q(s_i, u) + alpha [r_i + gamma max_u' Q(s_{i+1}, u')]

with alpha = 0.01, gamma = 1 (no discount), Q initialised to 0.5 and r_i = 0 except on the terminal transition.
Updates come from experience replay: after every sampled network, ``replay_number`` (network, reward) pairs are
drawn with replacement from all networks seen so far and their transitions updated from the last to the first
(the reference implementation's order, which carries a reward back along the whole path in one sweep).
Actions are chosen epsilon-greedily under the paper's schedule (Table 2): 1500 models at epsilon 1.0, then 100 at
each of 0.9, 0.8, 0.7 and 150 at each of 0.6 ... 0.1 (2700 in all), scaled here to ``budget.max_trials``.
A network sampled again reuses its stored reward (it is added to the replay memory again and triggers a replay
update, as in the reference implementation) and does not count as a new model of its epsilon level.

State space, scaled to our images (8x8 to 96x96; the paper used 28x28 and 32x32):
- a state is (layer type, depth, representation-size bin, layer parameters, number of fc layers so far);
  representation sizes are binned as in the paper's appendix: ``large`` (>= 2t px), ``medium`` (t .. 2t-1 px)
  and ``small`` (< t px), with t = max(4, side // 8), i.e. the paper's 8 / 4 / 1 buckets for 28-32 px inputs;
- convolutions are ``same``-padded with stride 1 (the size is unchanged); a kernel is offered only when smaller
  than the bin's representative size (2t in ``large``, t in ``medium``, none in ``small``: the paper's "kernel <
  bucket" rule, i.e. 1/3/5 then 1/3 at 28-32 px);
- pooling follows a convolution only (no pooling first, no two poolings in a row) and only in ``large`` and
  ``medium`` bins, so a 1-3 px representation is never pooled; output size floor((n - size) / stride) + 1;
- a fully connected layer follows conv / pool only from the ``medium`` or ``small`` bin (paper: size <= 4 at
  32 px), at most ``max_fc`` (2) of them, each no wider than the one before;
- terminate is allowed from every state but the input; at ``max_depth`` layers it is the only action.
  ``max_depth`` defaults to 8 for inputs up to 32 px and grows by 2 per doubling of the side beyond.
Action sets depend on the bucketed state only, so a state key always has the same actions (as in the paper).

Emitted specs are in the ``cnn`` model space. MetaQNN searches architectures only: every spec gets the same
training hyper-parameters (``DEFAULT_TRAIN`` below: Adam, lr 1e-3, batch 128, weight decay 5e-4 -- the
reference implementation's MNIST/CIFAR settings) and the same ``activation`` / ``norm`` / ``dropout``
(``DEFAULT_ARCH``: relu, batch norm -- which makes the short trainings of a search far less sensitive to the
learning rate than the paper's lr-restart scheme -- and no dropout). Both can be overridden.

Warm start (our addition, for a group's earlier search): (1) a Q-table saved as ``metaqnn_q.json`` in
``task.state_dir`` is loaded before the search and saved back after it; (2) ``task.warm_start`` specs in the
``cnn`` space are trained first (they count against the budget), enter the replay memory with their measured
reward and are replayed into the Q-table before the first walk. A warm search skips the epsilon = 1.0 level: that
level exists to fill an empty Q-table by random exploration, which a warm-started table does not need.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path
from collections.abc import Iterable, Sequence

from trautoml.models.cnn import cnn_macs
from trautoml.models.spec import ModelSpec

from .base import SearchBackend, SearchResult, SearchTask, Trial, TrialRequest, best_of

#: (epsilon, number of models) of Baker et al. 2017, Table 2.
PAPER_EPSILON_SCHEDULE: tuple[tuple[float, int], ...] = (
    (1.0, 1500), (0.9, 100), (0.8, 100), (0.7, 100), (0.6, 150),
    (0.5, 150), (0.4, 150), (0.3, 150), (0.2, 150), (0.1, 150),
)

DEFAULT_TRAIN = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 5e-4, "batch_size": 128}
DEFAULT_ARCH = {"activation": "relu", "norm": "batch", "dropout": 0.0}

Q_FILE = "metaqnn_q.json"
Q_FORMAT = 1
LARGE, MEDIUM, SMALL, NONE = "L", "M", "S", "-"

# A state: (type, depth, bin, p1, p2, n_fc). conv: p1 = filters, p2 = kernel; pool: p1 = size, p2 = stride;
# fc: p1 = units, p2 = 0; n_fc: fc layers so far (fc states only); start: zeros. An action:
# ("conv", filters, kernel, stride) | ("pool", size, stride) | ("fc", units) | ("term",).
State = tuple
Action = tuple
TERMINATE: Action = ("term",)


def epsilon_schedule(n: int, *, warm: bool = False,
                     base: Sequence[tuple[float, int]] = PAPER_EPSILON_SCHEDULE) -> list[tuple[float, int]]:
    """Split ``n`` models over the epsilon levels in the paper's proportions (largest remainder).

    Levels that get no model are dropped; the result is ordered by decreasing epsilon and its counts sum to
    ``n``. Among the levels below 1.0 the counts never decrease as epsilon falls (the paper's "more episodes at
    low epsilon"); the 1.0 level keeps the paper's large exploration share. ``warm=True`` drops the 1.0 level.
    """
    if n < 0:
        raise ValueError(f"number of models must be >= 0, got {n}")
    levels = sorted(((float(e), float(c)) for e, c in base if not (warm and e >= 1.0)), key=lambda t: -t[0])
    if n == 0 or not levels:
        return []
    total = sum(c for _, c in levels)
    exact = [n * c / total for _, c in levels]
    counts = [math.floor(x) for x in exact]
    # Remainder to the largest fractional parts; ties go to the lower epsilon.
    order = sorted(range(len(levels)), key=lambda i: (-(exact[i] - counts[i]), levels[i][0]))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    # Keep the exploration level as is; among the others, hand the larger counts to the lower epsilons.
    rest = [i for i, (e, _) in enumerate(levels) if e < 1.0]
    for i, c in zip(rest, sorted(counts[i] for i in rest)):
        counts[i] = c
    return [(e, c) for (e, _), c in zip(levels, counts) if c > 0]


@dataclass
class StateSpace:
    """The legal layer transitions for one input size (see the module docstring)."""

    input_size: int                                  # the smaller image side, px
    max_depth: int | None = None                     # layers, terminate excluded
    filters: tuple[int, ...] = (16, 32, 64)
    kernels: tuple[int, ...] = (1, 3, 5)
    pools: tuple[tuple[int, int], ...] = ((2, 2), (3, 2))   # (size, stride)
    fc_units: tuple[int, ...] = (128, 64)
    max_fc: int = 2
    threshold: int = field(init=False)

    def __post_init__(self) -> None:
        if self.input_size < 1:
            raise ValueError(f"input size must be positive, got {self.input_size}")
        self.threshold = max(4, self.input_size // 8)
        if self.max_depth is None:
            doublings = math.ceil(math.log2(self.input_size / 32)) if self.input_size > 32 else 0
            self.max_depth = 8 + 2 * doublings
        self.filters = tuple(sorted(set(int(f) for f in self.filters)))
        self.kernels = tuple(sorted(set(int(k) for k in self.kernels)))
        self.pools = tuple(sorted(set((int(p), int(s)) for p, s in self.pools)))
        self.fc_units = tuple(sorted(set(int(u) for u in self.fc_units), reverse=True))
        if self.max_depth < 1 or not self.actions(self.start()[0]):
            raise ValueError(f"MetaQNN state space has no first layer for {self.input_size}px inputs "
                             f"(max_depth={self.max_depth}, kernels={self.kernels}, fc_units={self.fc_units})")

    # -- sizes ------------------------------------------------------------------------------------------------
    def bin(self, size: int) -> str:
        """The size bucket of a ``size`` px feature map: large at or above twice ``threshold``, medium at or above
        ``threshold``, else small."""
        t = self.threshold
        return LARGE if size >= 2 * t else MEDIUM if size >= t else SMALL

    def _kernel_ok(self, k: int, b: str) -> bool:
        # The paper offers kernels smaller than the bucket's representative size (8 / 4 / 1 at 32 px).
        t = self.threshold
        return (b == LARGE and k < 2 * t) or (b == MEDIUM and k < t)

    def start(self) -> tuple[State, int]:
        """The start state and the image size it sees (``input_size``)."""
        return ("start", 0, self.bin(self.input_size), 0, 0, 0), self.input_size

    # -- transitions ------------------------------------------------------------------------------------------
    def actions(self, state: State) -> list[Action]:
        """The legal actions from ``state`` (cached: the search asks for the same states again and again)."""
        cache = self.__dict__.setdefault("_actions", {})
        acts = cache.get(state)
        if acts is None:
            acts = cache[state] = self._enumerate(state)
        return acts

    def _enumerate(self, state: State) -> list[Action]:
        kind, depth, b, p1, _p2, n_fc = state
        acts: list[Action] = [] if kind == "start" else [TERMINATE]
        if depth >= self.max_depth:
            return acts
        if kind in ("start", "conv", "pool"):
            acts += [("conv", f, k, 1) for f in self.filters for k in self.kernels if self._kernel_ok(k, b)]
            if kind == "conv" and b in (LARGE, MEDIUM):
                acts += [("pool", p, s) for p, s in self.pools]
            if b in (MEDIUM, SMALL):
                acts += [("fc", u) for u in self.fc_units]
        elif kind == "fc" and n_fc < self.max_fc:
            acts += [("fc", u) for u in self.fc_units if u <= p1]
        return acts

    def step(self, state: State, size: int, action: Action) -> tuple[State | None, int]:
        """Next (state, representation size); ``None`` when the action terminates."""
        _kind, depth, _b, _p1, _p2, n_fc = state
        if action == TERMINATE:
            return None, size
        if action[0] == "conv":
            _, f, k, _s = action
            return ("conv", depth + 1, self.bin(size), f, k, 0), size
        if action[0] == "pool":
            _, p, s = action
            new = max(1, (size - p) // s + 1)
            return ("pool", depth + 1, self.bin(new), p, s, 0), new
        if action[0] == "fc":
            u = action[1]
            return ("fc", depth + 1, NONE, u, 0, n_fc + 1), size
        raise ValueError(f"unknown action {action!r}")

    # -- architectures ----------------------------------------------------------------------------------------
    def walk(self, actions: Iterable[Action]) -> tuple[State, ...] | None:
        """The visited states of a path (without the terminal), or None when the path leaves the space."""
        acts = tuple(actions)
        cache = self.__dict__.setdefault("_walks", {})
        if acts not in cache:
            cache[acts] = self._walk(acts)
        return cache[acts]

    def _walk(self, acts: tuple[Action, ...]) -> tuple[State, ...] | None:
        state, size = self.start()
        states = [state]
        if not acts or acts[-1] != TERMINATE:
            return None
        for i, a in enumerate(acts):
            if a not in self.actions(state):
                return None
            nxt, size = self.step(state, size, a)
            if nxt is None:
                return tuple(states) if i == len(acts) - 1 else None
            state = nxt
            states.append(state)
        return None


def actions_to_layers(actions: Sequence[Action]) -> list[dict]:
    """The ``cnn`` arch layers an action path describes (convs, max pools, fully connected layers; terminate adds
    nothing); the inverse of `layers_to_actions`."""
    layers = []
    for a in actions:
        if a[0] == "conv":
            layers.append({"type": "conv", "filters": a[1], "kernel": a[2], "stride": a[3]})
        elif a[0] == "pool":
            layers.append({"type": "pool", "op": "max", "size": a[1], "stride": a[2]})
        elif a[0] == "fc":
            layers.append({"type": "fc", "units": a[1]})
    return layers


def layers_to_actions(layers: Sequence[dict]) -> list[Action] | None:
    """The action path of a ``cnn`` arch's layers, or None when a layer is outside MetaQNN's vocabulary."""
    acts: list[Action] = []
    try:
        for layer in layers:
            t = layer.get("type")
            if t == "conv":
                acts.append(("conv", int(layer["filters"]), int(layer["kernel"]), int(layer.get("stride", 1))))
            elif t == "pool":
                if layer.get("op", "max") != "max":
                    return None
                size = int(layer["size"])
                acts.append(("pool", size, int(layer.get("stride", size))))
            elif t == "fc":
                acts.append(("fc", int(layer["units"])))
            else:
                return None
    except (KeyError, TypeError, ValueError):
        return None
    return acts + [TERMINATE]


def _key(t: tuple) -> str:
    return "|".join(str(x) for x in t)


def _state_from_key(s: str) -> State:
    kind, depth, b, p1, p2, n_fc = s.split("|")
    return (kind, int(depth), b, int(p1), int(p2), int(n_fc))


def _action_from_key(s: str) -> Action:
    parts = s.split("|")
    return (parts[0], *(int(x) for x in parts[1:]))


class QTable:
    """Q(s, a) with a default for pairs never updated (the paper's 0.5)."""

    def __init__(self, init: float = 0.5):
        self.init = float(init)
        self.q: dict[State, dict[Action, float]] = {}

    def get(self, s: State, a: Action) -> float:
        """Q(``s``, ``a``), or the default ``init`` for a pair never set."""
        return self.q.get(s, {}).get(a, self.init)

    def set(self, s: State, a: Action, v: float) -> None:
        """Set Q(``s``, ``a``) to ``v``."""
        self.q.setdefault(s, {})[a] = float(v)

    def max(self, s: State, actions: Sequence[Action]) -> float:
        """The largest Q(``s``, a) over ``actions``."""
        return max(self.get(s, a) for a in actions)

    def to_dict(self) -> dict:
        """Plain JSON: the default and the set values, states and actions written as ``|``-joined keys."""
        return {"init": self.init,
                "q": {_key(s): {_key(a): v for a, v in acts.items()} for s, acts in self.q.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> QTable:
        """The inverse of `to_dict`."""
        t = cls(d.get("init", 0.5))
        for s, acts in d.get("q", {}).items():
            for a, v in acts.items():
                t.set(_state_from_key(s), _action_from_key(a), float(v))
        return t


@dataclass
class Memory:
    """One replay entry: an action path (ending in terminate) and its reward."""

    actions: tuple[Action, ...]
    reward: float


class MetaQNN(SearchBackend):
    """Tabular Q-learning architecture search (see the module docstring for the state space and schedule)."""

    name = "metaqnn"

    def __init__(self, *, learning_rate: float = 0.01, discount: float = 1.0, q_init: float = 0.5,
                 replay_number: int = 100, schedule: Sequence[tuple[float, int]] = PAPER_EPSILON_SCHEDULE,
                 max_depth: int | None = None, filters: Sequence[int] = (16, 32, 64),
                 kernels: Sequence[int] = (1, 3, 5), pools: Sequence[Sequence[int]] = ((2, 2), (3, 2)),
                 fc_units: Sequence[int] = (128, 64), max_fc: int = 2, train: dict | None = None,
                 arch_defaults: dict | None = None, max_resamples: int = 200, batch: int = 1,
                 max_warm: int | None = None, max_macs: int | None = None):
        """``replay_number``: networks replayed after each sample (the paper's text says 100, its code 128).
        ``batch``: networks sampled (from the current policy) and trained per ``run_trials`` call -- 1 is the
        paper's sequential loop; more lets an executor train them in parallel (the paper ran ~10 GPUs
        asynchronously). ``max_resamples``: consecutive already-seen networks tolerated before an epsilon level
        is declared exhausted (a small or converged space). ``max_warm``: warm-start specs trained at most
        (default: a quarter of the budget, at least one). ``max_macs``: networks costing more multiply-accumulates
        per image (``trautoml.models.cnn.cnn_macs`` on the dataset's shape) are not trained and are sampled again,
        like the reference implementation's "net too large" reply; None (default) trains every network."""
        self.learning_rate = float(learning_rate)
        self.discount = float(discount)
        self.q_init = float(q_init)
        self.replay_number = int(replay_number)
        self.schedule = tuple((float(e), int(c)) for e, c in schedule)
        self.space_options: dict[str, Any] = dict(max_depth=max_depth, filters=tuple(filters), kernels=tuple(kernels),
                                  pools=tuple(tuple(p) for p in pools), fc_units=tuple(fc_units), max_fc=max_fc)
        self.train = dict(DEFAULT_TRAIN if train is None else train)
        self.arch_defaults = dict(DEFAULT_ARCH if arch_defaults is None else arch_defaults)
        self.max_resamples = int(max_resamples)
        self.batch = max(1, int(batch))
        self.max_warm = max_warm
        self.max_macs = max_macs
        self.q = QTable(self.q_init)
        self.memory: list[Memory] = []
        self.space: StateSpace | None = None

    # -- Q-learning -------------------------------------------------------------------------------------------
    def new_space(self, input_shape: Sequence[int]) -> StateSpace:
        """The `StateSpace` for images of ``input_shape`` (C, H, W): sized by the smaller side, with this backend's
        space options."""
        return StateSpace(input_size=int(min(input_shape[1:])), **self.space_options)

    def update_path(self, actions: Sequence[Action], reward: float) -> bool:
        """One Q-learning sweep over a path, last transition first. False when the path is not in the space."""
        assert self.space is not None, "metaqnn: no state space yet (search() makes one)"
        actions = tuple(actions)
        states = self.space.walk(actions)
        if states is None:
            return False
        last = len(actions) - 1
        for i in range(last, -1, -1):
            s, a = states[i], actions[i]
            if i == last:
                target = reward
            else:
                nxt = states[i + 1]
                target = self.discount * self.q.max(nxt, self.space.actions(nxt))
            old = self.q.get(s, a)
            self.q.set(s, a, old + self.learning_rate * (target - old))
        return True

    def replay(self, rng: random.Random, n: int | None = None) -> None:
        """Experience replay: ``n`` (default ``replay_number``) memories, drawn with replacement, re-applied."""
        if not self.memory:
            return
        for _ in range(self.replay_number if n is None else n):
            m = self.memory[rng.randrange(len(self.memory))]
            self.update_path(m.actions, m.reward)

    def sample_path(self, epsilon: float, rng: random.Random) -> tuple[Action, ...]:
        """One epsilon-greedy walk from the input to terminate (ties among best actions broken at random)."""
        assert self.space is not None, "metaqnn: no state space yet (search() makes one)"
        state: State | None
        state, size = self.space.start()
        path: list[Action] = []
        while True:
            acts = self.space.actions(state)
            if rng.random() < epsilon:
                a = acts[rng.randrange(len(acts))]
            else:
                best = self.q.max(state, acts)
                tops = [x for x in acts if self.q.get(state, x) == best]
                a = tops[rng.randrange(len(tops))]
            path.append(a)
            state, size = self.space.step(state, size, a)
            if state is None:
                return tuple(path)

    def greedy_path(self) -> tuple[Action, ...]:
        """The fully greedy walk (ties: first action in the enumeration order)."""
        assert self.space is not None, "metaqnn: no state space yet (search() makes one)"
        state: State | None
        state, size = self.space.start()
        path: list[Action] = []
        while state is not None:
            here = state
            acts = self.space.actions(here)
            a = max(acts, key=lambda x: self.q.get(here, x))
            path.append(a)
            state, size = self.space.step(state, size, a)
        return tuple(path)

    # -- specs ------------------------------------------------------------------------------------------------
    def to_spec(self, actions: Sequence[Action]) -> ModelSpec:
        """The ``cnn`` ModelSpec of an action path: its layers, the backend's ``arch_defaults`` and training
        settings."""
        arch = {"layers": actions_to_layers(actions), **self.arch_defaults}
        return ModelSpec("cnn", arch, dict(self.train))

    # -- persistence ------------------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the Q-table and the replay memory (paths as ``cnn`` layers, with their rewards) to ``path`` as JSON,
        atomically (the inverse of `load`)."""
        data = {"format": Q_FORMAT, "backend": self.name, "table": self.q.to_dict(),
                "memory": [{"layers": actions_to_layers(m.actions), "reward": m.reward} for m in self.memory]}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    def load(self, path: Path) -> bool:
        """Load a saved Q-table (its memory is kept in the file for the record; rewards measured on another
        dataset are not replayed here, the Q-table already holds them)."""
        if not path.is_file():
            return False
        data = json.loads(path.read_text())
        if data.get("format") != Q_FORMAT:
            raise ValueError(f"{path}: unsupported MetaQNN Q-table format {data.get('format')!r}")
        self.q = QTable.from_dict(data["table"])
        return True

    # -- the search -------------------------------------------------------------------------------------------
    def search(self, task: SearchTask) -> SearchResult:
        rng = task.rng()
        budget = task.budget
        budget.trial_count()  # validates it
        epochs = float(budget.max_epochs)
        self.space = self.new_space(task.dataset.input_shape)
        self.q = QTable(self.q_init)
        self.memory = []
        q_path = Path(task.state_dir) / Q_FILE if task.state_dir is not None else None
        loaded = self.load(q_path) if q_path is not None else False

        trials: list[Trial] = []
        measured: dict[tuple[Action, ...], float] = {}   # architectures trained in this search -> reward
        seed_counter = [0]

        def train(specs: list[ModelSpec]) -> list[Trial]:
            reqs = []
            for spec in specs:
                reqs.append(TrialRequest(spec, epochs, task.seed + seed_counter[0]))
                seed_counter[0] += 1
            got = task.run_trials(reqs)
            trials.extend(got)
            return got

        def reward_of(trial: Trial) -> float:
            return float(trial.val_accuracy) if trial.status == "ok" else 0.0

        # Warm start from earlier models: train them, remember them, replay them into the Q-table.
        warm_specs = [s for s in task.warm_start if s.space == "cnn"]
        n_warm_max = self.max_warm if self.max_warm is not None else max(1, budget.max_trials // 4)
        warm_specs = list(dict.fromkeys(warm_specs))[: max(0, min(n_warm_max, budget.max_trials))]
        n_warm_replayed = 0
        if warm_specs:
            task.progress(f"metaqnn: training {len(warm_specs)} warm-start model(s)")
            for spec, trial in zip(warm_specs, train(warm_specs)):
                acts = layers_to_actions(spec.arch.get("layers", []))
                if acts is not None and self.space.walk(acts) is not None:
                    path = tuple(acts)
                    measured.setdefault(path, reward_of(trial))
                    self.memory.append(Memory(path, reward_of(trial)))
                    n_warm_replayed += 1
            if self.memory:
                self.replay(rng, self.replay_number * len(self.memory))
        warm = loaded or n_warm_replayed > 0

        schedule = epsilon_schedule(budget.max_trials - len(warm_specs), warm=warm, base=self.schedule)
        task.progress(f"metaqnn: epsilon schedule {schedule}" + (" (warm)" if warm else ""))

        def too_large(path: tuple[Action, ...]) -> bool:
            return self.max_macs is not None and cnn_macs(self.to_spec(path).arch, task.dataset.input_shape,
                                                          task.dataset.num_classes) > self.max_macs

        repeats = too_big = 0
        exhausted: list[float] = []
        for epsilon, n_models in schedule:
            new = 0
            resamples = 0
            while new < n_models and not task.out_of_time():
                # Sample up to `batch` new architectures from the current policy; seen ones reuse their reward.
                fresh: list[tuple[Action, ...]] = []
                while len(fresh) < min(self.batch, n_models - new) and resamples < self.max_resamples:
                    path = self.sample_path(epsilon, rng)
                    if path in measured:
                        repeats += 1
                        resamples += 1
                        self.memory.append(Memory(path, measured[path]))
                        self.replay(rng)
                    elif path in fresh:
                        resamples += 1
                    elif too_large(path):
                        too_big += 1
                        resamples += 1
                    else:
                        fresh.append(path)
                        resamples = 0
                if not fresh:
                    exhausted.append(epsilon)
                    task.progress(f"metaqnn: epsilon {epsilon}: {self.max_resamples} samples in a row were "
                                  "already trained (or too large); moving on")
                    break
                for path, trial in zip(fresh, train([self.to_spec(p) for p in fresh])):
                    r = reward_of(trial)
                    measured[path] = r
                    self.memory.append(Memory(path, r))
                    self.replay(rng)
                    new += 1
                task.progress(f"metaqnn: epsilon {epsilon}: {new}/{n_models} models, best "
                              f"{max(measured.values()):.4f}")
            if task.out_of_time():
                break

        if q_path is not None:
            self.save(q_path)
        best = best_of(trials)
        greedy = self.greedy_path()
        return SearchResult(best=best.spec, best_val_accuracy=best.val_accuracy, trials=trials,
                            best_resource=best.resource,
                            info={"epsilon_schedule": schedule, "unique_models": len(measured),
                                  "repeats": repeats, "too_large": too_big, "warm_start_models": len(warm_specs),
                                  "q_table_loaded": loaded, "exhausted_levels": exhausted,
                                  "q_states": len(self.q.q), "max_depth": self.space.max_depth,
                                  "size_threshold": self.space.threshold,
                                  "greedy_layers": actions_to_layers(greedy)})
