"""Landmarkers ("benchmark models", paper 002 §2.1): small seeded networks whose accuracies profile a dataset.

``sample_landmarkers(B, seed)`` draws the B specs; ``profile(dataset)`` trains each T times and returns the T×B
accuracy matrix (:class:`Profile`) whose mean is the dataset's meta-feature vector. Landmarkers only profile: they
are never the model a dataset gets.
"""
from .models import build_landmarker
from .profile import LANDMARKER_SEED, Profile, ProfileBudget, profile, trial_seed
from .sampling import SPACE, sample_landmarkers

__all__ = ["LANDMARKER_SEED", "Profile", "ProfileBudget", "SPACE", "build_landmarker", "profile",
           "sample_landmarkers", "trial_seed"]
