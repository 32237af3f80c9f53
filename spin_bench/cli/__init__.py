"""The ``spin-bench`` command line (Typer + rich)."""

from spin_bench.cli.app import app, main

__all__ = ["app", "main"]
