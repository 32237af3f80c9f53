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


def test_mean_ci_of_three_seeds_is_their_range_and_of_equal_values_a_point():
    from spin_bench.runner.stats import mean_ci

    # A resample of three seeds is all one seed with probability 1/27 > 2.5%: the 95% interval is [min, max].
    assert mean_ci([10.0, 40.0, 70.0]) == pytest.approx((40.0, 10.0, 70.0))
    assert mean_ci([5.0, 5.0, 5.0]) == (5.0, 5.0, 5.0)
    point, low, high = mean_ci(np.arange(20.0))
    assert low < point < high and high - low < 10  # twenty seeds: a much narrower interval
    assert mean_ci([1.0, 2.0, 3.0], seed=3) == mean_ci([1.0, 2.0, 3.0], seed=3)


def _brute_force_improvement(x_by_task, y_by_task):
    import itertools

    per_task = []
    for task in x_by_task:
        pairs = list(itertools.product(x_by_task[task], y_by_task[task]))
        per_task.append(sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs))
    return sum(per_task) / len(per_task)


def test_probability_of_improvement_counts_ties_as_half_and_averages_tasks():
    from spin_bench.runner.stats import probability_of_improvement, probability_of_improvement_ci

    x = {"a": [1, 2, 3], "b": [5, 5], "c": [0.0]}
    y = {"a": [0, 2, 2, 4], "b": [5, 6, 4], "c": [1.0]}
    expected = _brute_force_improvement(x, y)
    assert expected == pytest.approx(((1 + 2 + 3) / 12 + (1.5 + 1.5) / 6 + 0) / 3)
    assert probability_of_improvement(x, y) == pytest.approx(expected)
    assert probability_of_improvement({"a": [1, 2]}, {"a": [1, 2]}) == 0.5  # identical runs: no improvement
    # scipy's Mann-Whitney U over n_x * n_y, rliable's formula, agrees task by task.
    scipy_stats = pytest.importorskip("scipy.stats")
    u = scipy_stats.mannwhitneyu(x["a"], y["a"], alternative="greater").statistic
    assert probability_of_improvement({"a": x["a"]}, {"a": y["a"]}) == pytest.approx(u / 12)

    point, low, high = probability_of_improvement_ci(x, y)
    assert point == pytest.approx(expected) and 0 <= low < point < high <= 1
    assert probability_of_improvement_ci({"a": [3, 4]}, {"a": [1, 2]}) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="tasks differ"):
        probability_of_improvement({"a": [1]}, {"b": [1]})


def test_performance_profile_is_the_fraction_of_runs_strictly_above_tau_averaged_over_tasks():
    from spin_bench.runner.stats import performance_profile, performance_profile_ci

    scores = {"a": [10, 20, 30, 40], "b": [50, 50]}
    # tau 20: a has 2 of 4 above (20 itself is not above), b 2 of 2: (0.5 + 1) / 2; tau 45: (0 + 1) / 2.
    assert performance_profile(scores, [0, 20, 45, 60]).tolist() == [1.0, 0.75, 0.5, 0.0]
    point, low, high = performance_profile_ci(scores, [0, 20, 45, 60])
    assert point.tolist() == [1.0, 0.75, 0.5, 0.0]
    assert (low <= point).all() and (point <= high).all() and low[1] < high[1]
    assert low[2] == high[2] == 0.5 and low[3] == high[3] == 0.0  # every resample agrees there


def test_first_reaching_and_time_to_target_refuse_mismatched_lengths():
    from spin_bench.runner.stats import first_reaching

    assert first_reaching([1, 5, 3, 9], 5) == 1 and first_reaching([1, 2], 5) is None
    with pytest.raises(ValueError, match="3 times for 2 returns"):
        time_to_target([1, 2, 3], [1, 2], target=1)
