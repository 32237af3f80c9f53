"""``spin-bench report RUNS_DIR``: tables, files and plots from finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spin_bench.cli._common import cli_errors, compact_results_table, console, err_console


def report(
    runs_dir: Annotated[Path, typer.Argument(help="Root folder of run folders (spin-bench run --out).")],
    format: Annotated[str, typer.Option("--format", help="md, csv or json.")] = "md",
    output: Annotated[Path | None, typer.Option(help="Report file (default: RUNS_DIR/report.FORMAT).")] = None,
    plots: Annotated[Path | None, typer.Option(help="Write learning-curve and aggregate PNGs to this folder.")] = None,
) -> None:
    """Per (agent, task, dataset, config) final return, normalized score, IQM with 95% CIs, time-to-target.

    Runs are grouped by their resolved config and data (config.json); the fields that differ between groups
    are columns, and the gradient steps always are. Run folders with unreadable or incomplete files are
    skipped with a warning.
    """
    from spin_bench._io import atomic_write_text
    from spin_bench.runner import report as rep

    with cli_errors():
        if format not in rep.REPORT_FORMATS:
            raise ValueError(f"unknown report format {format!r}; valid formats: {', '.join(rep.REPORT_FORMATS)}")
        found = rep.collect_runs(runs_dir)
        for path, why in found.skipped:
            err_console.print(f"warning: skipped a run: {path}: {why}", markup=False, highlight=False, soft_wrap=True)
        skipped = f" ({len(found.skipped)} skipped)" if found.skipped else ""
        if not found.finished:
            raise ValueError(f"no finished runs under {str(runs_dir)!r}{skipped}")
    rows = rep.build_cells(found.finished, found.failed)
    aggregates = rep.aggregate(rows, found.finished)
    text = rep.render(rows, aggregates, format)
    path = output or runs_dir / f"report.{format}"
    atomic_write_text(path, text)

    console.print(rep.header(rows), style="dim")
    columns = [c for c in rep.config_column_names(rows) if c != "steps"]
    table = compact_results_table(
        "Per task (official: final evaluation)",
        ids=("agent", "task", "dataset", *columns),
        numbers=("bins", "steps", "seeds", "final\nreturn", "normalized\n(0-100)", "best\nreturn", "TTT\n(s)"),
    )
    table.caption = "TTT: time-to-target in wall-clock seconds (how many seeds reached it)"
    if found.skipped:
        table.caption += f"; {len(found.skipped)} run(s) skipped (warnings above)"
    cells = rep.cell_dicts(rows)
    for c in cells:
        ttt = "n/a" if c["time_to_target_s"] is None else f"{c['time_to_target_s']:.0f} ({c['target_reached']})"
        table.add_row(
            c["agent"],
            c["task"],
            c["dataset"],
            *(c[name] for name in columns),
            str(c["bins"]),
            c["steps"],
            str(c["seeds"]),
            f"{c['final_return_mean']:.1f} ± {c['final_return_std']:.1f}",
            f"{c['normalized_score']:.1f}",
            f"{c['best_return_mean']:.1f}",
            ttt,
        )
    console.print(table)
    agg_columns = [c for c in columns if c != "data"]
    agg = compact_results_table(
        "Aggregate: IQM of normalized scores across tasks, 95% stratified bootstrap CI",
        ids=("agent", "dataset", *agg_columns),
        numbers=("bins", "steps", "tasks", "runs", "IQM", "95% CI"),
    )
    for a in aggregates:
        agg.add_row(
            a["agent"],
            a["dataset"],
            *(a[name] for name in agg_columns),
            str(a["bins"]),
            a["steps"],
            str(a["tasks"]),
            str(a["runs"]),
            f"{a['iqm_normalized']:.1f}",
            f"[{a['ci95_low']:.1f}, {a['ci95_high']:.1f}]",
        )
    console.print(agg)
    console.print(f"wrote {path}")
    if plots is not None:
        for png in rep.plot(rows, aggregates, plots):
            console.print(f"wrote {png}")
