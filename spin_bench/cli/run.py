"""``spin-bench run AGENT``: train and evaluate a grid of runs, then print the results table."""

from __future__ import annotations

import shlex
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from spin_bench._device import resolve_device
from spin_bench.agents.presets import DEFAULT_PRESET
from spin_bench.cli._common import cli_errors, compact_results_table, console, err_console, parse_list, parse_seeds


def check_writable(folder: Path) -> None:
    """Fail before training if ``folder`` cannot hold run folders."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ValueError(f"output folder {str(folder)!r} is not writable: {err.strerror}") from None


SET_HELP = (
    "Agent config field key=value, repeatable; any field of the agents' configs (spin-bench list presets). "
    "A comma list is a grid: beta=1,3,10 runs three configs. A tuple's elements are joined by commas "
    "(critic_hidden=512,512, as layer widths are written); a grid of tuples separates them with / "
    "(critic_hidden=256,256/512,512). Optional fields take none."
)
SHORTCUTS = {"--steps": "num_steps", "--eval-every": "eval_every", "--eval-episodes": "eval_episodes"}
"""Flags that set one config field each."""


def config_grid(
    agent: str, preset: str, file_settings: dict[str, Any], config_file: Path | None, items: list[str], shortcuts
) -> list[dict[str, Any]]:
    """The override dicts of ``agent``'s grid: the config file, then ``--set`` and the shortcut flags; every
    combination checked against the agent's config class (fields, types, ranges)."""
    from spin_bench.overrides import expand_grid, parse_settings, settings_from_mapping
    from spin_bench.registry import agent_class, make_config

    cls = agent_class(agent).config_class
    owner = f"agent {agent} ({cls.__name__})"
    try:
        settings = settings_from_mapping(cls, file_settings, owner=owner)
    except ValueError as err:
        raise ValueError(f"{config_file}: {err}") from None
    given = parse_settings(cls, items, owner=owner)
    for flag, value in shortcuts.items():
        if value is None:
            continue
        name = SHORTCUTS[flag]
        if name in given:
            raise ValueError(f"give {flag} or --set {name}, not both")
        given[name] = [value]
    settings |= given
    grid = expand_grid(settings)
    for overrides in grid:
        make_config(agent, preset, **overrides)  # the config class's range checks, before any work
    return grid


def results_table(outcomes) -> Table:
    from spin_bench.runner.report import differing_fields, format_value
    from spin_bench.runner.spec import config_json

    any_failed = any(outcome.summary is None for outcome in outcomes)  # the column only when a run failed
    configs = {o.spec: config_json(o.spec.resolved_config()) for o in outcomes}
    columns = differing_fields(list(configs.values()), always=("num_steps",))
    table = compact_results_table(
        "Results: final evaluation (official), mean ± std over seeds",
        ids=("agent", "task", "dataset", *[c for c in columns if c != "num_steps"]),
        numbers=("bins", "steps", "seeds", "return", "normalized\n(0-100)", *(("failed",) if any_failed else ())),
    )
    cells = defaultdict(list)
    failures = defaultdict(int)
    rows = {}
    for outcome in outcomes:
        s = outcome.spec
        key = (s.agent, s.task, s.dataset, s.bins, s.label)  # seeds of one config together, other configs apart
        rows[key] = configs[s]
        if outcome.summary is None:
            failures[key] += 1
        else:
            cells[key].append(outcome.summary)
    for key in sorted(rows, key=lambda k: (k[:4], [format_value(rows[k].get(c)) for c in columns])):
        summaries = cells.get(key, [])
        returns = np.array([x["final_return_mean"] for x in summaries])
        scores = np.array([x["final_normalized_score"] for x in summaries])
        config = rows[key]
        table.add_row(
            *map(str, key[:3]),
            *[format_value(config.get(c)) for c in columns if c != "num_steps"],
            str(key[3]),
            format_value(config["num_steps"]),
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
    dataset: Annotated[
        str,
        typer.Option(
            help="Dataset quality, comma list, or all; original/<quality> for the original benchmark's imported files."
        ),
    ] = "medium",
    bins: Annotated[int, typer.Option(help="Bins per action dimension.")] = 3,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = None,
    num_seeds: Annotated[int | None, typer.Option(help="Seeds 0..K-1.")] = None,
    preset: Annotated[
        str,
        typer.Option(
            help="Config preset: paper (the benchmark's settings), lite (the reference results' CPU protocol) "
            "or quick (a CPU smoke test)."
        ),
    ] = DEFAULT_PRESET,
    settings: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML or JSON file mapping config fields to a value or a list of values (a grid); --set and "
            "the flags below override it.",
        ),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Gradient steps (sets num_steps).")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between evaluations (sets eval_every).")] = None,
    eval_episodes: Annotated[int | None, typer.Option(help="Episodes per evaluation (sets eval_episodes).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    out: Annotated[Path, typer.Option(help="Root folder of the run folders.")] = Path("runs"),
    executor: Annotated[str, typer.Option(help="local (worker processes) or ray.")] = "local",
    workers: Annotated[int, typer.Option(help="Runs at a time.")] = 1,
    address: Annotated[str | None, typer.Option(help="Address of an existing Ray cluster (ray executor).")] = None,
    continue_from: Annotated[
        Path | None,
        typer.Option(
            help="Runs root (e.g. an earlier --out) whose finished shorter runs of the same configs (fewer "
            "num_steps, nothing else changed, final checkpoint kept) the runs without a checkpoint start from; with "
            "the same code, the result equals training from step 0."
        ),
    ] = None,
) -> None:
    """Train and evaluate AGENT on datasets; finished runs are skipped and interrupted ones resumed.

    A run's folder is named by its config (the preset, the fields changed from it, a hash of the config and
    the data), so another config is another run and the same command finds its runs again.
    """
    from spin_bench.agents.presets import check_preset
    from spin_bench.overrides import read_settings_file
    from spin_bench.registry import AGENT_NAMES
    from spin_bench.runner import data
    from spin_bench.runner.executors import EXECUTORS, run_grid
    from spin_bench.runner.spec import RunSpec

    with cli_errors():
        agents = parse_list(agent, AGENT_NAMES, "agent")
        check_preset(preset)
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
        if address is not None and executor != "ray":
            raise ValueError(f"--address {address} is for --executor ray; the {executor} executor runs here")
        if workers < 1:
            raise ValueError(f"--workers {workers} must be >= 1")
        tasks = parse_list(task, data.all_tasks(), "task", all_values=data.tasks_with_datasets(bins))
        skipped = data.tasks_without_datasets(bins) if task == "all" else []
        if not tasks:
            reasons = "".join(f"; {name}: {why}" for name, why in skipped)
            raise ValueError(f"--task all: no task has a dataset to use at {bins} bins yet{reasons}")
        for name, why in skipped:
            err_console.print(f"--task all skips {name}: {why}", markup=False, highlight=False, soft_wrap=True)
        qualities = parse_list(dataset, data.DATASET_NAMES, "dataset", all_values=data.QUALITIES)
        seed_list = parse_seeds(seeds, num_seeds)
        shortcuts = {"--steps": steps, "--eval-every": eval_every, "--eval-episodes": eval_episodes}
        for flag, value in shortcuts.items():
            if value is not None and value < 1:
                raise ValueError(f"{flag} {value} must be >= 1")
        file_settings = read_settings_file(config) if config is not None else {}
        grids = {a: config_grid(a, preset, file_settings, config, settings or [], shortcuts) for a in agents}
        resolved_device = resolve_device(device)
        # Each dataset resolved once, here; the grid gets the records, not the ids to look up again.
        datasets = {d.id: d for d in (data.resolve(t, q, bins) for t in tasks for q in qualities)}
        if continue_from is not None and not continue_from.is_dir():
            raise ValueError(f"--continue-from {continue_from} is not a directory; give the --out of earlier runs")
        check_writable(out)
        specs = [
            RunSpec(a, t, q, bins, s, preset, tuple(overrides.items()))
            for t in tasks
            for q in qualities
            for a in agents
            for overrides in grids[a]
            for s in seed_list
        ]

    # markup off: "[local, ...]" is text, not a rich style tag
    console.print(f"{len(specs)} run(s) -> {out}  [{executor}, {workers} at a time, {resolved_device}]", markup=False)
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
            datasets=datasets,
            continue_from=continue_from,
        )
    except KeyboardInterrupt:
        err_console.print(
            "interrupted: runs were checkpointed. Resume with:\n  " + shlex.join(["spin-bench", *sys.argv[1:]]),
            markup=False,
        )
        raise typer.Exit(130) from None
    console.print(results_table(outcomes))
    continued = sum(1 for o in outcomes if o.summary and "continued_from" in o.summary)
    if continued and continue_from is not None:  # runs continued by an earlier command say so in their files
        console.print(
            f"{continued} run(s) started from the final checkpoint of a shorter run in {continue_from} "
            "(continued_from in their config.json)",
            markup=False,
        )
    for outcome in outcomes:
        if outcome.error:
            err_console.print(f"failed: {outcome.error}", markup=False)
    if any(o.error for o in outcomes):
        raise typer.Exit(1)
