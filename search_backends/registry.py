"""Find search backends by name: `trautoml.registry.BACKENDS` (entry-point group ``trautoml.search_backends``,
ours and third parties', plus ``register_backend`` at run time)."""
from __future__ import annotations

from trautoml.registry import BACKENDS
from trautoml.search import SearchBackend


def register_backend(name: str, cls: type[SearchBackend]) -> None:
    """Register a backend class at run time (notebooks, tests); installed packages use entry points."""
    BACKENDS.register(name, cls)


def available_backends() -> list[str]:
    """Every backend name, sorted."""
    return sorted(BACKENDS.names())


def backend_class(name: str) -> type[SearchBackend]:
    """The backend class of ``name`` (ValueError naming the known ones)."""
    return BACKENDS.get(name)


def get_backend(name: str, **options) -> SearchBackend:
    """An instance of the backend ``name`` with ``options``."""
    return backend_class(name)(**options)
