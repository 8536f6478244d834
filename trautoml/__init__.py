"""trautoml: Transferable AutoML over a stream of image datasets (Xue et al., CVPR 2019).

data → profile → group → decide → search/train → track:
``trautoml.data.load_dataset`` → ``landmarkers.profile`` → ``trautoml.grouping`` → ``trautoml.decide``
→ ``search_backends`` / ``trautoml.models.train`` → ``trautoml.tracking``; ``trautoml.TrAutoML`` drives them all.
"""
__version__ = "0.1.0"


def __getattr__(name):  # lazy: `import trautoml` stays cheap (no torch, no mlflow)
    if name == "TrAutoML":
        from .api import TrAutoML

        return TrAutoML
    raise AttributeError(name)
