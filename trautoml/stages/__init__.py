"""The stages of an ingest, one object per arrow of the pipeline `trautoml.TrAutoML` runs::

    load → profile → group → decide → search/train → track

* profile: `ProfileStage` (``dataset -> Features``), the landmarker profile or meta-features, cached;
* group: `GroupStage` (``features -> grouper, version, Assignment``), the workspace's grouper;
* decide: `DecideStage` (``assignment, features -> Plan``), Algorithm 1 with warm-start models;
* search/train: `SearchTrainStage` (``dataset, plan, observer -> Outcome``), the backend over a
  `trautoml.trial_runner.TrialRunner`, then the final training;
* track: an `IngestObserver` the pipeline calls at each boundary (`MLflowObserver` records the run), with
  `Recovery` keeping MLflow in line with the workspace.

A stage takes the pipeline's context: an object with ``preset``, ``seed``, ``root``, ``workspace``, ``executor``
and ``progress`` (a `trautoml.TrAutoML` is one).
"""
from trautoml.stages.group import GroupStage
from trautoml.stages.plan import DecideStage
from trautoml.stages.profile import Features, ProfileStage, features_kind
from trautoml.stages.record import decision_record
from trautoml.stages.recovery import Recovery
from trautoml.stages.search_train import Outcome, SearchTrainStage
from trautoml.stages.track import IngestObserver, MLflowObserver

__all__ = ["DecideStage", "Features", "GroupStage", "IngestObserver", "MLflowObserver", "Outcome", "ProfileStage",
           "Recovery", "SearchTrainStage", "decision_record", "features_kind"]
