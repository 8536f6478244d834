"""Worker processes that work from any ``__main__``: a plain script without ``if __name__ == "__main__":``,
``python -``, ``python -c``, a notebook or an IPython session.

The standard library's ``spawn`` start method re-imports the parent's main module in every worker, which reruns an
unguarded script (in our case it then waited forever for the workspace lock its parent held) and fails outright on a
script read from stdin. Workers here are started by loky (vendored by joblib, which scikit-learn brings), whose
processes never import the parent's ``__main__``; every function we send them is a top-level function of an
importable module.

Each worker also
- ends when the process that started it is gone (`exit_with_parent`), so a killed driver leaves no orphans;
- trains on one thread (n workers × 1 thread beat n workers × n threads fighting over the cores);
- writes its stderr to a file of its own, so that when it dies the error says why (`death_report`): its exit code
  or signal and the last lines it wrote.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

STDERR_TAIL_LINES = 5


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Called in a worker: end it once the process that started it is gone. The worker of a killed driver (SIGKILL,
    out of memory) would otherwise wait on its task queue forever."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init_worker(parent_pid: int, stderr_dir: str | None, one_thread: bool) -> None:
    exit_with_parent(parent_pid)
    if stderr_dir is not None:
        fd = os.open(Path(stderr_dir) / f"{os.getpid()}.stderr", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 2)
        os.close(fd)
    if one_thread:
        import torch

        torch.set_num_threads(1)


class WorkerPool:
    """A pool of ``workers`` processes (see the module docstring) with ``submit(fn, *args)`` → Future.

    ``capture_stderr``: workers write their stderr to files in a private folder (removed by ``close``), read back by
    `death_report` when one dies. ``one_thread``: workers set torch to one thread.
    """

    def __init__(self, workers: int, capture_stderr: bool = True, one_thread: bool = True):
        import warnings

        from joblib.externals.loky import ProcessPoolExecutor

        # loky replaces a worker whose memory grew by 300 MB (a torch worker after a few large trials) and warns on
        # stderr each time; the replacement is routine here, and a worker's real death is reported by death_report
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor",
                                category=UserWarning)

        self.stderr_dir = tempfile.mkdtemp(prefix="trautoml-workers-") if capture_stderr else None
        self._pool = ProcessPoolExecutor(workers, initializer=_init_worker,
                                         initargs=(os.getpid(), self.stderr_dir, one_thread))
        self._processes: dict[int, BaseProcess] = {}

    def submit(self, fn, *args):
        """Run ``fn(*args)`` in a worker; returns its Future (BrokenProcessPool from ``result()`` when a worker
        died)."""
        future = self._pool.submit(fn, *args)
        # the pool starts its processes on the first submit; keep them, to read their exit codes after a death
        self._processes.update(getattr(self._pool, "_processes", None) or {})
        return future

    def pids(self) -> list[int]:
        """The process ids of the workers still alive."""
        return [pid for pid, p in self._processes.items() if p.exitcode is None]

    def death_report(self) -> str:
        """Why this pool's workers died: exit code or signal of each dead one, and the tail of its stderr."""
        parts = []
        for pid, proc in self._processes.items():
            proc.join(timeout=2)
            code = proc.exitcode
            if code is None or code == 0:
                continue
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
            tail = self._stderr_tail(pid)
            parts.append(f"worker {pid} {how}" + (f"; its stderr ended: {tail}" if tail else "; no stderr"))
        return "; ".join(parts) or "a worker died (no exit status available)"

    def _stderr_tail(self, pid: int) -> str:
        if self.stderr_dir is None:
            return ""
        path = Path(self.stderr_dir) / f"{pid}.stderr"
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - 4096))
                lines = fh.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in lines[-STDERR_TAIL_LINES:] if line.strip())

    def close(self) -> None:
        """Shut the pool down without waiting, killing its workers, and remove the stderr folder."""
        self._pool.shutdown(wait=False, kill_workers=True)
        if self.stderr_dir is not None:
            shutil.rmtree(self.stderr_dir, ignore_errors=True)
