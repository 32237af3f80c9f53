"""Discretized DeepMind Control environments."""

from spin_bench.envs.bins import ActionBins
from spin_bench.envs.dmc import DiscreteDMCEnv
from spin_bench.envs.registration import register_envs
from spin_bench.envs.tasks import BENCHMARK_TASKS, EPISODE_STEPS, all_tasks, env_id, split_task
from spin_bench.envs.wrappers import DiscretizeAction

__all__ = [
    "BENCHMARK_TASKS",
    "EPISODE_STEPS",
    "ActionBins",
    "DiscreteDMCEnv",
    "DiscretizeAction",
    "all_tasks",
    "env_id",
    "register_envs",
    "split_task",
]
