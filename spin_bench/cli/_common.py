"""What every command shares: the consoles, the one error mapping (exit codes and one-line messages), parsing."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
from collections.abc import Iterator
from typing import Any

import click
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from spin_bench.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, SpinBenchError

console = Console()
err_console = Console(stderr=True)


def compact_results_table(title: str, ids: tuple[str, ...], numbers: tuple[str, ...]) -> Table:
    """A table of results that fits an 80-column terminal: no vertical rules, one space between columns.

    ``ids`` columns fold rather than being cut (they are typed back into commands); ``numbers`` never wrap.
    Use "\\n" in a number's header to put it on two lines.
    """
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for name in ids:
        table.add_column(name, overflow="fold")
    for name in numbers:
        table.add_column(name, no_wrap=True, justify="right" if name in ("bins", "seeds", "tasks", "runs") else "left")
    return table


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``spin-bench: error: message`` (whitespace collapsed to one line) to stderr; return the exit to raise."""
    err_console.print(f"spin-bench: error: {' '.join(message.split())}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _debugging() -> bool:
    return os.environ.get("SPIN_BENCH_DEBUG", "") not in ("", "0")


def _os_error_message(err: OSError) -> str:
    """``path: reason`` (both paths for a rename or copy), so the line names the file that failed."""
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    reason = err.strerror or str(err) or type(err).__name__
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def exit_code_and_message(err: BaseException) -> tuple[int, str] | None:
    """The exit code and one-line message of an expected failure; None for anything else (a bug: its traceback is
    wanted), for click's own exceptions (usage errors: exit code 2) and ``typer.Exit``, which pass through as they are.
    """
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(err, BrokenPipeError):
        return None  # stdout closed early (``spin-bench list | head``): click exits quietly
    if isinstance(err, SpinBenchError):
        return EXIT_FAILURE, str(err) or type(err).__name__
    if isinstance(err, json.JSONDecodeError):  # a ValueError, but a damaged file rather than bad input
        return EXIT_FAILURE, f"a JSON document is damaged: {err}"
    if isinstance(err, ValueError):
        return EXIT_BAD_INPUT, str(err) or type(err).__name__
    if isinstance(err, OSError):
        return EXIT_FAILURE, _os_error_message(err)
    return None


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Apply the error model of :mod:`spin_bench.errors`: an expected failure becomes one line on stderr and its
    exit code (:func:`exit_code_and_message`). ``SPIN_BENCH_DEBUG=1`` re-raises it instead, for the traceback."""
    try:
        yield
    except (KeyboardInterrupt, Exception) as err:
        outcome = exit_code_and_message(err)
        if outcome is None or _debugging():
            raise
        code, message = outcome
        if code == EXIT_INTERRUPTED:
            err_console.print("spin-bench: interrupted", markup=False, highlight=False)
            raise typer.Exit(code) from None
        raise fail(message, code) from None


class CliErrorsGroup(TyperGroup):
    """A command group whose every command runs under :func:`cli_errors` (sub-groups included)."""

    def invoke(self, ctx: click.Context) -> Any:
        with cli_errors():
            return super().invoke(ctx)


def parse_list(value: str, valid: tuple[str, ...], what: str, all_values: tuple[str, ...] | None = None) -> list[str]:
    """``"a,b"`` or ``"all"`` -> names, each checked against ``valid``."""
    if value == "all":
        return list(all_values if all_values is not None else valid)
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise ValueError(f"empty {what} list {value!r}; valid {what}s: {', '.join(valid)}, or all")
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"unknown {what} {name!r}{hint}; valid {what}s: {', '.join(valid)}, or all")
    return names


def parse_seeds(seeds: str | None, num_seeds: int | None) -> list[int]:
    """``--seeds 0,1,2`` or ``--num-seeds K`` (0..K-1); default seed 0."""
    if seeds is not None and num_seeds is not None:
        raise ValueError("give --seeds or --num-seeds, not both")
    if num_seeds is not None:
        if num_seeds < 1:
            raise ValueError(f"--num-seeds {num_seeds} must be >= 1")
        return list(range(num_seeds))
    if seeds is None:
        return [0]
    try:
        parsed = [int(s) for s in seeds.split(",")]
    except ValueError:
        raise ValueError(
            f"malformed seed list {seeds!r}; expected comma-separated non-negative ints like 0,1,2"
        ) from None
    if any(s < 0 for s in parsed) or len(set(parsed)) != len(parsed):
        raise ValueError(f"malformed seed list {seeds!r}; seeds must be distinct non-negative ints like 0,1,2")
    return parsed
