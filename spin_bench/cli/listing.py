"""``spin-bench list [tasks|agents|presets]`` (datasets: ``spin-bench datasets list``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from spin_bench.cli._common import console

WHAT = ("tasks", "agents", "presets")


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

    from spin_bench.registry import AGENT_NAMES, agent_class

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
    """Every config field of every agent, with its value under each preset; a preset's own values in bold."""
    import dataclasses

    from rich.text import Text

    from spin_bench.agents.presets import DEFAULT_PRESET, PRESETS
    from spin_bench.registry import AGENT_NAMES, make_config
    from spin_bench.runner.report import format_value

    configs = {(a, p): make_config(a, p) for a in AGENT_NAMES for p in PRESETS}
    fields: dict[str, list[str]] = {}  # field -> agents that have it, in config order
    for agent in AGENT_NAMES:
        for f in dataclasses.fields(configs[(agent, DEFAULT_PRESET)]):
            fields.setdefault(f.name, []).append(agent)
    table = Table(title="Presets (spin-bench run --preset NAME; default: paper)", caption_justify="left")
    settings = [
        f"{preset}: " + (" ".join(f"{k}={format_value(v)}" for k, v in values.items()) or "the defaults")
        for preset, values in PRESETS.items()
    ]
    table.caption = (
        "Bold: the preset sets the field; the rest are the config classes' defaults. "
        "Change any field with spin-bench run --set FIELD=VALUE.\n" + "\n".join(settings)
    )
    table.add_column("field", overflow="fold")
    table.add_column("agents", overflow="fold")
    for preset in PRESETS:
        table.add_column(preset, overflow="fold")
    for name, agents in fields.items():
        row = [name, "all" if len(agents) == len(AGENT_NAMES) else ",".join(agents)]
        for preset in PRESETS:
            values = {a: format_value(getattr(configs[(a, preset)], name)) for a in agents}
            text = (
                next(iter(values.values()))
                if len(set(values.values())) == 1
                else "; ".join(f"{a}: {v}" for a, v in values.items())
            )
            row.append(Text(text, style="bold" if name in PRESETS[preset] else ""))
        table.add_row(*row)
    return table


def list_command(
    what: Annotated[str, typer.Argument(help="tasks, agents or presets.")] = "agents",
) -> None:
    """Show tasks, agents or presets as tables (datasets: spin-bench datasets list)."""
    if what not in WHAT:
        raise ValueError(f"unknown list {what!r}; valid: {', '.join(WHAT)} (datasets: spin-bench datasets list)")
    if what == "tasks":
        console.print(_tasks_table())
    elif what == "agents":
        console.print(_agents_table())
    else:
        console.print(_presets_table())
