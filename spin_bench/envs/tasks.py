"""Task names: ``domain-task`` strings, their Gymnasium ids, and the benchmark's task set."""

from __future__ import annotations

import difflib
from functools import cache

ENV_NAMESPACE = "SPIN"
ENV_VERSION = 0
EPISODE_STEPS = 1000

# The tasks of the offline benchmark (Beeson et al. 2024 plus walker-walk and dog-run).
BENCHMARK_TASKS: tuple[str, ...] = (
    "cheetah-run",
    "finger-spin",
    "fish-swim",
    "walker-walk",
    "quadruped-walk",
    "humanoid-stand",
    "dog-trot",
    "dog-run",
)


@cache
def all_tasks() -> tuple[str, ...]:
    """Every DM Control suite task as ``domain-task`` (``dm_control.suite.ALL_TASKS``)."""
    from dm_control import suite

    return tuple(f"{domain}-{task}" for domain, task in suite.ALL_TASKS)


def env_id(task: str, version: int = ENV_VERSION) -> str:
    """The registered Gymnasium id of a task, e.g. ``SPIN/dog-run-disc-v0``."""
    return f"{ENV_NAMESPACE}/{task}-disc-v{version}"


def closest_tasks(name: str, n: int = 3) -> list[str]:
    """The valid task names closest to ``name``, best first."""
    return difflib.get_close_matches(name, all_tasks(), n=n, cutoff=0.0)


def split_task(task: str) -> tuple[str, str]:
    """``"dog-run"`` -> ``("dog", "run")``; unknown names raise ValueError with the closest valid ones."""
    if task not in all_tasks():
        raise ValueError(
            f"unknown task {task!r}; closest valid tasks: {', '.join(closest_tasks(task))} "
            f"(all {len(all_tasks())}: spin_bench.envs.all_tasks())"
        )
    domain, name = task.split("-", 1)
    return domain, name
