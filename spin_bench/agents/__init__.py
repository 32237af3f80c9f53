"""Reference offline agents: SPIN and its baselines (SAINT, F-IQL, AR-IQL, BC) behind one interface.

agent = make_agent("spin", obs_dim, nvec, preset="quick")
agent.pretrain(transitions, cache_dir)          # SPIN's ASM; 0 seconds for the others
sampler = TransitionSampler(transitions, agent.device, seed)
metrics = agent.update(sampler.sample(agent.config.batch_size))
returns = evaluate(agent, spin_bench.env_id("cheetah-run"), episodes=10, seed=0)
"""

from typing import TYPE_CHECKING

# Public names -> their module, imported on first use: ``import spin_bench.agents`` (and the ``spin-bench`` CLI,
# which imports it for agent names) must not import torch until an agent is made.
_LAZY = {
    "Agent": "base",
    "Batch": "base",
    "IQLConfig": "config",
    "SAINTConfig": "config",
    "SPINConfig": "config",
    "TrainConfig": "config",
    "evaluate": "evaluation",
    "PRESETS": "presets",
    "AGENT_NAMES": "registry",
    "agent_class": "registry",
    "make_agent": "registry",
    "make_config": "registry",
    "restore_agent": "registry",
    "TransitionSampler": "sampler",
    "train_offline": "training",
}

if TYPE_CHECKING:
    from spin_bench.agents.base import Agent, Batch
    from spin_bench.agents.config import IQLConfig, SAINTConfig, SPINConfig, TrainConfig
    from spin_bench.agents.evaluation import evaluate
    from spin_bench.agents.presets import PRESETS
    from spin_bench.agents.registry import AGENT_NAMES, agent_class, make_agent, make_config, restore_agent
    from spin_bench.agents.sampler import TransitionSampler
    from spin_bench.agents.training import train_offline


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"spin_bench.agents.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spin_bench.agents' has no attribute {name!r}")


__all__ = [
    "AGENT_NAMES",
    "PRESETS",
    "Agent",
    "Batch",
    "IQLConfig",
    "SAINTConfig",
    "SPINConfig",
    "TrainConfig",
    "TransitionSampler",
    "agent_class",
    "evaluate",
    "make_agent",
    "make_config",
    "restore_agent",
    "train_offline",
]
