"""Models: what a model is, the model spaces the core ships, and the one training loop.

* `spec`: `ModelSpec` (a model space's name, an architecture, training hyper-parameters) and the registry of model
  spaces that build a spec into a torch module (`build_module`);
* `cnn`: the default space ``cnn``, chain-structured convolutional networks (sampling, mutation, compute cap);
* `mlp`: the space ``mlp``, fully connected networks over the flattened image;
* `train`: `train_and_evaluate`, through which every model in trautoml is trained;
* `trials`: `run_trial`, one search trial as a picklable function an executor maps.

Nothing is imported here: ``trautoml.models.spec`` needs no torch, and importing it stays cheap.
"""

__all__ = ["cnn", "mlp", "spec", "train", "trials"]
