"""A minimal third-party search backend: trains the warm-start specs (or one fixed spec) and keeps the best."""
from trautoml.search import SearchBackend, SearchResult, SearchTask, TrialRequest, best_of
from trautoml.models.spec import ModelSpec

FIXED = ModelSpec("cnn", {"layers": [{"type": "conv", "filters": 8, "kernel": 3, "stride": 1}],
                          "activation": "relu", "norm": "none", "dropout": 0.0})


class FakeBackend(SearchBackend):
    name = "fake-plugin"

    def __init__(self, tag: str = "default"):
        self.tag = tag

    def search(self, task: SearchTask) -> SearchResult:
        specs = list(task.warm_start) or [FIXED]
        trials = task.run_trials([TrialRequest(s, task.budget.max_epochs, task.seed) for s in specs])
        best = best_of(trials)
        return SearchResult(best=best.spec, best_val_accuracy=best.val_accuracy, trials=trials,
                            best_resource=task.budget.max_epochs, info={"backend": self.name, "tag": self.tag})
