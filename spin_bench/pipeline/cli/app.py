"""Root of the ``spin-bench-maintain`` command: the maintainers' dataset pipeline, beside the user's ``spin-bench``.

Training behaviour agents, recording datasets into the catalog, measuring reference scores, publishing and the
dataset card. Users never need it: ``spin-bench datasets build`` rebuilds any recorded dataset from the shipped
snapshots.
"""

from __future__ import annotations

import typer

from spin_bench.cli._common import CliErrorsGroup
from spin_bench.pipeline.cli.behaviour import app as behaviour_app
from spin_bench.pipeline.cli.datasets import app as datasets_app

app = typer.Typer(
    name="spin-bench-maintain",
    help="The maintainers' dataset pipeline: behaviour agents, recording, reference scores, publishing, card.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=CliErrorsGroup,
)
app.add_typer(behaviour_app, name="behaviour", help="Train, export, rebin and diagnose DecQN behaviour agents.")
for command in datasets_app.registered_commands:
    app.registered_commands.append(command)


def main() -> None:
    """Console entry point; exit codes and error lines are those of :mod:`spin_bench.errors`."""
    app()
