"""Agents by name (the names the CLI accepts). Baselines are imported on first use, so ``baselines`` can
import ``spin_bench.agents`` freely."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import torch

from spin_bench.agents.base import Agent
from spin_bench.agents.config import TrainConfig
from spin_bench.agents.presets import DEFAULT_PRESET, preset_config

_AGENTS: dict[str, str] = {
    "spin": "spin_bench.agents.spin:SPINAgent",
    "saint": "baselines.saint:SAINTAgent",
    "f-iql": "baselines.f_iql:FIQLAgent",
    "ar-iql": "baselines.ar_iql:ARIQLAgent",
    "bc": "baselines.bc:BCAgent",
}
AGENT_NAMES: tuple[str, ...] = tuple(_AGENTS)


def agent_class(name: str) -> type[Agent]:
    """The class registered as ``name``."""
    if name not in _AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid agents: {', '.join(AGENT_NAMES)}")
    module, attr = _AGENTS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def make_config(name: str, preset: str = DEFAULT_PRESET, **overrides: Any) -> TrainConfig:
    """Agent ``name``'s config under ``preset`` with field ``overrides`` (checked: field names, types, ranges)."""
    cls = agent_class(name).config_class
    return preset_config(cls, preset, owner=f"agent {name} ({cls.__name__})", **overrides)


def make_agent(
    name: str,
    obs_dim: int,
    nvec: Sequence[int],
    preset: str = DEFAULT_PRESET,
    device: str | torch.device = "cpu",
    seed: int = 0,
    **overrides: Any,
) -> Agent:
    """E.g. ``make_agent("spin", 17, [3] * 6, preset="quick", num_steps=1000)``."""
    return agent_class(name)(obs_dim, nvec, make_config(name, preset, **overrides), device=device, seed=seed)


def restore_agent(state: dict[str, Any], device: str | torch.device = "cpu") -> Agent:
    """Rebuild an agent from its ``state_dict()`` (as saved, e.g. ``torch.load(path, weights_only=True)``)."""
    cls = agent_class(state["agent"])
    config = cls.config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()})
    agent = cls(state["obs_dim"], state["nvec"], config, device=device, seed=state["seed"])
    agent.load_state_dict(state)
    return agent
