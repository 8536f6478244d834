"""ENAS's LSTM controller (Pham et al. 2018: §2.2 training, §2.3/§2.4 the decisions, §3.2 settings) and its
REINFORCE trainer.

The controller is an autoregressive LSTM: each decision reads the LSTM's hidden state, turns it into logits,
samples, and feeds the choice's embedding back as the next input. Logits are divided by a temperature and squashed
by ``tanh_constant * tanh(·)`` (the paper: temperature 5.0, tanh constant 2.5), which bounds how peaked a choice can
get and so keeps exploring. Weights start uniform in [-0.1, 0.1] as in ENAS.

- `MacroController` (ENAS macro, "whole channels"): per layer an op, then — from layer 2 on — one independent
  binary skip choice per earlier node, scored by attention between this layer's state and earlier layers' states
  (``v · tanh(W1 h_i + W2 h_j)``, logits ``[-q, q]``). The next input is the mean of the chosen earlier states.
  ENAS's skip penalty ``KL(p_skip || skip_target)`` is returned as ``penalty``.
- `MicroController` (ENAS micro): the normal cell, then the reduction cell, with one LSTM state running through
  both; per node two inputs (attention over nodes 0..n-1; nodes 0 and 1 have zero anchors) and two ops. The op
  logits start unbiased (ENAS's code starts them biased towards the separable convolutions; the paper does not).

`Reinforce` trains either: loss = −(R − b)·log π(a) + skip_weight·penalty, averaged over a batch of samples, one Adam
step per batch. R = reward + entropy_weight·H(a) (ENAS adds the sample's entropy to the reward, as a constant).
The baseline b is an exponential moving average of R with decay ``baseline_decay`` (ENAS ``bl_dec``), set to the
first batch's mean R (ENAS starts it at 0, which for the first ~1/(1−decay) updates rewards whatever was sampled).
"""
from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .ops import CELL_OPS, MACRO_OPS


@dataclass
class Sample:
    """One sampled child: its arch (the arch fields of the space) and the differentiable log-probability, entropy
    and skip penalty of the decisions that produced it."""

    arch: dict
    log_prob: torch.Tensor
    entropy: torch.Tensor
    penalty: torch.Tensor


class _LSTMController(nn.Module):
    """Shared parts; subclasses implement ``sample(generator) -> Sample`` (gradients flow into its log-probability,
    entropy and penalty)."""

    def __init__(self, hidden: int = 64, lstm_layers: int = 1, tanh_constant: float | None = 2.5,
                 temperature: float | None = 5.0):
        super().__init__()
        self.hidden = int(hidden)
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.lstm = nn.ModuleList(nn.LSTMCell(self.hidden, self.hidden) for _ in range(int(lstm_layers)))
        self.g_emb = nn.Parameter(torch.empty(1, self.hidden))
        self.attn1 = nn.Linear(self.hidden, self.hidden, bias=False)
        self.attn2 = nn.Linear(self.hidden, self.hidden, bias=False)
        self.attn_v = nn.Linear(self.hidden, 1, bias=False)

    def _init_uniform(self) -> None:
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def _zero_state(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        z = self.g_emb.new_zeros(1, self.hidden)
        return [(z, z) for _ in self.lstm]

    def _step(self, inp: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        new, x = [], inp
        for cell, (h, c) in zip(self.lstm, state):
            h, c = cell(x, (h, c))
            new.append((h, c))
            x = h
        return x, new

    def _shape(self, logits: torch.Tensor) -> torch.Tensor:
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    @staticmethod
    def _choose(logits: torch.Tensor, gen: torch.Generator | None):
        """Sample one choice per row of ``logits``; return the choices, their summed log p and entropy."""
        logp = F.log_softmax(logits, dim=-1)
        idx = torch.multinomial(logp.detach().exp(), 1, generator=gen)
        return idx.view(-1).tolist(), logp.gather(1, idx).sum(), -(logp.exp() * logp).sum()

    def _attention(self, anchors_w1: list[torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        return self.attn_v(torch.tanh(torch.cat(anchors_w1, 0) + self.attn2(h)))  # (n, 1)


class MacroController(_LSTMController):
    """Samples ``{"layers": [{"op", "skips"}, ...]}`` for `supernet.MacroNet` with ``num_layers`` layers."""

    def __init__(self, num_layers: int, ops: tuple[str, ...] = MACRO_OPS, skip_target: float = 0.4, **kw):
        super().__init__(**kw)
        self.num_layers, self.op_names = int(num_layers), tuple(ops)
        self.skip_target = float(skip_target)
        self.op_emb = nn.Embedding(len(self.op_names), self.hidden)
        self.op_soft = nn.Linear(self.hidden, len(self.op_names), bias=False)
        self._init_uniform()

    def sample(self, generator: torch.Generator | None = None) -> Sample:
        """Sample one child arch, ``{"layers": [{"op", "skips"}, ...]}``, drawing from ``generator`` (torch's default
        one when None); returns it as a `Sample` with its log-probability, entropy and skip penalty (the KL divergence
        from ``skip_target``, averaged over the layers that have skips)."""
        state = self._zero_state()
        inp: torch.Tensor = self.g_emb
        anchors: list[torch.Tensor] = []
        anchors_w1: list[torch.Tensor] = []
        layers: list[dict] = []
        log_prob = entropy = penalty = self.g_emb.new_zeros(())
        t = self.skip_target
        for j in range(self.num_layers):
            h, state = self._step(inp, state)
            (op,), lp, ent = self._choose(self._shape(self.op_soft(h)), generator)
            log_prob, entropy = log_prob + lp, entropy + ent
            h, state = self._step(self.op_emb.weight[op].unsqueeze(0), state)
            skips: list[int] = []
            if j > 0:
                q = self._attention(anchors_w1, h)
                logits = self._shape(torch.cat([-q, q], 1))
                bits, lp, ent = self._choose(logits, generator)
                log_prob, entropy = log_prob + lp, entropy + ent
                p = F.softmax(logits, 1)[:, 1].clamp(1e-6, 1 - 1e-6)
                kl = p * torch.log(p / t) + (1 - p) * torch.log((1 - p) / (1 - t))
                penalty = penalty + kl.sum()
                skips = [i for i, b in enumerate(bits) if b]
                b = torch.tensor(bits, dtype=h.dtype, device=h.device).view(1, -1)
                inp = (b @ torch.cat(anchors, 0)) / (1.0 + b.sum())
            else:
                inp = self.g_emb
            anchors.append(h)
            anchors_w1.append(self.attn1(h))
            layers.append({"op": self.op_names[op], "skips": skips})
        penalty = penalty / max(1, self.num_layers - 1)
        return Sample({"layers": layers}, log_prob, entropy, penalty)


class MicroController(_LSTMController):
    """Samples ``{"normal": [...], "reduction": [...]}`` cells of ``num_nodes`` nodes for `supernet.MicroNet`."""

    def __init__(self, num_nodes: int, ops: tuple[str, ...] = CELL_OPS, **kw):
        super().__init__(**kw)
        self.num_nodes, self.op_names = int(num_nodes), tuple(ops)
        self.op_emb = nn.Embedding(len(self.op_names), self.hidden)
        self.op_soft = nn.Linear(self.hidden, len(self.op_names))
        self._init_uniform()

    def _cell(self, gen, state):
        inp: torch.Tensor = self.g_emb
        zero = self.g_emb.new_zeros(1, self.hidden)
        anchors, anchors_w1 = [], []
        for _ in range(2):  # the two cell inputs: zero anchors, attention keys from the LSTM
            h, state = self._step(inp, state)
            anchors.append(zero)
            anchors_w1.append(self.attn1(h))
        log_prob = entropy = self.g_emb.new_zeros(())
        cell = []
        for _ in range(self.num_nodes):
            inputs, ops = [], []
            for _ in range(2):
                h, state = self._step(inp, state)
                (i,), lp, ent = self._choose(self._shape(self._attention(anchors_w1, h).view(1, -1)), gen)
                log_prob, entropy = log_prob + lp, entropy + ent
                inputs.append(i)
                inp = anchors[i]
            for _ in range(2):
                h, state = self._step(inp, state)
                (op,), lp, ent = self._choose(self._shape(self.op_soft(h)), gen)
                log_prob, entropy = log_prob + lp, entropy + ent
                ops.append(self.op_names[op])
                inp = self.op_emb.weight[op].unsqueeze(0)
            h, state = self._step(inp, state)
            anchors.append(h)
            anchors_w1.append(self.attn1(h))
            inp = self.g_emb
            cell.append({"inputs": inputs, "ops": ops})
        return cell, log_prob, entropy, state

    def sample(self, generator: torch.Generator | None = None) -> Sample:
        """Sample one child arch, a normal and a reduction cell (``{"normal": [...], "reduction": [...]}``), drawing
        from ``generator`` (torch's default one when None); returns it as a `Sample` with its log-probability and
        entropy (the penalty is 0)."""
        normal, lp1, ent1, state = self._cell(generator, self._zero_state())
        reduction, lp2, ent2, _ = self._cell(generator, state)
        return Sample({"normal": normal, "reduction": reduction}, lp1 + lp2, ent1 + ent2,
                      self.g_emb.new_zeros(()))


class Reinforce:
    """REINFORCE with an exponential-moving-average baseline and an entropy bonus, Adam (module docstring)."""

    def __init__(self, controller: _LSTMController, lr: float = 3.5e-3, baseline_decay: float = 0.99,
                 entropy_weight: float = 1e-4, skip_weight: float = 0.0, grad_clip: float | None = 5.0):
        self.controller = controller
        self.opt = torch.optim.Adam(controller.parameters(), lr=lr)
        self.decay, self.entropy_weight, self.skip_weight = float(baseline_decay), float(entropy_weight), skip_weight
        self.grad_clip = grad_clip
        self.baseline: float | None = None
        self.updates = 0

    def update(self, samples: list[Sample], rewards: list[float]) -> dict:
        """One policy-gradient step on a batch of sampled children and their rewards."""
        if len(samples) != len(rewards) or not samples:
            raise ValueError("update needs one reward per sample, and at least one sample")
        full = [float(r) + self.entropy_weight * float(s.entropy.detach()) for s, r in zip(samples, rewards)]
        if self.baseline is None:
            self.baseline = sum(full) / len(full)
        b = self.baseline
        loss = functools.reduce(operator.add, [-(r - b) * s.log_prob + self.skip_weight * s.penalty
                                               for s, r in zip(samples, full)])
        for r in full:
            self.baseline -= (1 - self.decay) * (self.baseline - r)
        loss = loss / len(samples)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.controller.parameters(), self.grad_clip)
        self.opt.step()
        self.updates += 1
        return {"loss": float(loss.detach()), "baseline": self.baseline,
                "mean_reward": sum(rewards) / len(rewards),
                "entropy": sum(float(s.entropy.detach()) for s in samples) / len(samples)}

