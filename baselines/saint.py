"""SAINT baseline: the SPIN actor (state token + N slots through self-attention, per-dimension heads) trained
from scratch with the same IQL, every parameter trainable.

SAINT's actor is SPIN's stage-2 actor, so it lives with SPIN (``spin_bench.agents.spin.SAINTActor``); what makes
SAINT differ is only that nothing is pretrained or frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

from spin_bench.agents.config import TransformerActorConfig
from spin_bench.agents.iql import IQLAgent
from spin_bench.agents.spin import SAINTActor


@dataclass(frozen=True)
class SAINTConfig(TransformerActorConfig):
    """IQL with the SAINT actor, trained from scratch: SPIN's config without the ASM's fields."""


class SAINTAgent(IQLAgent):
    name = "saint"
    config: SAINTConfig
    config_class = SAINTConfig

    def build_actor(self) -> SAINTActor:
        return SAINTActor(self.obs_dim, self.nvec, self.config)
