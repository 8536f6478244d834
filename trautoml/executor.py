"""One small interface that runs independent trials (landmarker trainings, search-backend trials).

``Executor.map(fn, items, on_error=None)`` returns ``[fn(item) for item in items]`` in order. ``fn`` must be a
picklable top-level function. Trial functions catch their own exceptions (a diverging or crashing model is a
*failed trial*, not an executor error); what reaches the executor is the loss of a worker (killed, out of memory).
Such an item is retried up to ``max_retries`` times on a fresh worker; when it still fails, ``on_error(item, exc)``
supplies its result (e.g. a failed Trial) or, without ``on_error``, the error propagates.

Backends: ``serial`` (in process), ``local`` (a process pool over the machine's cores), ``ray`` (a Ray cluster,
local or remote: ``pip install 'trautoml[ray]'``).
"""
from __future__ import annotations

import logging
import os
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol
from collections.abc import Callable, Iterable, Sequence

from trautoml.registry import Registry
from trautoml.workers import WorkerPool

log = logging.getLogger(__name__)
OnError = Callable[[Any, BaseException], Any]


class Executor(Protocol):
    """What runs independent trials (see the module docstring); ``name`` is its key in ``EXECUTORS``."""

    name: str

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], on_error: OnError | None = None) -> list[Any]:
        """``[fn(item) for item in items]``, in order. An item whose worker is lost (after the executor's retries)
        gets ``on_error(item, exc)`` as its result; without ``on_error`` the error propagates."""
        ...

    def close(self) -> None:
        """Release the workers (and whatever else the executor started)."""
        ...


class SerialExecutor:
    """Runs every item in this process, one after the other (no workers, no retries)."""

    name = "serial"

    def map(self, fn, items, on_error=None):
        """``[fn(item) for item in items]`` in this process; an exception propagates (``on_error`` is unused)."""
        return [fn(item) for item in items]

    def close(self) -> None:
        """Nothing to release."""


class LocalExecutor:
    """A process pool over the machine's cores (``workers`` defaults to ``os.cpu_count()``).

    A worker that dies (SIGKILL, OOM) breaks a ``ProcessPoolExecutor`` for every pending item; those items are
    retried each in a process of its own, so only the item whose worker keeps dying uses up its ``max_retries``.
    """

    name = "local"

    def __init__(self, workers: int | None = None, max_retries: int = 3):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_retries = max_retries
        self._pool: WorkerPool | None = None

    def _ensure_pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(self.workers)
        return self._pool

    def worker_pids(self) -> list[int]:
        """The process ids of the pool's live workers (none before the first parallel `map` or after `close`)."""
        return self._pool.pids() if self._pool else []

    def map(self, fn, items, on_error=None):
        """``[fn(item) for item in items]``, in order, over the pool (in this process when ``workers`` is 1 or there is
        at most one item). Items lost to a dying worker are retried each in a process of its own, up to ``max_retries``
        times; then ``on_error(item, exc)`` gives the result, or BrokenProcessPool is raised."""
        items = list(items)
        if self.workers == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        results: list[Any] = [None] * len(items)
        pool = self._ensure_pool()
        futures = {i: pool.submit(fn, item) for i, item in enumerate(items)}
        lost = []
        for i, fut in futures.items():
            try:
                results[i] = fut.result()
            except BrokenProcessPool:
                lost.append(i)
        if lost:
            log.warning("%s; retrying %d unfinished item(s) in isolation", pool.death_report(), len(lost))
            self.close()  # the shared pool is broken; the next map starts a fresh one
            self._retry_isolated(fn, items, lost, results, on_error)
        return results

    def _retry_isolated(self, fn, items, lost: list[int], results: list, on_error) -> None:
        """A broken pool fails every unfinished item, not only the one whose worker died. Each is retried in a
        process of its own (``workers`` at a time), so a death is charged to the item that caused it: an item that
        merely ran beside a dying one costs one rerun, never its retry budget."""
        attempts = dict.fromkeys(lost, 0)
        pending = list(lost)
        while pending:
            batch, pending = pending[:self.workers], pending[self.workers:]
            pools = {i: WorkerPool(1) for i in batch}
            futures = {i: pools[i].submit(fn, items[i]) for i in batch}
            for i, fut in futures.items():
                try:
                    results[i] = fut.result()
                except BrokenProcessPool:
                    attempts[i] += 1
                    why = pools[i].death_report()
                    if attempts[i] < self.max_retries:
                        pending.append(i)
                    elif on_error is not None:
                        results[i] = on_error(items[i], BrokenProcessPool(why))
                    else:
                        raise BrokenProcessPool(f"item {i}: its worker died {attempts[i] + 1} times; giving up "
                                                f"(last: {why})") from None
                finally:
                    pools[i].close()

    def close(self) -> None:
        """Shut the pool down, killing its workers; the next `map` starts a fresh one."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __del__(self):  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:  # noqa: BLE001 - a finaliser must not raise; at exit modules may already be gone
            pass


class RayExecutor:
    """Trials as Ray tasks: ``address`` of a running cluster (``ray://`` or ``HOST:PORT``), or ``None`` for a local
    Ray started on demand (and stopped by ``close``; a cluster we only connected to is left running).

    Per-trial resources: ``num_cpus`` / ``num_gpus`` per task. A worker that dies mid-task is retried by Ray itself
    (``max_retries``); a task that still fails goes to ``on_error``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0, max_retries: int = 2,
                 local_cpus: int | None = None):
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        if address is None:
            # A Ray of our own stays on loopback; Ray reads this when it is first imported.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError as err:  # pragma: no cover - depends on the extra
            raise RuntimeError("the ray executor needs Ray: pip install 'trautoml[ray]'") from err
        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=local_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
                self._started_here = True
        self.options = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": max_retries}

    def map(self, fn, items, on_error=None):
        """``[fn(item) for item in items]``, in order, each item a Ray task with the per-task ``num_cpus``, ``num_gpus``
        and ``max_retries``. A task that crashes or raises goes to ``on_error(item, exc)``, or the error propagates
        without it."""
        ray = self._ray
        remote = ray.remote(_ray_call).options(**self.options)
        refs = [remote.remote(fn, item) for item in items]
        results = []
        for item, ref in zip(items, refs):
            try:
                results.append(ray.get(ref))
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayTaskError,
                    ray.exceptions.NodeDiedError) as exc:
                if on_error is None:
                    raise
                results.append(on_error(item, exc))
        return results

    def close(self) -> None:
        """Shut down the Ray started by this executor (a cluster it only connected to is left running)."""
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
            self._started_here = False


def _ray_call(fn, item):
    import torch

    torch.set_num_threads(1)
    return fn(item)


#: Executors by name (entry-point group ``trautoml.executors`` adds others; see `trautoml.registry`).
EXECUTORS = Registry("executor", "trautoml.executors")
for _cls in (LocalExecutor, SerialExecutor, RayExecutor):
    EXECUTORS.register(_cls.name, _cls)


def make_executor(name: str = "local", **kwargs) -> Executor:
    """An executor by name (``local``, ``serial``, ``ray`` or a plug-in's); ``kwargs`` go to its constructor."""
    return EXECUTORS.get(name)(**kwargs)


def executor_names() -> Sequence[str]:
    """Every executor name."""
    return EXECUTORS.names()
