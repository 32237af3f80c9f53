"""SAINT baseline: the SPIN actor (state token + N slots through self-attention, per-dimension heads) trained
from scratch with the same IQL, every parameter trainable. Shares all its code with ``spin_bench.agents``."""

from __future__ import annotations

from spin_bench.agents.config import SAINTConfig
from spin_bench.agents.iql import IQLAgent
from spin_bench.agents.transformer import SAINTActor

__all__ = ["SAINTAgent", "SAINTConfig"]


class SAINTAgent(IQLAgent):
    name = "saint"
    config: SAINTConfig
    config_class = SAINTConfig

    def build_actor(self) -> SAINTActor:
        return SAINTActor(self.obs_dim, self.nvec, self.config)
