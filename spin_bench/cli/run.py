"""``spin-bench run AGENT``: train and evaluate a grid of runs, then print the results table."""

from __future__ import annotations

import shlex
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from spin_bench._device import resolve_device
from spin_bench.cli._common import compact_results_table, console, err_console, parse_list, parse_seeds, user_errors


def check_writable(folder: Path) -> None:
    """Fail before training if ``folder`` cannot hold run folders."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ValueError(f"output folder {str(folder)!r} is not writable: {err.strerror}") from None


def results_table(outcomes) -> Table:
    any_failed = any(outcome.summary is None for outcome in outcomes)  # the column only when a run failed
    table = compact_results_table(
        "Results: final evaluation (official), mean ± std over seeds",
        ids=("agent", "task", "dataset"),
        numbers=("bins", "seeds", "return", "normalized\n(0-100)", *(("failed",) if any_failed else ())),
    )
    cells = defaultdict(list)
    failures = defaultdict(int)
    for outcome in outcomes:
        s = outcome.spec
        key = (s.agent, s.task, s.dataset, s.bins)
        if outcome.summary is None:
            failures[key] += 1
        else:
            cells[key].append(outcome.summary)
    for key in sorted(set(cells) | set(failures)):
        summaries = cells.get(key, [])
        returns = np.array([x["final_return_mean"] for x in summaries])
        scores = np.array([x["final_normalized_score"] for x in summaries])
        table.add_row(
            *map(str, key),
            str(len(summaries)),
            f"{returns.mean():.1f} ± {returns.std():.1f}" if len(summaries) else "-",
            f"{scores.mean():.1f} ± {scores.std():.1f}" if len(summaries) else "-",
            *([str(failures.get(key, 0))] if any_failed else []),
        )
    return table


def run(
    agent: Annotated[str, typer.Argument(help="Agent: spin, saint, f-iql, ar-iql, bc; a comma list; or all.")],
    task: Annotated[
        str, typer.Option(help="Task, comma list, or all (benchmark tasks with datasets).")
    ] = "cheetah-run",
    dataset: Annotated[str, typer.Option(help="Dataset quality, comma list, or all.")] = "medium",
    bins: Annotated[int, typer.Option(help="Bins per action dimension.")] = 3,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = None,
    num_seeds: Annotated[int | None, typer.Option(help="Seeds 0..K-1.")] = None,
    preset: Annotated[str, typer.Option(help="Config preset: quick or paper.")] = "quick",
    steps: Annotated[int | None, typer.Option(help="Gradient steps (overrides the preset).")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between evaluations (overrides the preset).")] = None,
    eval_episodes: Annotated[int | None, typer.Option(help="Episodes per evaluation (overrides the preset).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    out: Annotated[Path, typer.Option(help="Root folder of the run folders.")] = Path("runs"),
    executor: Annotated[str, typer.Option(help="local (worker processes) or ray.")] = "local",
    workers: Annotated[int, typer.Option(help="Runs at a time.")] = 1,
    address: Annotated[str | None, typer.Option(help="Address of an existing Ray cluster (ray executor).")] = None,
) -> None:
    """Train and evaluate AGENT on datasets; finished runs are skipped and interrupted ones resumed."""
    from spin_bench.agents.presets import PRESETS
    from spin_bench.agents.registry import AGENT_NAMES
    from spin_bench.runner import data
    from spin_bench.runner.executors import EXECUTORS, run_grid
    from spin_bench.runner.spec import RunSpec

    with user_errors():
        agents = parse_list(agent, AGENT_NAMES, "agent")
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
        if workers < 1:
            raise ValueError(f"--workers {workers} must be >= 1")
        tasks = parse_list(task, data.all_tasks(), "task", all_values=data.tasks_with_datasets(bins))
        if not tasks:
            raise ValueError(f"--task all: no task has a dataset to use at {bins} bins yet (spin-bench datasets list)")
        qualities = parse_list(dataset, data.QUALITIES, "dataset")
        seed_list = parse_seeds(seeds, num_seeds)
        overrides = {"num_steps": steps, "eval_every": eval_every, "eval_episodes": eval_episodes}
        for name, value in overrides.items():
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} {value} must be >= 1")
        override_items = tuple((k, v) for k, v in overrides.items() if v is not None)
        resolved_device = resolve_device(device)
        for t in tasks:
            for q in qualities:
                data.check_dataset_available(t, q, bins)
        check_writable(out)
        specs = [
            RunSpec(a, t, q, bins, s, preset, override_items)
            for t in tasks
            for q in qualities
            for a in agents
            for s in seed_list
        ]

    console.print(f"{len(specs)} run(s) -> {out}  [{executor}, {workers} at a time, {resolved_device}]")
    try:
        outcomes = run_grid(
            specs,
            out,
            executor=executor,
            workers=workers,
            device=resolved_device,
            cache_dir=out / "_cache",
            address=address,
            console=console,
        )
    except KeyboardInterrupt:
        err_console.print(
            "interrupted: runs were checkpointed. Resume with:\n  " + shlex.join(["spin-bench", *sys.argv[1:]]),
            markup=False,
        )
        raise typer.Exit(130) from None
    console.print(results_table(outcomes))
    for outcome in outcomes:
        if outcome.error:
            err_console.print(f"failed: {outcome.error}", markup=False)
    if any(o.error for o in outcomes):
        raise typer.Exit(1)
