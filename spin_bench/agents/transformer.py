"""Transformer pieces shared by the Action Structure Model (SPIN stage 1) and the SAINT actor (stage 2), both
in ``spin_bench.agents.spin``.

Both read [state token, N tokens] with full self-attention and no positional encodings: each of the N
tokens already knows its dimension (its own embedding table, or its own learned slot vector). The
:class:`TokenTrunk` (state encoder + blocks) is the part SPIN copies from the ASM into the actor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spin_bench.agents.config import TransformerActorConfig
from spin_bench.agents.layers import BatchedLinear, padding_mask, short_softmax


def attention_with_dropout(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)`` in training, written out: the same scaling,
    softmax, and dropout mask drawn from torch's global RNG as its math path, which is what it runs on CPU with
    dropout. Written out, the softmax over a few tokens runs as elementwise ops (see ``short_softmax``)."""
    scale = q.shape[-1] ** -0.25  # split between q and k as the math path does
    # One bmm over every (batch, head) pair: on CPU, matmul of 4-d permuted views takes a slower path to the same
    # products. The dropout mask has the shape of the weights either way, so it is drawn from the same RNG draws.
    lead, (tokens, head_dim) = q.shape[:-2], q.shape[-2:]
    q, k = ((t * scale).reshape(-1, tokens, head_dim) for t in (q, k))
    weights = short_softmax(torch.bmm(q, k.transpose(1, 2)))
    y = torch.bmm(F.dropout(weights, dropout), v.reshape(-1, *v.shape[-2:]))
    return y.view(*lead, *y.shape[-2:])


class SelfAttention(nn.Module):
    """Multi-head self-attention: PyTorch's fused scaled_dot_product_attention, or ``attention_with_dropout`` when
    training with dropout on CPU (where the fused call falls back to the same math, with a slower softmax)."""

    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        if self.training and self.dropout > 0 and x.device.type == "cpu":
            y = attention_with_dropout(q, k, v, self.dropout)
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(batch, tokens, width))


class Block(nn.Module):
    """Pre-LayerNorm block: x + Dropout(Attn(LN(x))), then x + FFN(LN(x)) with a GELU FFN."""

    def __init__(self, d_model: int, num_heads: int, ffn_mult: int, dropout: float):
        super().__init__()
        self.ln_attn = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, num_heads, dropout)
        self.drop = nn.Dropout(dropout)
        self.ln_ffn = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn_mult * d_model),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_mult * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln_attn(x)))
        return x + self.ffn(self.ln_ffn(x))


class TokenTrunk(nn.Module):
    """State encoder Linear(S, 2d) -> GELU -> Linear(2d, d) giving one state token, then the blocks."""

    def __init__(self, obs_dim: int, cfg: TransformerActorConfig):
        super().__init__()
        d = cfg.d_model
        self.state_encoder = nn.Sequential(nn.Linear(obs_dim, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.blocks = nn.ModuleList(Block(d, cfg.num_heads, cfg.ffn_mult, cfg.dropout) for _ in range(cfg.num_blocks))

    def forward(self, obs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, d) contextual tokens for (B, obs_dim) states and (B, N, d) input tokens."""
        x = torch.cat([self.state_encoder(obs).unsqueeze(1), tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return x[:, 1:]


class PerDimHeads(nn.Module):
    """One Linear(d, h) -> GELU -> Dropout -> Linear(h, m_i) head per dimension, run as batched matmuls."""

    def __init__(self, nvec: Sequence[int], d_model: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = BatchedLinear(len(nvec), d_model, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = BatchedLinear(len(nvec), hidden, max(nvec))
        self.register_buffer("bin_padding", padding_mask(nvec), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N, max_m) logits (-inf on padded bins) for (B, N, d) tokens."""
        logits = self.fc2(self.drop(F.gelu(self.fc1(z.transpose(0, 1))))).transpose(0, 1)
        return logits.float().masked_fill(self.bin_padding, float("-inf"))
