"""Grouping: put each arriving dataset into a group whose model it can reuse (paper 002 §2.2–2.4).

* :class:`MarkovBFGrouper` (``"mh"``): the paper's Markov sequential clustering guarded by a Behrens–Fisher test;
* baselines with the same interface: :class:`RandomGrouper` (``"random"``), :class:`KMeansGrouper`
  (``"kmeans"``), :class:`SequentialKMeansGrouper` (``"seq-kmeans"``), :class:`MetaFeatureGrouper`
  (``"metafeatures"``), :class:`NoGrouping` (``"none"``: every dataset searched) and :class:`GivenGrouper`
  (``"given"``: the true families, given in arrival order: the benchmark's oracle);
* :func:`behrens_fisher_test`: Scheffé's solution of the multivariate Behrens–Fisher problem; :func:`power` and
  :func:`trials_for_power` say how many trials it needs to see a given difference.

``observe(trials)`` → :class:`Assignment`; ``to_dict()`` is plain JSON and :func:`grouper_from_dict` restores any
grouper from it, to make the same future decisions.
"""
from __future__ import annotations

from trautoml.registry import Registry

from .base import Assignment, Grouper
from .baselines import (GivenGrouper, KMeansGrouper, MetaFeatureGrouper, NoGrouping, RandomGrouper,
                        SequentialKMeansGrouper)
from .bftest import BFTestResult, behrens_fisher_test, power, trials_for_power
from .markov import MarkovBFGrouper

#: Groupers by name (entry-point group ``trautoml.groupers`` adds third parties'; see `trautoml.registry`).
GROUPERS = Registry("grouper", "trautoml.groupers")
for _cls in (MarkovBFGrouper, RandomGrouper, KMeansGrouper, SequentialKMeansGrouper, MetaFeatureGrouper, NoGrouping,
             GivenGrouper):
    GROUPERS.register(_cls.name, _cls)


def make_grouper(name: str, **kwargs) -> Grouper:
    """A grouper by name: ``"mh"``, ``"random"``, ``"kmeans"`` (``k``, default 7), ``"seq-kmeans"``,
    ``"metafeatures"``, ``"none"``; ``kwargs`` go to its constructor (ValueError naming the known groupers)."""
    return GROUPERS.get(name)(**kwargs)


def grouper_from_dict(d: dict) -> Grouper:
    """Restore any grouper from its ``to_dict()``."""
    return GROUPERS[d["type"]].from_dict(d)


__all__ = ["Assignment", "BFTestResult", "GROUPERS", "GivenGrouper", "Grouper", "KMeansGrouper", "MarkovBFGrouper",
           "MetaFeatureGrouper", "NoGrouping", "RandomGrouper", "SequentialKMeansGrouper", "behrens_fisher_test",
           "grouper_from_dict", "make_grouper", "power", "trials_for_power"]
