"""ENAS networks: one class per space that is the shared-weight super-network or one standalone child.

``MacroNet(..., arch=None)`` / ``MicroNet(..., arch=None)`` build the super-network: every op of every choice
exists once, and ``forward(x, arch)`` runs the child ``arch`` through its ops only — so two children that pick
the same op at the same place use the very same parameters (ENAS's weight sharing), and the activations of one
forward pass are those of one child (the super-network never holds all ops' maps at once, unlike DARTS).
With an ``arch`` the same class builds only that child's ops: the standalone network the final retraining
trains from scratch. Both compute the same function of the same ops, so a child judged inside the super-network
is the network that is retrained. Arch formats: `search_backends.enas.spaces`.

Differences from the super-network to a child: batch norm (``ops.bn``: batch statistics in the super-network,
running statistics in a child) and only the parameters of the chosen path.

Where this differs from ENAS's code, and why: (1) macro channels double at each reduction in the super-network too
(ENAS searches at a fixed width and doubles only in the final child), so the child judged is the child retrained;
(2) a cell's output concatenates only its own loose-end nodes (ENAS's final child also concatenates unused cell
inputs), which keeps super-network and child identical and a reduction cell's output at one resolution; (3) the
stem has ``channels`` filters (ENAS: 3x) and there are no auxiliary heads or drop-path — CPU-sized budgets.
"""
from __future__ import annotations

import torch
from torch import nn

from .ops import CELL_OPS, MACRO_OPS, FactorizedReduce, MacroBranch, ReLUConvBN, SelectedConcatProjection, bn, cell_op


def _head(c: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, num_classes))


# ----------------------------------------------------------------------------------------------------------- macro

def macro_kept_nodes(layers: list[dict], after: int) -> list[int]:
    """Nodes still needed after a reduction that follows layer ``after`` (1-based): that layer's output (the next
    layer's input) and every earlier node a later layer takes a skip from. Node 0 is the stem, node j layer j."""
    keep = {after}
    for k in range(after + 1, len(layers) + 1):
        keep.update(i for i in layers[k - 1]["skips"] if i <= after)
    return sorted(keep)


class MacroNet(nn.Module):
    """ENAS macro (chain) space (Pham et al. 2018, §2.3): stem, then ``num_layers`` layers on ``channels`` channels.

    Layer j (1-based) applies one op of `MACRO_OPS` to node j-1, adds the nodes it takes skips from (any of nodes
    0..j-2, ENAS's skip connections), and batch-normalises the sum: node j. After each layer named in
    ``reduce_after`` every node still needed is halved in size and doubled in channels by its own factorized
    reduction (ENAS's ``pool_layers``, with the fixed arch's channel doubling). Head: global average pool, dropout,
    linear.
    """

    def __init__(self, input_shape, num_classes: int, num_layers: int, channels: int, reduce_after: list[int],
                 dropout: float = 0.0, arch: dict | None = None):
        super().__init__()
        self.shared = arch is None
        self.arch = arch
        self.num_layers = int(num_layers)
        self.reduce_after = sorted(int(j) for j in reduce_after)
        c_in = int(input_shape[0])
        c = int(channels)
        self.stem = nn.Sequential(nn.Conv2d(c_in, c, 3, 1, 1, bias=False), bn(c, self.shared))
        self.ops = nn.ModuleList()
        self.post = nn.ModuleList()
        self.reducers = nn.ModuleDict()
        for j in range(1, self.num_layers + 1):
            chosen = MACRO_OPS if arch is None else (arch["layers"][j - 1]["op"],)
            self.ops.append(nn.ModuleDict({op: MacroBranch(op, c, self.shared) for op in chosen}))
            self.post.append(bn(c, self.shared))
            if j in self.reduce_after:
                kept = range(j + 1) if arch is None else macro_kept_nodes(arch["layers"], j)
                self.reducers[str(j)] = nn.ModuleDict({str(i): FactorizedReduce(c, 2 * c, self.shared)
                                                       for i in kept})
                c *= 2
        self.head = _head(c, int(num_classes), float(dropout))

    def forward(self, x: torch.Tensor, arch: dict | None = None) -> torch.Tensor:
        """The logits for images ``x`` under ``arch`` (``{"layers": [...]}``; default: the child's own arch)."""
        arch = arch or self.arch
        if arch is None:
            raise ValueError("the shared super-network runs a child: pass its arch")
        layers = arch["layers"]
        nodes: list[torch.Tensor | None] = [self.stem(x)]
        for j in range(1, self.num_layers + 1):
            layer = layers[j - 1]
            # the index ignore: torch types a ModuleList's items as Module
            out = self.ops[j - 1][layer["op"]](nodes[j - 1])  # type: ignore[index]
            for i in layer["skips"]:
                out = out + nodes[i]
            nodes.append(self.post[j - 1](out))
            if j in self.reduce_after:
                red = self.reducers[str(j)]
                kept = set(macro_kept_nodes(layers, j))
                # the index ignore: red is a ModuleDict, typed Module
                nodes = [red[str(i)](n) if i in kept else None for i, n in enumerate(nodes)]  # type: ignore[index]
        return self.head(nodes[-1])


# ----------------------------------------------------------------------------------------------------------- micro

def loose_ends(cell: list[dict]) -> list[int]:
    """The cell's nodes (indices 2..) no node of the cell takes as input: they are concatenated into its output."""
    used = {i for node in cell for i in node["inputs"]}
    return [i for i in range(2, len(cell) + 2) if i not in used]


def _op_key(op: str, stride: int) -> str:
    return op if stride == 1 else f"{op}_s2"


class Cell(nn.Module):
    """One normal or reduction cell (Pham et al. 2018, §2.4; NASNet).

    Inputs 0 and 1 are the two previous cells' outputs, brought to ``c`` channels (and to the same size: a
    factorized reduction when the cell before the previous one had twice the resolution). Node n (2..N+1) sums two
    ops, each applied to one of nodes 0..n-1. In a reduction cell the ops that read inputs 0 or 1 have stride 2
    (identity becomes a factorized reduction). Output: ReLU → 1x1 conv → BN over the concatenation of the loose ends
    (nodes nothing in the cell reads), ``c`` channels.

    Super-network: each (node, input slot) owns one module per op (and per stride in a reduction cell).
    """

    def __init__(self, num_nodes: int, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool,
                 shared: bool, cell: list[dict] | None = None):
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_pp, c, shared) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, shared)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, shared)
        self.ops = nn.ModuleList()
        for n in range(num_nodes):
            slots = nn.ModuleList()
            for s in range(2):
                if cell is None:
                    keys = [(op, st) for op in CELL_OPS for st in self._strides(n)]
                else:
                    i, op = cell[n]["inputs"][s], cell[n]["ops"][s]
                    keys = [(op, self._stride(i))]
                slots.append(nn.ModuleDict({_op_key(op, st): cell_op(op, c, st, shared) for op, st in keys}))
            self.ops.append(slots)
        candidates = list(range(2, num_nodes + 2)) if cell is None else loose_ends(cell)
        self.project = SelectedConcatProjection(candidates, c, c, shared)

    def _stride(self, i: int) -> int:
        return 2 if self.reduction and i < 2 else 1

    def _strides(self, n: int) -> list[int]:
        """Strides node n's ops may need: 2 for the cell inputs of a reduction cell, 1 for inner nodes."""
        if not self.reduction:
            return [1]
        return [2, 1] if n > 0 else [2]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, cell: list[dict]) -> torch.Tensor:
        """The cell's output from the two previous cells' outputs ``s0`` (older) and ``s1``, wired as ``cell`` (a list
        of ``{"inputs", "ops"}`` nodes)."""
        states = [self.pre0(s0), self.pre1(s1)]
        for n, node in enumerate(cell):
            y = None
            for s, (i, op) in enumerate(zip(node["inputs"], node["ops"])):
                # the index ignore: torch types a ModuleList's items as Module
                out = self.ops[n][s][_op_key(op, self._stride(i))](states[i])  # type: ignore[index]
                y = out if y is None else y + out
            states.append(y)
        loose = loose_ends(cell)
        return self.project([states[i] for i in loose], loose)


class MicroNet(nn.Module):
    """ENAS micro space: stem, then ``reductions + 1`` stages of ``cells_per_stage`` normal cells with one
    reduction cell (channels doubled, map halved) between consecutive stages; head: ReLU, global average pool,
    dropout, linear. ``arch`` holds the cells (``{"normal": [...], "reduction": [...]}``) for a child."""

    def __init__(self, input_shape, num_classes: int, num_nodes: int, cells_per_stage: int, channels: int,
                 reductions: int, dropout: float = 0.0, arch: dict | None = None):
        super().__init__()
        self.shared = arch is None
        self.arch = arch
        c = int(channels)
        self.stem = nn.Sequential(nn.Conv2d(int(input_shape[0]), c, 3, 1, 1, bias=False), bn(c, self.shared))
        self.kinds: list[str] = []
        self.cells = nn.ModuleList()
        c_pp, c_p, reduction_prev = c, c, False
        for stage in range(int(reductions) + 1):
            kinds = (["reduction"] if stage > 0 else []) + ["normal"] * int(cells_per_stage)
            for kind in kinds:
                reduction = kind == "reduction"
                if reduction:
                    c *= 2
                cell = None if arch is None else arch[kind]
                self.cells.append(Cell(num_nodes if cell is None else len(cell), c_pp, c_p, c, reduction,
                                       reduction_prev, self.shared, cell))
                self.kinds.append(kind)
                c_pp, c_p, reduction_prev = c_p, c, reduction
        self.head = nn.Sequential(nn.ReLU(), _head(c, int(num_classes), float(dropout)))

    def forward(self, x: torch.Tensor, arch: dict | None = None) -> torch.Tensor:
        """The logits for images ``x`` under ``arch`` (the normal and the reduction cell; default: the child's own
        arch)."""
        arch = arch or self.arch
        if arch is None:
            raise ValueError("the shared super-network runs a child: pass its arch")
        s0 = s1 = self.stem(x)
        for kind, cell in zip(self.kinds, self.cells):
            s0, s1 = s1, cell(s0, s1, arch[kind])
        return self.head(s1)
