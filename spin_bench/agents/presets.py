"""Named presets: ``paper`` (the paper's sizes and budget) and ``quick`` (a few CPU minutes on a small task).

A preset is a set of field overrides on an agent's config class; fields an agent lacks are skipped, so one
table serves every agent.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from spin_bench.agents.config import TrainConfig

PRESETS: dict[str, dict[str, Any]] = {
    # The config classes' defaults: 1M gradient steps, evaluation every 5000 steps over 10 episodes,
    # 256-256 critics, d=256 transformers of 3 blocks, 100 ASM epochs.
    "paper": {},
    # A CPU budget: a small task (cheetah-run) in minutes per agent on one core. 5000 gradient steps at batch
    # 256, evaluation every 1000 steps over 5 episodes; transformers of d=64 with 2 blocks; a 128-wide LSTM;
    # 500 ASM steps at batch 256 whatever the dataset size. Critics and MLP actors keep the paper's sizes.
    "quick": {
        "num_steps": 5_000,
        "eval_every": 1_000,
        "eval_episodes": 5,
        "d_model": 64,
        "num_blocks": 2,
        "head_hidden": 64,
        "lstm_hidden": 128,
        "asm_steps": 500,
        "asm_batch_size": 256,
    },
}


def preset_config(config_class: type[TrainConfig], preset: str = "paper", **overrides: Any) -> TrainConfig:
    """``config_class`` with the preset's values, then ``overrides`` (which must name real fields)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(
            f"unknown {config_class.__name__} field(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(names))}"
        )
    values = {k: v for k, v in PRESETS[preset].items() if k in names}
    return config_class(**{**values, **overrides})
