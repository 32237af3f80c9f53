"""SPIN (Landers et al., ICLR 2026): Structured Policy INitialization for large discrete action spaces.

Stage 1 (``pretrain``): an Action Structure Model learns how sub-actions co-occur in the dataset by masked
action modelling, without rewards (``spin_bench.agents.asm``).
Stage 2 (``update``): the SAINT actor gets a copy of the ASM's state encoder and self-attention blocks,
frozen; only its N slot vectors and per-dimension heads train, with IQL and a factorized critic
(``spin_bench.agents.iql``). SAINT (``baselines.saint``) is the same actor trained from scratch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from spin_bench.agents.asm import PretrainRecord, load_or_pretrain_asm
from spin_bench.agents.config import SPINConfig
from spin_bench.agents.iql import IQLAgent
from spin_bench.agents.precision import autocast_dtype
from spin_bench.agents.transformer import SAINTActor

__all__ = ["SPINAgent", "SPINConfig"]


class SPINAgent(IQLAgent):
    name = "spin"
    config: SPINConfig
    config_class = SPINConfig

    def __init__(self, obs_dim, nvec, config=None, device="cpu", seed=0):
        super().__init__(obs_dim, nvec, config, device, seed)
        self.pretrain_seconds = 0.0
        """Wall-clock seconds of the ASM pretraining behind this agent (cached runs report the original)."""
        self.asm_key = ""
        """Cache key of the ASM whose trunk the actor holds; empty before ``pretrain``."""
        self.pretrain_record: PretrainRecord | None = None
        """What this process's ``pretrain`` did (steps, per-epoch losses, cache hit); not checkpointed."""

    def build_actor(self) -> SAINTActor:
        actor = SAINTActor(self.obs_dim, self.nvec, self.config)
        actor.trunk.requires_grad_(False)  # before the optimizer is built: it only ever sees slots and heads
        return actor

    @property
    def pretrained(self) -> bool:
        return bool(self.asm_key)

    def pretrain(self, transitions, cache_dir: str | Path | None = None) -> float:
        """Train (or load from ``cache_dir``, ``~`` expanded) the ASM and copy its trunk into the actor; returns
        its seconds.

        A no-op returning the recorded seconds when the actor already holds an ASM (e.g. after
        ``load_state_dict`` of a stage-2 checkpoint).
        """
        if self.pretrained:
            return self.pretrain_seconds
        if transitions.obs_dim != self.obs_dim or tuple(int(m) for m in transitions.nvec) != self.nvec:
            raise ValueError(
                f"dataset has obs_dim={transitions.obs_dim} nvec={tuple(transitions.nvec)}, "
                f"agent has obs_dim={self.obs_dim} nvec={self.nvec}"
            )
        asm, record = load_or_pretrain_asm(transitions, self.config, self.seed, self.device, cache_dir)
        self.actor.trunk.load_state_dict(asm.trunk.state_dict())
        self.pretrain_seconds, self.asm_key = record.seconds, record.key
        self.pretrain_record = record
        return record.seconds

    def update(self, batch):
        if not self.pretrained:
            raise RuntimeError("SPIN trains on a pretrained ASM: call agent.pretrain(transitions, cache_dir) first")
        return super().update(batch)

    def _autocast_passes(self) -> dict[str, torch.dtype | None]:
        # The ASM's pretraining follows the same rule as the actor (its cache key records the dtype).
        return {**super()._autocast_passes(), "ASM": autocast_dtype(self.device, self.config.bf16)}

    def _extra_state(self) -> dict[str, Any]:
        return {"pretrain_seconds": self.pretrain_seconds, "asm_key": self.asm_key}
