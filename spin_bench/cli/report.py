"""``spin-bench report RUNS_DIR``: tables, files and plots from finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spin_bench.cli._common import compact_results_table, console, user_errors


def report(
    runs_dir: Annotated[Path, typer.Argument(help="Root folder of run folders (spin-bench run --out).")],
    format: Annotated[str, typer.Option("--format", help="md, csv or json.")] = "md",
    output: Annotated[Path | None, typer.Option(help="Report file (default: RUNS_DIR/report.FORMAT).")] = None,
    plots: Annotated[Path | None, typer.Option(help="Write learning-curve and aggregate PNGs to this folder.")] = None,
) -> None:
    """Per (agent, task, dataset) final return, normalized score, IQM with 95% CIs, time-to-target."""
    from spin_bench._io import atomic_write_text
    from spin_bench.runner import report as rep

    with user_errors():
        if format not in rep.REPORT_FORMATS:
            raise ValueError(f"unknown report format {format!r}; valid formats: {', '.join(rep.REPORT_FORMATS)}")
        records, failed = rep.collect_runs(runs_dir)
        if not records:
            raise ValueError(f"no finished runs under {str(runs_dir)!r}")
    rows = rep.build_cells(records, failed)
    aggregates = rep.aggregate(rows, records)
    text = rep.render(rows, aggregates, format)
    path = output or runs_dir / f"report.{format}"
    atomic_write_text(path, text)

    console.print(rep.header(rows), style="dim")
    table = compact_results_table(
        "Per task (official: final evaluation)",
        ids=("agent", "task", "dataset"),
        numbers=("bins", "seeds", "final\nreturn", "normalized\n(0-100)", "best\nreturn", "TTT\n(s)"),
    )
    table.caption = "TTT: time-to-target in wall-clock seconds (how many seeds reached it)"
    cells = rep.cell_dicts(rows)
    for c in cells:
        ttt = "n/a" if c["time_to_target_s"] is None else f"{c['time_to_target_s']:.0f} ({c['target_reached']})"
        table.add_row(
            c["agent"],
            c["task"],
            c["dataset"],
            str(c["bins"]),
            str(c["seeds"]),
            f"{c['final_return_mean']:.1f} ± {c['final_return_std']:.1f}",
            f"{c['normalized_score']:.1f}",
            f"{c['best_return_mean']:.1f}",
            ttt,
        )
    console.print(table)
    agg = compact_results_table(
        "Aggregate: IQM of normalized scores across tasks, 95% stratified bootstrap CI",
        ids=("agent", "dataset"),
        numbers=("bins", "tasks", "runs", "IQM", "95% CI"),
    )
    for a in aggregates:
        agg.add_row(
            a["agent"],
            a["dataset"],
            str(a["bins"]),
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
