"""F-IQL baseline: IQL with a factorized MLP actor (2x256 torso, one softmax head per dimension)."""

from __future__ import annotations

from dataclasses import dataclass

from spin_bench.agents.config import IQLConfig
from spin_bench.agents.iql import IQLAgent
from spin_bench.agents.policies import MLPActor


@dataclass(frozen=True)
class FIQLConfig(IQLConfig):
    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the actor's shared torso."""
    actor_dropout: float = 0.1
    """Dropout after each hidden layer of the actor (the paper's code uses 0.1)."""


class FIQLAgent(IQLAgent):
    name = "f-iql"
    config: FIQLConfig
    config_class = FIQLConfig

    def build_actor(self) -> MLPActor:
        return MLPActor(self.obs_dim, self.nvec, self.config.actor_hidden, self.config.actor_dropout)
