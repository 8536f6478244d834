"""The reference datasets the landmarkers are chosen on (`landmarkers.selection`): real images shipped offline that
no benchmark stream uses, so that choosing landmarkers never looks at the data they are measured on.

Four families, each a patch-classification task cut from pictures in the scikit-image and scikit-learn wheels
(the benchmark streams use MNIST, digits, Fashion-MNIST, the `builtin:photos` photographs, shapes and textures):

- ``ref-textures``: grey texture photographs (brick, grass, gravel), one class each;
- ``ref-scenes``: grey photographs (camera, moon, cell, clock), one class each;
- ``ref-documents``: grey pictures of print and objects on a plain ground (page, text, coins), one class each;
- ``ref-colour``: scikit-learn's two colour photographs (china, flower), a class per quarter of each.

Patches are squares of random side at random places, resized to 28×28 (32×32 for colour), seeded, so a reference
dataset is the same everywhere. `REFERENCE_URIS` lists each family's two members: the dataset and its 50 %
subsample (another draw of the same content), which the selection must not tell apart. They are builtin datasets
(``builtin:ref-textures`` …, entry-point group ``trautoml.builtin_datasets``), so any command can load them.
"""
from __future__ import annotations

from functools import lru_cache

from trautoml.data.sources import make_source, open_image, package_data_file, random_patches

__all__ = ["REFERENCE_URIS", "ref_colour", "ref_documents", "ref_scenes", "ref_textures", "reference_families"]

PATCHES_PER_CLASS = 800
_TEXTURES = ("brick", "grass", "gravel")
_SCENES = ("camera", "moon", "cell", "clock_motion")
_DOCUMENTS = ("page", "text", "coins")
_COLOUR = ("china", "flower")


def _skimage(name: str, mode: str = "L"):
    """A picture scikit-image ships, by name, as a PIL image in ``mode``."""
    return open_image(package_data_file("skimage", "data", f"{name}.png", install="scikit-image"), mode)


@lru_cache(maxsize=1)
def ref_textures():
    """``builtin:ref-textures`` (module docstring)."""
    x, y = random_patches([_skimage(n) for n in _TEXTURES], PATCHES_PER_CLASS, 28, 1)
    return make_source("ref-textures", "ref-textures", {"train": (x, y)}, "ref-textures", len(_TEXTURES), _TEXTURES)


@lru_cache(maxsize=1)
def ref_scenes():
    """``builtin:ref-scenes`` (module docstring)."""
    x, y = random_patches([_skimage(n) for n in _SCENES], PATCHES_PER_CLASS, 28, 2)
    return make_source("ref-scenes", "ref-scenes", {"train": (x, y)}, "ref-scenes", len(_SCENES), _SCENES)


@lru_cache(maxsize=1)
def ref_documents():
    """``builtin:ref-documents`` (module docstring)."""
    x, y = random_patches([_skimage(n) for n in _DOCUMENTS], PATCHES_PER_CLASS, 28, 3)
    return make_source("ref-documents", "ref-documents", {"train": (x, y)}, "ref-documents", len(_DOCUMENTS),
                       _DOCUMENTS)


@lru_cache(maxsize=1)
def ref_colour():
    """``builtin:ref-colour`` (module docstring): a class per quarter of each photograph."""
    quarters = []
    for name in _COLOUR:
        im = open_image(package_data_file("sklearn", "datasets", "images", f"{name}.jpg", install="scikit-learn"),
                        "RGB")
        w, h = im.size
        quarters += [im.crop((i * w // 2, j * h // 2, (i + 1) * w // 2, (j + 1) * h // 2))
                     for j in range(2) for i in range(2)]
    x, y = random_patches(quarters, PATCHES_PER_CLASS, 32, 4)
    return make_source("ref-colour", "ref-colour", {"train": (x, y)}, "ref-colour", len(quarters),
                       tuple(f"{n}-{q}" for n in _COLOUR for q in range(4)))


#: family → its two members (the dataset, its 50 % subsample).
REFERENCE_URIS = {f: [f"builtin:{f}", f"builtin:{f}?subsample=0.5"]
                  for f in ("ref-textures", "ref-scenes", "ref-documents", "ref-colour")}


def reference_families() -> dict[str, list]:
    """family → its loaded member datasets (`REFERENCE_URIS`)."""
    from trautoml.data import load_dataset

    return {f: [load_dataset(u) for u in uris] for f, uris in REFERENCE_URIS.items()}
