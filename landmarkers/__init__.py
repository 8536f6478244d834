"""Landmarkers ("benchmark models", paper 002 §2.1): small seeded networks whose accuracies profile a dataset.

``sample_landmarkers(B, seed)`` draws candidates by Monte Carlo, ``landmarkers.selection`` chooses the
installation's set among them on reference data (``LANDMARKER_SET``, ``landmarker_specs(B)``); ``profile(dataset)``
trains each T times and returns the T×B accuracy matrix (:class:`Profile`) whose mean is the dataset's meta-feature
vector. Landmarkers only profile: they are never the model a dataset gets.
"""
from .models import build_landmarker
from .profile import (LANDMARKER_SEED, LANDMARKER_SET, Profile, ProfileBudget, landmarker_specs, profile, trial_seed,
                      with_flops)
from .sampling import SPACE, sample_landmarkers

__all__ = ["LANDMARKER_SEED", "LANDMARKER_SET", "Profile", "ProfileBudget", "SPACE", "build_landmarker",
           "landmarker_specs", "profile", "sample_landmarkers", "trial_seed", "with_flops"]
