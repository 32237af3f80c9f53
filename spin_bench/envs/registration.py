"""Register ``SPIN/<domain>-<task>-disc-v0`` for every DM Control suite task."""

from __future__ import annotations

import gymnasium as gym

from spin_bench.envs.tasks import EPISODE_STEPS, all_tasks, env_id

ENTRY_POINT = "spin_bench.envs.dmc:DiscreteDMCEnv"


def register_envs() -> None:
    """Register every task once; string entry point and JSON-safe kwargs so Minari can rebuild the env."""
    for task in all_tasks():
        name = env_id(task)
        if name in gym.registry:
            continue
        gym.register(id=name, entry_point=ENTRY_POINT, max_episode_steps=EPISODE_STEPS, kwargs={"task": task})
