"""Whether the curves still move at the end of training: per seed, the last evaluations' mean minus the mean of
the ones before them; per cell, falling or rising when the CI over seeds excludes 0, with the counts per agent."""

import pytest
from test_report_published import write_run
from typer.testing import CliRunner

from spin_bench.cli import app
from spin_bench.runner.report import (
    FALLING,
    NO_CLEAR_TREND,
    ONE_SEED,
    RISING,
    TOO_SHORT,
    build_report,
    cell_dicts,
    collect_runs,
    end_change,
)

TEN_EVALS = (("eval_every", 500),)  # 10 evaluations over write_run's 5000 steps


def _curve(before: float, last: float) -> list[float]:
    return [before] * 5 + [last] * 5  # raw returns; normalized = return / 10


@pytest.fixture
def grid(tmp_path):
    root = tmp_path / "runs"
    for seed, (before, last) in enumerate([(600, 300), (650, 350), (700, 380)]):  # falls by 30-32 points
        write_run(root, "f-iql", "cheetah-run", "medium", seed, _curve(before, last), overrides=TEN_EVALS)
    for seed, (before, last) in enumerate([(100, 200), (150, 260), (120, 250)]):  # rises by 10-13 points
        write_run(root, "spin", "cheetah-run", "medium", seed, _curve(before, last), overrides=TEN_EVALS)
    for seed, (before, last) in enumerate([(500, 550), (500, 450), (500, 500)]):  # -5 to +5
        write_run(root, "saint", "cheetah-run", "medium", seed, _curve(before, last), overrides=TEN_EVALS)
    write_run(root, "bc", "cheetah-run", "medium", 0, _curve(400, 100), overrides=TEN_EVALS)
    write_run(root, "ar-iql", "cheetah-run", "medium", 0, [100, 200, 300, 400, 500])  # 5 evaluations only
    return root


def test_end_change_is_the_last_evaluations_mean_minus_the_ones_before():
    assert end_change([1, 1, 1, 1, 1, 3, 3, 3, 3, 3]) == pytest.approx(2.0)
    assert end_change([9, 9, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2]) == pytest.approx(2.0)  # earlier evaluations ignored
    assert end_change([1, 2, 3, 4, 5, 6, 7, 8, 9]) is None


def test_each_cell_gets_its_trend(grid):
    cells = {c["agent"]: c for c in cell_dicts(build_report(collect_runs(grid)).rows)}
    assert cells["f-iql"]["end_trend"] == FALLING
    assert cells["f-iql"]["end_change_normalized"] == pytest.approx(-(30 + 30 + 32) / 3, abs=0.01)
    assert cells["f-iql"]["end_change_ci95_high"] < 0
    assert cells["spin"]["end_trend"] == RISING
    assert cells["spin"]["end_change_ci95_low"] > 0
    assert cells["saint"]["end_trend"] == NO_CLEAR_TREND
    assert cells["bc"]["end_trend"] == ONE_SEED
    assert cells["bc"]["end_change_normalized"] == pytest.approx(-30.0)
    assert cells["bc"]["end_change_ci95_low"] is None
    assert cells["ar-iql"]["end_trend"] == TOO_SHORT
    assert cells["ar-iql"]["end_change_normalized"] is None


def test_the_document_has_the_trend_table_and_counts(grid):
    result = CliRunner().invoke(app, ["report", str(grid)])
    assert result.exit_code == 0, result.output
    section = (grid / "report.md").read_text().split("## Are the curves still moving at the end?")[1]
    section = section.split("## Per task")[0]
    assert f"| f-iql | 5000 | 3 | 500-2500 to 3000-5000 | -30.7 | [-32.0, -30.0] | {FALLING} |" in section
    assert f"| spin | 5000 | 3 | 500-2500 to 3000-5000 | +11.3 | [10.0, 13.0] | {RISING} |" in section
    assert f"| bc | 5000 | 1 | 500-2500 to 3000-5000 | -30.0 | - | {ONE_SEED} |" in section
    assert f"| ar-iql | 5000 | 1 | - | - | - | {TOO_SHORT} |" in section
    assert f"spin {RISING} 1; saint {NO_CLEAR_TREND} 1; f-iql {FALLING} 1; ar-iql {TOO_SHORT} 1; bc {ONE_SEED} 1." in (
        section
    )
