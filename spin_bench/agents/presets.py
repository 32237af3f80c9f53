"""Named presets: ``paper`` (the benchmark's definition: the paper's sizes and budget, the default of the CLI and
the Python API), ``lite`` (the reference results' CPU protocol: the paper's algorithms and hyperparameters at a
smaller budget, see ``results/``) and ``quick`` (a smoke test: a few CPU minutes on a small task).

A preset is a set of field overrides on an agent's config class; fields an agent lacks are skipped, so one
table serves every agent. Every field a preset leaves alone keeps its config class's default.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from spin_bench.agents.config import TrainConfig
from spin_bench.overrides import coerce_value

DEFAULT_PRESET = "paper"
"""The preset of ``spin-bench run`` and of ``make_agent``/``make_config`` when none is named."""

PRESETS: dict[str, dict[str, Any]] = {
    # The config classes' defaults: 1M gradient steps, evaluation every 5000 steps over 10 episodes,
    # 256-256 critics, d=256 transformers of 3 blocks, 100 ASM epochs.
    "paper": {},
    # The reference results' protocol (results/lite-v0): only sizes and budget differ from the paper. 50k gradient
    # steps (on mixed data every IQL agent's curve has peaked, fallen and levelled off by then: docs/learning-curves.md,
    # results/README.md), evaluation every 2500 steps over the paper's 10 episodes; transformers of d=64 with 2 blocks
    # and 64-wide heads (the paper's: d=256, 3 blocks, 128); 3000 ASM steps at the paper's batch of 1024 whatever the
    # dataset size (held-out masked-token accuracy has levelled off by then); AR-IQL's LSTM 64 wide (the paper's: 256;
    # at 256 an AR-IQL update costs 9-18 GFLOP, 9-12x a lite SPIN update, and it is the one network lite would leave at
    # paper size among the agents' policies). Critics, values, MLP actors, learning rates, expectile, beta, dropout
    # and masking keep the paper's values.
    "lite": {
        "num_steps": 50_000,
        "eval_every": 2_500,
        "eval_episodes": 10,
        "d_model": 64,
        "num_blocks": 2,
        "head_hidden": 64,
        "lstm_hidden": 64,
        "asm_steps": 3_000,
        "asm_batch_size": 1024,
    },
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


def check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")


def preset_config(
    config_class: type[TrainConfig], preset: str = DEFAULT_PRESET, *, owner: str | None = None, **overrides: Any
) -> TrainConfig:
    """``config_class`` with the preset's values, then ``overrides``: real fields, values of the field's type
    (``spin_bench.overrides.coerce_value``: ``beta=1`` is ``beta=1.0``), ranges checked by the class.
    ``owner`` names the config in error messages (e.g. ``agent bc``)."""
    check_preset(preset)
    names = {f.name for f in dataclasses.fields(config_class)}
    values = {k: v for k, v in PRESETS[preset].items() if k in names}
    values |= {key: coerce_value(config_class, key, value, owner) for key, value in overrides.items()}
    return config_class(**values)
