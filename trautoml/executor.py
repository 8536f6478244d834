"""One small interface that runs independent trials (landmarker trainings, search-backend trials).

``Executor.map(fn, items)`` returns ``[fn(item) for item in items]`` in order. ``fn`` must be a picklable
top-level function. Backends: ``serial`` (in process), ``local`` (a process pool over the machine's cores).
A distributed engine plugs in behind the same method.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterable, Protocol


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]: ...


class SerialExecutor:
    name = "serial"

    def map(self, fn, items):
        return [fn(item) for item in items]


def _init_worker() -> None:
    # Each worker trains on one core: n workers x 1 thread beats n workers x n threads fighting over the cores.
    import torch

    torch.set_num_threads(1)


class LocalExecutor:
    """A process pool over the machine's cores (``workers`` defaults to ``os.cpu_count()``)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: safe with torch and threads; fork after torch initialised its thread pools can deadlock.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_init_worker)
        return self._pool

    def map(self, fn, items):
        items = list(items)
        if self.workers == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._ensure_pool().map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def make_executor(name: str = "local", **kwargs) -> Executor:
    if name == "serial":
        return SerialExecutor()
    if name == "local":
        return LocalExecutor(**kwargs)
    raise ValueError(f"unknown executor {name!r}; expected 'local' or 'serial'")
