"""Offline datasets: catalog, Minari build, download and loading."""

from spin_bench.datasets.transitions import Transitions

__all__ = ["Transitions"]
