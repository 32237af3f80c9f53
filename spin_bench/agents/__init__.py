"""Reference offline agents: SPIN and its baselines (SAINT, F-IQL, AR-IQL, BC) behind one interface.

agent = make_agent("spin", obs_dim, nvec, preset="quick")
agent.pretrain(transitions, cache_dir)          # SPIN's ASM; 0 seconds for the others
sampler = TransitionSampler(transitions, agent.device, seed)
metrics = agent.update(sampler.sample(agent.config.batch_size))
returns = evaluate(agent, spin_bench.env_id("cheetah-run"), episodes=10, seed=0)
"""

from spin_bench.agents.base import Agent, Batch
from spin_bench.agents.config import IQLConfig, SAINTConfig, SPINConfig, TrainConfig
from spin_bench.agents.evaluation import evaluate
from spin_bench.agents.presets import PRESETS
from spin_bench.agents.registry import AGENT_NAMES, agent_class, make_agent, make_config, restore_agent
from spin_bench.agents.sampler import TransitionSampler
from spin_bench.agents.training import train_offline

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
