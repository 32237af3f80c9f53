"""Aggregate statistics for reports: IQM with stratified bootstrap CIs, and time-to-target.

Follows Agarwal et al. (2021, "Deep RL at the Edge of the Statistical Precipice"): the interquartile
mean pools every run of every task; the confidence interval resamples runs *within* each task
(stratified bootstrap), so tasks with more seeds do not dominate the uncertainty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def interquartile_mean(values: Sequence[float] | np.ndarray) -> float:
    """Mean of the middle 50% (scipy's ``trim_mean(x, 0.25)``: drop floor(n/4) from each end)."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        raise ValueError("interquartile_mean of no values")
    cut = int(0.25 * x.size)
    return float(x[cut : x.size - cut].mean())


def stratified_bootstrap_ci(
    scores_by_task: Mapping[str, Sequence[float]],
    statistic=interquartile_mean,
    repetitions: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point estimate, low, high) of ``statistic`` over all runs, resampling runs within each task."""
    groups = [np.asarray(v, dtype=np.float64) for v in scores_by_task.values() if len(v)]
    if not groups:
        raise ValueError("no scores to aggregate")
    point = statistic(np.concatenate(groups))
    rng = np.random.default_rng(seed)
    estimates = np.empty(repetitions)
    for r in range(repetitions):
        sample = [g[rng.integers(0, g.size, size=g.size)] for g in groups]
        estimates[r] = statistic(np.concatenate(sample))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [alpha, 1.0 - alpha])
    return float(point), float(low), float(high)


def time_to_target(wall_seconds: Sequence[float], returns: Sequence[float], target: float) -> float | None:
    """Wall-clock seconds at the first evaluation whose return reaches ``target`` (None if never)."""
    for seconds, value in zip(wall_seconds, returns, strict=True):
        if value >= target:
            return float(seconds)
    return None
