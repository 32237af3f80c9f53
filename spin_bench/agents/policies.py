"""Actors: the interface IQL and BC train through, and factorized categorical policies with their sampling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import torch
from torch import nn

from spin_bench.agents.layers import padding_mask, short_log_softmax

Generators: TypeAlias = torch.Generator | Sequence[torch.Generator]
"""One generator for the whole batch, or one per batch row (row b's draws come from ``generator[b]`` alone, so
a row's samples do not depend on which other rows share its batch)."""


def exponential_noise(like: torch.Tensor, generator: Generators) -> torch.Tensor:
    """Exp(1) noise shaped and placed like ``like`` (float32): one batched draw, or one draw per row."""
    if isinstance(generator, torch.Generator):
        return torch.empty_like(like, dtype=torch.float32).exponential_(generator=generator)
    if len(generator) != like.shape[0]:
        raise ValueError(f"{len(generator)} generators for a batch of {like.shape[0]} rows; pass one per row")
    row = like.shape[1:]
    return torch.stack(
        [torch.empty(row, dtype=torch.float32, device=like.device).exponential_(generator=g) for g in generator]
    )


def sample_categorical(logits: torch.Tensor, deterministic: bool, generator: Generators) -> torch.Tensor:
    """Argmax, or a sample by the Gumbel-max trick over the last axis, its noise drawn from ``generator``
    (one generator, or one per row of ``logits``)."""
    logits = logits.float()
    if deterministic:
        return logits.argmax(-1)
    return (logits - exponential_noise(logits, generator).log()).argmax(-1)  # -log(Exp(1)) is Gumbel(0, 1)


class Actor(nn.Module):
    """A policy over MultiDiscrete actions: what IQL's AWR step and BC need."""

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(B,) float32 log pi(a | s) of the joint action."""
        raise NotImplementedError

    def sample(self, obs: torch.Tensor, deterministic: bool, generator: Generators) -> torch.Tensor:
        """(B, N) int64 actions; ``generator``: one, or one per row."""
        raise NotImplementedError


class FactorizedActor(Actor):
    """pi(a | s) = prod_i pi_i(a_i | s): subclasses give per-dimension logits ``(B, N, max_m)``."""

    def __init__(self, nvec: Sequence[int]):
        super().__init__()
        self.nvec = tuple(int(m) for m in nvec)
        self.register_buffer("bin_padding", padding_mask(self.nvec), persistent=False)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def masked_logits(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits with -inf on padded bins, in float32 whatever precision ``logits`` ran in."""
        return self.logits(obs).float().masked_fill(self.bin_padding, float("-inf"))

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        log_probs = short_log_softmax(self.masked_logits(obs))
        return log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1).sum(-1)

    def sample(self, obs: torch.Tensor, deterministic: bool, generator: Generators) -> torch.Tensor:
        return sample_categorical(self.masked_logits(obs), deterministic, generator)
