"""What trautoml decided for one dataset (paper 002, Algorithm 1), in a form people and MLflow can read."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from trautoml.models.spec import ModelSpec

OUTCOMES = ("reused", "searched")
#: empty-cluster: the MAP cluster was empty → search, found a group; test-rejected: the Behrens–Fisher test
#: refused the merge → search, found a group; test-accepted: join the group and reuse its model.
REASONS = ("empty-cluster", "test-rejected", "test-accepted")


@dataclass
class Decision:
    """One dataset's decision. ``outcome``: one of `OUTCOMES`; ``reason``: one of `REASONS`; ``spec``: the model the
    dataset got, ``backend`` the search backend that found it (or found it for the group); ``val_accuracy`` /
    ``test_accuracy``: that model trained on this dataset; ``*_seconds``: wall time of each step; ``F`` / ``p_value``:
    the Behrens–Fisher test, ``log_posterior`` / ``runner_up_log_posterior``: the MH grouper's (None where the grouper
    has none); ``run_id``: the dataset's MLflow run.

    Where the dataset came from and what the ingest ran with: ``uri``, ``family`` (its stream's family, if given),
    ``preset``, ``grouper``. What it cost: ``final_epochs`` of the final training; ``profile_cached`` (the profile
    came from the workspace cache); ``trials`` run by the search, ``cached_trials`` of them from the cache and
    ``failed_trials`` failed; ``trial_seconds``: the trials' measured seconds (a cached one's when it ran);
    ``search_own_seconds``: the backend's compute outside its trials. ``founded``: the dataset founded its group;
    ``search``: the backend's report (`trautoml.search.SearchResult.info`); ``reuse_check``: the accuracy guard's
    check after a reuse (`trautoml.decide.ReuseCheck`); ``escalated``: set when a reuse fell short and a search
    ran (``kept``: the outcome kept, ``group_model``: the group's spec); ``n_train`` / ``n_classes``: the dataset's
    training images and classes (the accuracy guard's size and chance corrections).

    What it cost in training FLOPs, a unit the machine's load cannot change (`trautoml.models.flops`: forward and
    backward per image trained, forward per image evaluated): ``profile_flops`` (the landmarker trials),
    ``search_flops`` (the search's trials, an escalation's included) and ``train_flops`` (every final training, a
    reuse's and an escalation's included). Cached work is charged the FLOPs it counted when it ran. 0.0 in a
    decision stored before FLOPs were counted.

    ``weights``: the key the dataset's trained weights are kept under in the workspace (`Workspace.load_weights`);
    ``init_from``: a reuse fine-tuned from a member's weights: that member (``dataset``), its ``weights``, the
    fine-tuning's ``epochs``, the network tensors ``loaded`` of ``total``, and ``longer`` (epochs trained on when the
    accuracy guard found it short). None: trained afresh."""

    dataset: str
    content_hash: str
    group: str
    outcome: str
    reason: str
    spec: ModelSpec
    backend: str
    val_accuracy: float
    test_accuracy: float
    profile_seconds: float
    search_seconds: float
    train_seconds: float
    explanation: str = ""
    F: float | None = None
    p_value: float | None = None
    log_posterior: float | None = None
    runner_up_log_posterior: float | None = None
    run_id: str | None = None
    uri: str | None = None
    family: str | None = None
    preset: str | None = None
    grouper: str | None = None
    final_epochs: float | None = None
    profile_cached: bool = False
    trials: int = 0
    cached_trials: int = 0
    failed_trials: int = 0
    trial_seconds: float = 0.0
    search_own_seconds: float = 0.0
    founded: bool = False
    search: dict = field(default_factory=dict)
    reuse_check: dict | None = None
    escalated: dict | None = None
    n_train: int | None = None
    n_classes: int | None = None
    profile_flops: float = 0.0
    search_flops: float = 0.0
    train_flops: float = 0.0
    weights: str | None = None
    init_from: dict | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if self.reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, got {self.reason!r}")

    @property
    def total_seconds(self) -> float:
        """Profile, search and training seconds together."""
        return self.profile_seconds + self.search_seconds + self.train_seconds

    @property
    def total_flops(self) -> float:
        """Profile, search and training FLOPs together."""
        return self.profile_flops + self.search_flops + self.train_flops

    def to_dict(self) -> dict:
        """The decision as plain JSON (the spec as its dict)."""
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Decision:
        """The decision `to_dict` wrote (``d``). A record that keeps these details in an ``extra`` dict, as
        workspaces written by trautoml 0.1's first releases do, is read too; keys neither form knows are ignored."""
        d = dict(d)
        d.update({k: v for k, v in (d.pop("extra", None) or {}).items() if k not in d})
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known} | {"spec": ModelSpec.from_dict(d["spec"])})
