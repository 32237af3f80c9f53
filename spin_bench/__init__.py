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

# Dataset entry points, imported on first use so that ``import spin_bench`` stays light.
_LAZY_DATASET_NAMES = ("load_dataset", "make_env_and_dataset", "normalized_score")


def __getattr__(name: str):
    if name in _LAZY_DATASET_NAMES:
        from spin_bench import datasets

        value = getattr(datasets, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spin_bench' has no attribute {name!r}")


__all__ = [
    "BENCHMARK_TASKS",
    "DiscreteDMCEnv",
    "DiscretizeAction",
    "__version__",
    "all_tasks",
    "env_id",
    "load_dataset",
    "make_env_and_dataset",
    "normalized_score",
]
