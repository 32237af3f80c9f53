"""F-IQL baseline: IQL with a factorized MLP actor (2x256 torso, one softmax head per dimension).

The MLP actor and its two config fields are also BC's (``baselines.bc``): BC fits this actor by maximum likelihood.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from spin_bench.agents.config import IQLConfig
from spin_bench.agents.iql import IQLAgent
from spin_bench.agents.layers import mlp
from spin_bench.agents.policies import FactorizedActor


@dataclass(frozen=True)
class MLPActorConfig:
    """The MLP actor's fields, shared by F-IQL's and BC's configs (listed after their other fields)."""

    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the actor's shared torso."""
    actor_dropout: float = 0.1
    """Dropout after each hidden layer of the actor (the paper's code uses 0.1)."""


@dataclass(frozen=True)
class FIQLConfig(MLPActorConfig, IQLConfig):
    """IQL with the factorized MLP actor."""


class MLPActor(FactorizedActor):
    """Shared MLP torso, one linear head per dimension (computed as one N * max_m layer)."""

    def __init__(self, obs_dim: int, nvec: Sequence[int], hidden: Sequence[int] = (256, 256), dropout: float = 0.0):
        super().__init__(nvec)
        self.net = mlp(obs_dim, hidden, len(self.nvec) * max(self.nvec), dropout)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).view(obs.shape[0], len(self.nvec), max(self.nvec))


class FIQLAgent(IQLAgent):
    name = "f-iql"
    config: FIQLConfig
    config_class = FIQLConfig

    def build_actor(self) -> MLPActor:
        return MLPActor(self.obs_dim, self.nvec, self.config.actor_hidden, self.config.actor_dropout)
