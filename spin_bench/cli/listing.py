"""``spin-bench list [tasks|datasets|agents|presets]``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from spin_bench.cli._common import console, user_errors

WHAT = ("tasks", "datasets", "agents", "presets")


def _tasks_table() -> Table:
    import gymnasium as gym
    import numpy as np

    from spin_bench.envs import BENCHMARK_TASKS, all_tasks, env_id
    from spin_bench.runner import data

    with_data = set(data.tasks_with_datasets(3))
    table = Table(title="Tasks (SPIN/<task>-disc-v0; benchmark tasks first)")
    for name in ("task", "env id", "N", "obs dim", "3-bin joint actions", "benchmark", "datasets"):
        table.add_column(name, overflow="fold")  # ids are copied into commands: fold them, never cut them
    ordered = list(BENCHMARK_TASKS) + [t for t in all_tasks() if t not in BENCHMARK_TASKS]
    for task in ordered:
        spec = gym.spec(env_id(task))
        env = spec.make()
        n, obs_dim = int(env.action_space.nvec.size), int(env.observation_space.shape[0])
        env.close()
        table.add_row(
            task,
            env_id(task),
            str(n),
            str(obs_dim),
            f"{float(np.power(3.0, n)):.3g}",
            "yes" if task in BENCHMARK_TASKS else "",
            "yes" if task in with_data else "",
        )
    return table


def _agents_table() -> Table:
    import sys

    from spin_bench.agents.registry import AGENT_NAMES, agent_class

    table = Table(title="Agents (spin-bench run AGENT)")
    table.add_column("agent")
    table.add_column("config")
    table.add_column("description")
    for name in AGENT_NAMES:
        cls = agent_class(name)
        doc = cls.__doc__ or sys.modules[cls.__module__].__doc__ or ""
        summary = " ".join(doc.strip().split("\n\n")[0].split()).replace("``", "")  # first paragraph, no rst quotes
        table.add_row(name, cls.config_class.__name__, summary)
    return table


def _presets_table() -> Table:
    from spin_bench.agents.presets import PRESETS

    table = Table(title="Presets (spin-bench run --preset NAME)")
    table.add_column("preset")
    table.add_column("overrides of the paper defaults")
    for name, values in PRESETS.items():
        table.add_row(name, ", ".join(f"{k}={v}" for k, v in values.items()) or "(the paper's settings)")
    return table


def list_command(
    what: Annotated[str, typer.Argument(help="tasks, datasets, agents or presets.")] = "agents",
) -> None:
    """Show tasks, datasets, agents or presets as tables."""
    with user_errors():
        if what not in WHAT:
            raise ValueError(f"unknown list {what!r}; valid: {', '.join(WHAT)}")
    if what == "tasks":
        console.print(_tasks_table())
    elif what == "agents":
        console.print(_agents_table())
    elif what == "presets":
        console.print(_presets_table())
    else:
        from spin_bench.cli.datasets import list_cmd

        list_cmd(offline=True)
