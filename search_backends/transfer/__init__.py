"""The transfer controller (Wong et al. 2018; Borsos et al. 2019): a search policy that learns across groups and
across search spaces.

- `lstm_agent.LSTMAgent`: the multitask LSTM controller of Wong et al. 2018 (task embeddings, task-normalised
  advantages, transfer by a fresh task embedding).
- `transformer_agent.TransformerAgent`: the Transformer agent of Borsos et al. 2019 over merged conditional
  search spaces (`spaces`), trained with REINFORCE + entropy + priority-queue training (`reinforce`).
- `learner.Learner`: an agent with its optimiser and per-(space, task) statistics; `persistence` saves and
  restores it; `backend.TransferController` is the ``transfer`` search backend built on them.
- `toys`: the double-XOR and multitask-transfer toy benchmarks (``python -m search_backends.transfer.toys``).
"""
from .backend import TransferController
from .learner import Learner, train_multitask
from .persistence import load_learner, save_learner
from .spaces import CNNSpace, MergedSpace, MLPSpace, model_space

__all__ = ["TransferController", "Learner", "train_multitask", "load_learner", "save_learner", "CNNSpace",
           "MLPSpace", "MergedSpace", "model_space"]
