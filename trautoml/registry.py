"""One small registry per plug-in kind (after MLflow's ``TrackingStoreRegistry``): a name → object table filled
by ``register`` (built-ins, notebooks, tests) and by an entry-point group (installed packages, third parties').

The core reaches plug-in packages (``search_backends``, ``landmarkers``, anyone's) only through these tables, so
``import trautoml`` imports none of them; an entry point is loaded when its name is first asked for.
An unknown name gets one error format everywhere: ``unknown <kind> 'x'; available: a, b, c``.
"""
from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points
from typing import Any
from collections.abc import Iterator


def _path_state() -> tuple:
    """sys.path with each folder's modification time: what decides which distributions are installed."""
    state: list[tuple[str, int | None]] = []
    for p in sys.path:
        try:
            state.append((p, os.stat(p or ".").st_mtime_ns))
        except OSError:
            state.append((p, None))
    return tuple(state)


class Registry:
    """Objects of one plug-in ``kind`` by name; ``group``: the entry-point group that also provides them."""

    def __init__(self, kind: str, group: str | None = None):
        self.kind, self.group = kind, group
        self._objects: dict[str, Any] = {}   # registered by name
        self._loaded: dict[str, Any] = {}    # entry points loaded so far
        self._eps: tuple | None = None  # (sys.path state, entry points by name)

    def register(self, name: str, obj: Any) -> Any:
        """Add (or replace) ``name``; returns ``obj``."""
        self._objects[name] = obj
        return obj

    def _entry_points(self) -> dict:
        # Scanning the installed distributions costs milliseconds and a name check (``"x" in registry``) happens on
        # every URI parsed, so the scan is kept until sys.path or one of its folders changes (a plug-in installed
        # into a running notebook changes its site-packages folder).
        if self.group is None:
            return {}
        key = _path_state()
        if self._eps is None or self._eps[0] != key:
            self._eps = (key, {ep.name: ep for ep in entry_points(group=self.group)})
        return self._eps[1]

    def names(self) -> list[str]:
        """Registered names first (in registration order), then entry points not registered by name."""
        registered = list(self._objects)
        return registered + sorted(set(self._entry_points()) - set(registered))

    def get(self, name: str) -> Any:
        """The object of ``name`` (an entry point is loaded the first time); ValueError naming what exists."""
        if name in self._objects:
            return self._objects[name]
        if name not in self._loaded:
            ep = self._entry_points().get(name)
            if ep is None:
                raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
            self._loaded[name] = ep.load()
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._objects or name in self._loaded
                                          or name in self._entry_points())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __getitem__(self, name: str) -> Any:
        return self.get(name)


#: Search backends: ``search(task) -> SearchResult`` (`trautoml.search.SearchBackend`).
BACKENDS = Registry("search backend", "trautoml.search_backends")
#: Backends a search mechanism wraps around the named one (``predefined``: a reused backbone, a searched head).
MECHANISM_BACKENDS = Registry("mechanism backend", "trautoml.mechanism_backends")
#: Dataset profilers: the module-like object behind ``TrAutoML.profile`` (``landmarkers``).
PROFILERS = Registry("profiler", "trautoml.profilers")

# The data layer's plug-in kinds: the built-ins are registered when ``trautoml.data`` is imported (which any
# ``load_dataset``/``load_stream`` call does first), so these tables import nothing themselves.
#: Dataset URI schemes: ``scheme:TARGET?query`` → a ``trautoml.data.loaders.DatasetSource``
#: (``builtin``, ``npz``, ``folder``, ``torchvision``).
DATASET_SOURCES = Registry("dataset URI scheme", "trautoml.dataset_sources")
#: Builtin datasets: ``builtin:NAME`` → a callable returning a ``trautoml.data.sources.RawSource``.
BUILTIN_DATASETS = Registry("builtin dataset", "trautoml.builtin_datasets")
#: Stream URI schemes: ``scheme:REST`` → ``source(REST)`` returning dataset URIs and ``StreamItem``s
#: (``stream``, ``manifest``, ``folder-stream``).
STREAM_SOURCES = Registry("stream URI scheme", "trautoml.stream_sources")
#: Named streams: ``stream:NAME`` → a callable returning dataset URIs and ``StreamItem``s, in arrival order.
STREAMS = Registry("stream", "trautoml.streams")
