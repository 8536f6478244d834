"""The three search mechanisms of paper 002 §1 ii, each a way to build the search backend for a stream.

* ``scratch``: the named backend searches whole models (architecture + hyper-parameters);
* ``cells``: ENAS searches a normal and a reduction cell; a dataset that joins the group reuses the cells, stacked
  to its own depth and width (``trautoml.models.spec.adapt_spec``), fine-tuned where the group's weights fit (the
  same classes; ``trautoml.models.transfer``), else with weights trained afresh;
* ``predefined``: a given backbone (a torchvision architecture with a local weights file, a saved module, or a
  model in MLflow) is reused up to a cut layer, frozen or fine-tuned, and the named backend (``random`` or
  ``hyperband``) searches only the head on top (``search_backends.predefined``).
"""
from __future__ import annotations

import inspect
import json

from trautoml.registry import BACKENDS, MECHANISM_BACKENDS
from trautoml.search import SearchBackend

backend_class = BACKENDS.get

MECHANISMS = ("scratch", "cells", "predefined")


def accepted_kwargs(cls, offered: dict) -> dict:
    """The entries of ``offered`` that ``cls(...)`` names as parameters (third-party classes take what they know)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in offered.items() if k in params}


def make_search_backend(backend: str, mechanism: str = "scratch", options: dict | None = None,
                        defaults: dict | None = None, backbone: dict | None = None,
                        freeze: bool = True) -> SearchBackend:
    """The backend object for ``backend`` under ``mechanism``.

    ``options`` go to the backend's constructor as given (unknown ones raise); ``defaults`` (e.g. the preset's
    ``eta``) only where the constructor names them.
    """
    options, defaults = dict(options or {}), dict(defaults or {})
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}; available: {', '.join(MECHANISMS)}")
    if mechanism != "predefined" and backbone is not None:
        raise ValueError("a backbone is only used by the predefined mechanism (--mechanism predefined)")
    if mechanism == "cells":
        if backend != "enas":
            raise ValueError(f"the cells mechanism searches cells with ENAS: use --backend enas, not {backend!r}")
        if options.setdefault("space", "cells") != "cells":
            raise ValueError(f"the cells mechanism needs ENAS's cell space, not space={options['space']!r}")
    if mechanism == "predefined":
        PredefinedSearch = MECHANISM_BACKENDS.get("predefined")  # search_backends.predefined

        if backbone is None:
            raise ValueError("the predefined mechanism needs a backbone (--backbone KIND:NAME_OR_PATH)")
        if backend not in ("random", "hyperband"):
            raise ValueError(f"the predefined mechanism searches heads with random or hyperband, not {backend!r}")
        backend_class(backend)  # a clear error if it is not installed
        inner = accepted_kwargs(backend_class(backend), defaults) | options
        try:
            return PredefinedSearch(backbone=backbone, freeze=freeze, inner=backend, **inner)
        except OSError as err:  # a missing weights file is bad input, like any other
            raise ValueError(str(err)) from None
    cls = backend_class(backend)  # ValueError naming the known backends
    try:
        return cls(**(accepted_kwargs(cls, defaults) | options))
    except TypeError as err:
        raise ValueError(f"backend {backend!r} does not take these options: {err}") from None


def parse_backbone(text: str, weights: str | None = None, cut: str | None = None) -> dict:
    """The backbone dict of ``search_backends.predefined`` from the command line: ``torchvision:NAME`` (with a local
    ``weights`` file), ``mlflow:MODEL_URI``, or the dict itself as JSON (``{"kind": "file", "path": ..., "spec":
    ...}``); ``cut`` names the layer up to which it is reused (a child name, or a number of children)."""
    if text.lstrip().startswith("{"):
        try:
            b = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"backbone JSON: {err}") from None
    else:
        kind, _, ref = text.partition(":")
        if not ref or kind not in ("torchvision", "mlflow"):
            raise ValueError(f"backbone {text!r}: expected torchvision:NAME, mlflow:MODEL_URI or a JSON object")
        b = {"kind": kind, "name": ref} if kind == "torchvision" else {"kind": kind, "model_uri": ref}
        if weights is not None:
            b["weights"] = weights
    if cut is not None:
        b["cut"] = int(cut) if cut.isdigit() else cut
    if "cut" not in b:
        raise ValueError("the predefined mechanism needs the layer to cut the backbone at (--cut)")
    return b
