"""Find search backends by name: the entry-point group ``trautoml.search_backends`` (ours and third parties')."""
from __future__ import annotations

from importlib.metadata import entry_points

from .base import SearchBackend

_RUNTIME: dict[str, type[SearchBackend]] = {}


def register_backend(name: str, cls: type[SearchBackend]) -> None:
    """Register a backend class at run time (notebooks, tests); installed packages use entry points."""
    _RUNTIME[name] = cls


def available_backends() -> list[str]:
    return sorted({ep.name for ep in entry_points(group="trautoml.search_backends")} | set(_RUNTIME))


def backend_class(name: str) -> type[SearchBackend]:
    if name in _RUNTIME:
        return _RUNTIME[name]
    for ep in entry_points(group="trautoml.search_backends"):
        if ep.name == name:
            return ep.load()
    raise ValueError(f"unknown search backend {name!r}; available: {', '.join(available_backends())}")


def get_backend(name: str, **options) -> SearchBackend:
    return backend_class(name)(**options)
