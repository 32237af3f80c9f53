"""Small building blocks: MLPs, batched independent linear layers, bin padding, softmax over short rows."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear -> ReLU (-> Dropout) per hidden width, then a linear output layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def padding_mask(nvec: Sequence[int]) -> torch.Tensor:
    """(N, max_m) bool, True on bins a dimension does not have (when dimensions differ in size)."""
    nvec_t = torch.as_tensor(list(nvec))
    return torch.arange(int(nvec_t.max()))[None, :] >= nvec_t[:, None]


def short_log_softmax(x: torch.Tensor) -> torch.Tensor:
    """``log_softmax(x, -1)`` as elementwise ops: x - max - log(sum(exp(x - max))); -inf entries stay -inf.

    Equal to ``F.log_softmax`` within float32 rounding. On CPU, torch's softmax kernels are 2-5x slower than these
    few vectorized ops when rows are short (3 bins per dimension, attention over 7 tokens), forward and backward.
    """
    shifted = x - x.detach().amax(-1, keepdim=True)  # any shift gives the same value; no gradient through it
    return shifted - shifted.exp().sum(-1, keepdim=True).log()


def short_softmax(x: torch.Tensor) -> torch.Tensor:
    """``softmax(x, -1)`` as elementwise ops (see ``short_log_softmax``)."""
    e = (x - x.detach().amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


class BatchedLinear(nn.Module):
    """n independent Linear(in, out) layers run as one batched matmul: (n, B, in) -> (n, B, out).

    Used for critic ensembles (layer k is critic k) and per-dimension heads (layer i meets token i).
    """

    def __init__(self, n: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default init, per layer
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def forward_one(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Layer i alone on (B, in)."""
        return torch.addmm(self.bias[i], x, self.weight[i])
