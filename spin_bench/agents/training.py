"""A plain offline training loop for tests, benchmarks and notebooks (run folders belong to the runner)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from spin_bench.agents.base import Agent
from spin_bench.agents.sampler import TransitionSampler


def train_offline(
    agent: Agent,
    transitions,
    num_steps: int | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Pretrain (SPIN's ASM, else nothing), then ``num_steps`` updates (default: the config's); returns the
    last metrics plus ``pretrain_seconds``. ``callback(step, metrics)`` runs after every update.

    Seeds torch's global RNG (dropout) with ``seed``; batches come from a sampler seeded with ``seed``.
    """
    torch.manual_seed(seed)
    pretrain_seconds = agent.pretrain(transitions, cache_dir)
    sampler = TransitionSampler(transitions, agent.device, seed)
    metrics: dict[str, float] = {}
    for _ in range(agent.config.num_steps if num_steps is None else num_steps):
        metrics = agent.update(sampler.sample(agent.config.batch_size))
        if callback is not None:
            callback(agent.step, metrics)
    return {**metrics, "pretrain_seconds": pretrain_seconds}
