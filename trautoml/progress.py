"""A small progress printer on stderr (no tqdm): stage lines and redrawn bars.

On a terminal a bar redraws in place (``\\r``); into a file or pipe it prints one line when it completes, so logs
stay readable. ``quiet=True`` prints nothing.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Stage lines and bars on ``stream`` (default stderr). ``quiet``: print nothing; ``width``: a bar's width in
    characters. A write that fails (a closed pipe) is ignored."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, width: int = 24):
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._open_bar = False
        #: Called before every stage line, printed or not: a long run's safe points (the CLI re-raises a stop signal
        #: there that Python swallowed inside a finaliser).
        self.checkpoint: Callable[[], None] | None = None

    @property
    def _tty(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must not end an ingest
            pass

    def message(self, text: str) -> None:
        """Print ``text`` as a line of its own, ending an open bar's line first."""
        if self.checkpoint is not None:
            self.checkpoint()
        if self.quiet:
            return
        if self._open_bar:
            self._write("\n")
            self._open_bar = False
        self._write(text + "\n")

    def bar(self, label: str) -> Bar:
        """A new `Bar` labelled ``label``."""
        return Bar(self, label)


class Bar:
    """``bar(done, total)`` draws; the bar closes itself when ``done == total``."""

    def __init__(self, progress: Progress, label: str):
        self.p, self.label = progress, label
        self.t0 = time.monotonic()
        self.closed = False

    def __call__(self, done: int, total: int) -> None:
        p = self.p
        if p.quiet or self.closed:
            return
        total = max(1, int(total))
        done = min(int(done), total)
        finished = done >= total
        if not p._tty and not finished:
            return
        filled = round(p.width * done / total)
        line = (f"{self.label} [{'#' * filled}{'.' * (p.width - filled)}] {done}/{total} "
                f"{time.monotonic() - self.t0:5.1f}s")
        if p._tty:
            p._write("\r" + line + ("\n" if finished else ""))
            p._open_bar = not finished
        else:
            p._write(line + "\n")
        self.closed = finished
