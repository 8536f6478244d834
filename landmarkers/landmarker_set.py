"""The installation's landmarker set: what `landmarkers.selection` chose, read from ``selected.json`` beside this
module (kept apart from the selection itself, which profiles and so imports the rest of the package)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from trautoml.models.spec import ModelSpec

__all__ = ["SELECTED_PATH", "load_selected"]

SELECTED_PATH = Path(__file__).with_name("selected.json")


def load_selected(path: str | os.PathLike = SELECTED_PATH) -> tuple[str, list[ModelSpec]] | None:
    """(version, ranked specs) of the selected set at ``path``, None when there is no file; ValueError naming the
    file when it is unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        return str(d["version"]), [ModelSpec.from_dict(s) for s in d["specs"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"corrupted landmarker set {path}: {e}") from None
