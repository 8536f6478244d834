"""Search backends behind one interface (`search_backends.base.SearchBackend`), found by name."""
from .base import SearchBackend, SearchBudget, SearchResult, SearchTask, Trial, TrialRequest
from .registry import available_backends, get_backend, register_backend

__all__ = ["SearchBackend", "SearchBudget", "SearchResult", "SearchTask", "Trial", "TrialRequest",
           "available_backends", "get_backend", "register_backend"]
