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

# Entry points by module, imported on first use so that ``import spin_bench`` stays light (no torch until an agent
# is made).
_LAZY = {
    "load_dataset": "spin_bench.datasets",
    "make_env_and_dataset": "spin_bench.datasets",
    "normalized_score": "spin_bench.datasets",
    "make_agent": "spin_bench.registry",
    "make_config": "spin_bench.registry",
    "restore_agent": "spin_bench.registry",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
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
    "make_agent",
    "make_config",
    "make_env_and_dataset",
    "normalized_score",
    "restore_agent",
]
