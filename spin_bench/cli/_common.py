"""What every command shares: the consoles and the one-line handling of bad input."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import typer
from rich import box
from rich.console import Console
from rich.table import Table

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


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``spin-bench: error: message`` on one line to stderr and return the exit to raise."""
    err_console.print(f"spin-bench: error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn ValueError (bad input, raised before any work) into one line and exit code 2."""
    try:
        yield
    except ValueError as err:
        if os.environ.get("SPIN_BENCH_DEBUG"):
            raise
        raise fail(str(err)) from None


def parse_list(value: str, valid: tuple[str, ...], what: str, all_values: tuple[str, ...] | None = None) -> list[str]:
    """``"a,b"`` or ``"all"`` -> names, each checked against ``valid``."""
    if value == "all":
        return list(all_values if all_values is not None else valid)
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise ValueError(f"empty {what} list {value!r}; valid {what}s: {', '.join(valid)}, or all")
    for name in names:
        if name not in valid:
            raise ValueError(f"unknown {what} {name!r}; valid {what}s: {', '.join(valid)}, or all")
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
