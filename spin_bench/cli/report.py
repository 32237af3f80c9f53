"""``spin-bench report RUNS_DIR``: tables, files and plots from finished runs."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from spin_bench.cli._common import cli_errors, compact_results_table, console, err_console


def shown_path(path: Path) -> str:
    """``path`` as a results document may name it: as given when relative, relative to the working folder when
    inside it, else its name alone (a document never holds a machine-local absolute path)."""
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.name


def report(
    runs_dir: Annotated[Path, typer.Argument(help="Root folder of run folders (spin-bench run --out).")],
    format: Annotated[str, typer.Option("--format", help="md, csv or json.")] = "md",
    output: Annotated[Path | None, typer.Option(help="Report file (default: RUNS_DIR/report.FORMAT).")] = None,
    plots: Annotated[
        Path | None,
        typer.Option(
            help="Write learning-curve, aggregate and performance-profile PNGs to this folder (the md "
            "report shows them, by their path relative to the report)."
        ),
    ] = None,
    readme: Annotated[
        Path | None,
        typer.Option(
            help="Also write the aggregate table, the protocol and a link to the md report between the "
            "'<!-- results:begin -->' and '<!-- results:end -->' lines of this file (e.g. README.md)."
        ),
    ] = None,
) -> None:
    """Per (agent, task, dataset, config) final normalized score and return with 95% bootstrap CIs over seeds,
    aggregate IQM with stratified bootstrap CIs, SPIN's probability of improvement, time-to-target.

    Runs are grouped by their resolved config and data (config.json); the fields that differ between groups
    of one agent are columns, and the gradient steps always are. Run folders with unreadable or incomplete files
    are skipped with a one-line warning each. The same run files and command give the same report, byte for byte.
    """
    from spin_bench._io import atomic_write_text
    from spin_bench.runner import report as rep

    with cli_errors():
        if format not in rep.REPORT_FORMATS:
            raise ValueError(f"unknown report format {format!r}; valid formats: {', '.join(rep.REPORT_FORMATS)}")
        if readme is not None and format != "md":
            raise ValueError(f"--readme needs --format md (the block links to the markdown report), not {format!r}")
        found = rep.collect_runs(runs_dir)
        for path, why in found.skipped:
            err_console.print(f"warning: skipped a run: {path}: {why}", markup=False, highlight=False, soft_wrap=True)
        skipped = f" ({len(found.skipped)} skipped)" if found.skipped else ""
        if not found.finished:
            raise ValueError(f"no finished runs under {str(runs_dir)!r}{skipped}")
    result = rep.build_report(found)
    rows = result.rows
    path = output or runs_dir / f"report.{format}"
    command = ["spin-bench", "report", shown_path(runs_dir), "--format", format]
    command += ["--output", shown_path(output)] if output is not None else []
    command += ["--plots", shown_path(plots)] if plots is not None else []
    command += ["--readme", shown_path(readme)] if readme is not None else []
    images = None
    if plots is not None:
        images = Path(os.path.relpath(plots.absolute(), path.absolute().parent)).as_posix()
    text = rep.render(result, format, command=shlex.join(command), images=images)
    if readme is not None:
        from spin_bench.runner.report_md import write_readme_block

        with cli_errors():
            document = Path(os.path.relpath(path.absolute(), readme.absolute().parent)).as_posix()
            write_readme_block(readme, result, shlex.join(command), document)
    atomic_write_text(path, text)

    console.print(rep.header(rows), style="dim")
    columns = [c for c in rep.config_column_names(rows) if c != "steps"]
    table = compact_results_table(
        "Per task (official: final evaluation)",
        ids=("agent", "task", "dataset", *columns),
        numbers=("bins", "steps", "seeds", "final\nreturn", "normalized\n(0-100)", "best\nreturn", "TTT\n(min)"),
    )
    table.caption = "TTT: time-to-target in wall-clock minutes (how many seeds reached it)"
    if found.skipped:
        table.caption += f"; {len(found.skipped)} run(s) skipped (warnings above)"
    cells = rep.cell_dicts(rows)
    for c, row in zip(cells, rows, strict=True):
        if row.target_return is not None and not row.target_defined:
            ttt = "target<=0"
        elif c["time_to_target_min"] is None:
            ttt = "n/a" if c["target_reached"] == "n/a" else f"- ({c['target_reached']})"
        else:
            ttt = f"{c['time_to_target_min']:.1f} ({c['target_reached']})"
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
        "Aggregate: IQM of normalized scores on the cells all compared agents share, 95% stratified bootstrap CI",
        ids=("agent", "dataset", *agg_columns),
        numbers=("bins", "steps", "tasks", "runs", "IQM", "95% CI"),
    )
    for a in result.aggregates:
        agg.add_row(
            a["agent"],
            a["dataset"],
            *(a[name] for name in agg_columns),
            str(a["bins"]),
            a["steps"],
            str(a["tasks"]),
            rep.runs_used(a),
            f"{a['iqm_normalized']:.1f}",
            f"[{a['ci95_low']:.1f}, {a['ci95_high']:.1f}]",
        )
    console.print(agg)
    console.print(f"wrote {path}")
    if plots is not None:
        from spin_bench.runner.plots import write_plots

        for png in write_plots(result, plots):
            console.print(f"wrote {png}")
