"""ENAS (Pham et al. 2018): shared-weight super-network + LSTM controller, over a macro chain space
(``enas-macro``) or a micro cell space (``enas-cells``); and the transfer of basic cells (`stack_cells`).

Modules: `ops` (building blocks), `supernet` (networks: super-network or standalone child), `controller`
(LSTM controller, REINFORCE), `spaces` (arch formats, builders for the model-space entry points, `stack_cells`),
`backend` (the `ENAS` search backend).
"""
from .backend import ENAS
from .spaces import build_cells, build_macro, stack_cells

__all__ = ["ENAS", "build_cells", "build_macro", "stack_cells"]
