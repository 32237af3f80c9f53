"""Root of the ``spin-bench`` command: sub-commands are mounted here, one module each."""

from __future__ import annotations

import typer

from spin_bench.cli._common import CliErrorsGroup
from spin_bench.cli.datasets import app as datasets_app
from spin_bench.cli.eval import eval_command
from spin_bench.cli.listing import list_command
from spin_bench.cli.report import report
from spin_bench.cli.run import run

app = typer.Typer(
    name="spin-bench",
    help="Offline RL benchmark for large discrete combinatorial action spaces.",
    epilog="Maintainers' dataset pipeline (behaviour agents, recording, publishing): spin-bench-maintain --help",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=CliErrorsGroup,  # the one error model (spin_bench.errors) for every command
)
app.add_typer(datasets_app, name="datasets", help="Offline datasets: list, info, build, download, verify.")
app.command("run")(run)
app.command("report")(report)
app.command("eval")(eval_command)
app.command("list")(list_command)


def main() -> None:
    """Console entry point; exit codes and error lines are those of :mod:`spin_bench.errors`."""
    app()
