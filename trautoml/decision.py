"""What trautoml decided for one dataset (paper 002, Algorithm 1), in a form people and MLflow can read."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

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
    has none); ``run_id``: the dataset's MLflow run; ``extra``: anything else worth keeping (JSON)."""

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
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if self.reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, got {self.reason!r}")

    @property
    def total_seconds(self) -> float:
        """Profile, search and training seconds together."""
        return self.profile_seconds + self.search_seconds + self.train_seconds

    def to_dict(self) -> dict:
        """The decision as plain JSON (the spec as its dict)."""
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Decision":
        """The decision `to_dict` wrote (``d``)."""
        return cls(**{**d, "spec": ModelSpec.from_dict(d["spec"])})
