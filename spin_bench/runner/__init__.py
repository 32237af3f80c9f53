"""Benchmark runs: run folders, resumable training, executors, reports."""
