import numpy as np
import pytest

from spin_bench.runner.stats import interquartile_mean, stratified_bootstrap_ci, time_to_target


def test_interquartile_mean_matches_scipy_trim_mean_definition():
    assert interquartile_mean([1, 2, 3, 4, 100, -100, 5, 6]) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert interquartile_mean([7.0]) == 7.0
    assert interquartile_mean([1, 2, 3]) == 2.0  # floor(3/4) = 0 trimmed
    with pytest.raises(ValueError):
        interquartile_mean([])


def test_stratified_bootstrap_resamples_within_tasks():
    # Task a always scores 10 and task b always 50: resampling within tasks cannot move the IQM,
    # whereas pooled resampling would (it could draw only a's runs).
    point, low, high = stratified_bootstrap_ci({"a": [10, 10, 10, 10], "b": [50, 50, 50, 50]}, repetitions=500)
    assert point == low == high == 30.0
    point, low, high = stratified_bootstrap_ci({"a": [0, 10, 20, 30], "b": [40, 50, 60, 70]}, repetitions=500)
    assert low < point < high
    assert point == pytest.approx(interquartile_mean([0, 10, 20, 30, 40, 50, 60, 70]))


def test_time_to_target_is_the_first_crossing():
    assert time_to_target([10, 20, 30, 40], [1, 5, 3, 9], target=5) == 20
    assert time_to_target([10, 20], [1, 2], target=5) is None
