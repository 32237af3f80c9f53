"""spin-bench: offline RL in large discrete combinatorial action spaces.

``import spin_bench`` registers ``SPIN/<domain>-<task>-disc-v0`` for every DM Control suite task;
``gymnasium.register_envs(spin_bench)`` is the idiom that keeps linters from removing the import.
"""

from spin_bench._rendering import configure_headless_rendering

configure_headless_rendering()  # before anything imports dm_control

from spin_bench.envs import (  # noqa: E402
    BENCHMARK_TASKS,
    DiscreteDMCEnv,
    DiscretizeAction,
    all_tasks,
    env_id,
    register_envs,
)

__version__ = "0.1.0.dev0"

register_envs()

__all__ = [
    "BENCHMARK_TASKS",
    "DiscreteDMCEnv",
    "DiscretizeAction",
    "__version__",
    "all_tasks",
    "env_id",
]
