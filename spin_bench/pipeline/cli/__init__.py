"""The ``spin-bench-maintain`` command line (the maintainers' dataset pipeline)."""

from spin_bench.pipeline.cli.app import app, main

__all__ = ["app", "main"]
