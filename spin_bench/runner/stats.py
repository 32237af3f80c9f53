"""Statistics for reports: bootstrap CIs, IQM, probability of improvement, performance profiles, time-to-target.

The aggregate metrics follow Agarwal et al. (2021, "Deep RL at the Edge of the Statistical Precipice", and its
``rliable`` library), implemented here in numpy so that a report never depends on which packages are installed:

- IQM: the interquartile mean pools every run of every task (reports give every task as many runs first:
  ``runner.report.balanced``).
- Stratified bootstrap: runs are resampled *within* each task, so tasks with more seeds do not dominate the
  uncertainty; CIs are percentile intervals of the resampled statistic.
- Probability of improvement P(X > Y): per task, the fraction of (run of X, run of Y) pairs in which X scores
  higher, ties counting one half (the Mann-Whitney U statistic over n_x * n_y, as ``rliable`` computes it);
  averaged over tasks.
- Performance profile: at each threshold tau, the fraction of runs scoring strictly above tau, averaged over
  tasks (``rliable``'s run-score distribution; the two agree whenever every task has the same number of runs).

Every function that resamples takes a ``seed``: the same inputs give the same numbers. tests/test_report_rliable.py
checks these functions against ``rliable`` itself (the ``[rliable]`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

BOOTSTRAP_REPETITIONS = 2000
"""Resamples of every bootstrap CI in reports."""


def interquartile_mean(values: Sequence[float] | np.ndarray) -> float:
    """Mean of the middle 50% (scipy's ``trim_mean(x, 0.25)``: drop floor(n/4) from each end)."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        raise ValueError("interquartile_mean of no values")
    cut = int(0.25 * x.size)
    return float(x[cut : x.size - cut].mean())


def _percentile_interval(estimates: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [alpha, 1.0 - alpha], axis=0)
    return low, high


def mean_ci(
    values: Sequence[float] | np.ndarray,
    repetitions: int = BOOTSTRAP_REPETITIONS,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap CI of the mean of ``values`` (e.g. one cell's seeds)."""
    point, low, high = mean_curve_ci(np.asarray(values, dtype=np.float64).reshape(-1, 1), repetitions, confidence, seed)
    return float(point[0]), float(low[0]), float(high[0])


def mean_curve_ci(
    curves: np.ndarray, repetitions: int = BOOTSTRAP_REPETITIONS, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) per column of ``curves`` (runs x points): the runs are resampled whole, so every point of
    a resample uses the same runs."""
    x = np.asarray(curves, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"mean_curve_ci needs a (runs x points) array with at least one run, got shape {x.shape}")
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, x.shape[0], size=(repetitions, x.shape[0]))
    low, high = _percentile_interval(x[rows].mean(axis=1), confidence)
    return x.mean(axis=0), low, high


def _strata(scores_by_task: Mapping[str, Sequence[float]]) -> list[np.ndarray]:
    groups = [np.asarray(scores_by_task[k], dtype=np.float64) for k in sorted(scores_by_task)]
    groups = [g for g in groups if g.size]
    if not groups:
        raise ValueError("no scores to aggregate")
    return groups


def _resample(groups: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    return [g[rng.integers(0, g.size, size=g.size)] for g in groups]


def stratified_bootstrap_ci(
    scores_by_task: Mapping[str, Sequence[float]],
    statistic=interquartile_mean,
    repetitions: int = BOOTSTRAP_REPETITIONS,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point estimate, low, high) of ``statistic`` over all runs, resampling runs within each task."""
    groups = _strata(scores_by_task)
    point = statistic(np.concatenate(groups))
    rng = np.random.default_rng(seed)
    estimates = np.array([statistic(np.concatenate(_resample(groups, rng))) for _ in range(repetitions)])
    low, high = _percentile_interval(estimates, confidence)
    return float(point), float(low), float(high)


def _improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 over all pairs of one run of ``x`` and one of ``y``."""
    return float(np.mean((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])))


def _paired_strata(
    x_by_task: Mapping[str, Sequence[float]], y_by_task: Mapping[str, Sequence[float]]
) -> list[tuple[np.ndarray, np.ndarray]]:
    if sorted(x_by_task) != sorted(y_by_task):
        raise ValueError(f"tasks differ: {sorted(x_by_task)} against {sorted(y_by_task)}")
    pairs = [(np.asarray(x_by_task[k], np.float64), np.asarray(y_by_task[k], np.float64)) for k in sorted(x_by_task)]
    if not pairs or any(x.size == 0 or y.size == 0 for x, y in pairs):
        raise ValueError("probability of improvement needs at least one run of each agent on every task")
    return pairs


def probability_of_improvement(
    x_by_task: Mapping[str, Sequence[float]], y_by_task: Mapping[str, Sequence[float]]
) -> float:
    """P(X > Y) averaged over tasks; both mappings must name the same tasks."""
    return float(np.mean([_improvement(x, y) for x, y in _paired_strata(x_by_task, y_by_task)]))


def probability_of_improvement_ci(
    x_by_task: Mapping[str, Sequence[float]],
    y_by_task: Mapping[str, Sequence[float]],
    repetitions: int = BOOTSTRAP_REPETITIONS,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(P(X > Y), low, high), resampling the runs of X and of Y independently within each task."""
    pairs = _paired_strata(x_by_task, y_by_task)
    point = float(np.mean([_improvement(x, y) for x, y in pairs]))
    rng = np.random.default_rng(seed)
    estimates = np.zeros(repetitions)
    for x, y in pairs:
        xs = x[rng.integers(0, x.size, size=(repetitions, x.size))]
        ys = y[rng.integers(0, y.size, size=(repetitions, y.size))]
        wins = (xs[:, :, None] > ys[:, None, :]) + 0.5 * (xs[:, :, None] == ys[:, None, :])
        estimates += wins.mean(axis=(1, 2)) / len(pairs)
    low, high = _percentile_interval(estimates, confidence)
    return point, float(low), float(high)


def performance_profile(scores_by_task: Mapping[str, Sequence[float]], taus: Sequence[float]) -> np.ndarray:
    """Fraction of runs scoring strictly above each tau, averaged over tasks."""
    return _profile(_strata(scores_by_task), np.asarray(taus, dtype=np.float64))


def _profile(groups: list[np.ndarray], taus: np.ndarray) -> np.ndarray:
    return np.mean([(g[:, None] > taus[None, :]).mean(axis=0) for g in groups], axis=0)


def performance_profile_ci(
    scores_by_task: Mapping[str, Sequence[float]],
    taus: Sequence[float],
    repetitions: int = BOOTSTRAP_REPETITIONS,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(profile, low, high) at each tau, by stratified bootstrap over runs."""
    groups, grid = _strata(scores_by_task), np.asarray(taus, dtype=np.float64)
    rng = np.random.default_rng(seed)
    estimates = np.zeros((repetitions, grid.size))
    for g in groups:
        sample = g[rng.integers(0, g.size, size=(repetitions, g.size))]
        estimates += (sample[:, :, None] > grid[None, None, :]).mean(axis=1) / len(groups)
    low, high = _percentile_interval(estimates, confidence)
    return _profile(groups, grid), low, high


def first_reaching(values: Sequence[float], target: float) -> int | None:
    """Index of the first value >= ``target`` (None if none)."""
    for index, value in enumerate(values):
        if value >= target:
            return index
    return None


def time_to_target(wall_seconds: Sequence[float], returns: Sequence[float], target: float) -> float | None:
    """Wall-clock seconds at the first evaluation whose return reaches ``target`` (None if never)."""
    if len(wall_seconds) != len(returns):
        raise ValueError(f"{len(wall_seconds)} times for {len(returns)} returns")
    index = first_reaching(returns, target)
    return None if index is None else float(wall_seconds[index])
