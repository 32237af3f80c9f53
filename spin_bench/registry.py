"""The agents by name (the names the CLI accepts): SPIN and the baselines, listed statically.

This module sits above both ``spin_bench.agents`` (the shared core and SPIN) and ``baselines`` (one file per
baseline, built on that core), so the core never imports a baseline: ``runner -> registry -> baselines -> agents``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from baselines.ar_iql import ARIQLAgent
from baselines.bc import BCAgent
from baselines.f_iql import FIQLAgent
from baselines.saint import SAINTAgent
from spin_bench.agents.base import Agent
from spin_bench.agents.config import TrainConfig
from spin_bench.agents.presets import DEFAULT_PRESET, preset_config
from spin_bench.agents.spin import SPINAgent

AGENTS: dict[str, type[Agent]] = {cls.name: cls for cls in (SPINAgent, SAINTAgent, FIQLAgent, ARIQLAgent, BCAgent)}
"""Agent classes by registry name, SPIN first."""
AGENT_NAMES: tuple[str, ...] = tuple(AGENTS)


def agent_class(name: str) -> type[Agent]:
    """The class registered as ``name``."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid agents: {', '.join(AGENT_NAMES)}")
    return AGENTS[name]


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
