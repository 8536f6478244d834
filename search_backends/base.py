"""The search-backend interface, re-exported for backends: it lives in the core, `trautoml.search`."""
from trautoml.search import (RunTrials, SearchBackend, SearchBudget, SearchBudgetSpent, SearchResult, SearchTask, Trial,
                             TrialRequest, best_of, run_search)

__all__ = ["RunTrials", "SearchBackend", "SearchBudget", "SearchBudgetSpent", "SearchResult", "SearchTask", "Trial",
           "TrialRequest", "best_of", "run_search"]
