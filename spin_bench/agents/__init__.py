"""The agents' shared core (interface, IQL, transformer blocks, presets, sampler, evaluation) and SPIN.

The baselines (SAINT, F-IQL, AR-IQL, BC) are one file each in ``baselines/``; ``spin_bench.registry`` makes any of
them by name:

agent = spin_bench.registry.make_agent("spin", obs_dim, nvec, preset="quick")
agent.pretrain(transitions, cache_dir)          # SPIN's ASM; 0 seconds for the others
sampler = TransitionSampler(transitions, agent.device, seed)
metrics = agent.update(sampler.sample(agent.config.batch_size))
returns = evaluate(agent, spin_bench.env_id("cheetah-run"), episodes=10, seed=0)
"""

from typing import TYPE_CHECKING

# Public names -> their module, imported on first use: ``import spin_bench.agents`` must not import torch until one
# of them is used.
_LAZY = {
    "Agent": "base",
    "Batch": "base",
    "IQLConfig": "config",
    "SPINConfig": "spin",
    "TrainConfig": "config",
    "TransformerActorConfig": "config",
    "evaluate": "evaluation",
    "PRESETS": "presets",
    "SPINAgent": "spin",
    "TransitionSampler": "sampler",
    "train_offline": "training",
}

if TYPE_CHECKING:
    from spin_bench.agents.base import Agent, Batch
    from spin_bench.agents.config import IQLConfig, TrainConfig, TransformerActorConfig
    from spin_bench.agents.evaluation import evaluate
    from spin_bench.agents.presets import PRESETS
    from spin_bench.agents.sampler import TransitionSampler
    from spin_bench.agents.spin import SPINAgent, SPINConfig
    from spin_bench.agents.training import train_offline


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"spin_bench.agents.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spin_bench.agents' has no attribute {name!r}")


__all__ = [
    "PRESETS",
    "Agent",
    "Batch",
    "IQLConfig",
    "SPINAgent",
    "SPINConfig",
    "TrainConfig",
    "TransformerActorConfig",
    "TransitionSampler",
    "evaluate",
    "train_offline",
]
