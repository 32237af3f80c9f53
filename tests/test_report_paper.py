"""The report's comparison with the SPIN paper: for each pair of the paper's agents on a dataset the paper reports,
the paper's order, and whether the grid's runs reproduce it (CI of P(higher > lower) above 0.5), reverse it (below)
or leave it open; one run per cell gives no verdict."""

import json

import pytest
from test_report_published import curve, write_run
from typer.testing import CliRunner

from spin_bench.cli import app
from spin_bench.runner.paper import (
    NO_INTERVAL,
    REPRODUCED,
    REVERSED,
    UNRESOLVED,
    paper_order,
    paper_results,
    quality,
)
from spin_bench.runner.report import build_report, collect_runs

# Final returns per seed (normalized = return / 10) on random-medium-expert, where the paper orders
# spin 499.2 > saint 438.9 > ar-iql 395.6 > f-iql 388.3. Here SPIN beats every run of F-IQL (reproduced), F-IQL
# beats every run of SAINT (the paper's saint > f-iql reversed), and AR-IQL and F-IQL interleave (not resolved).
RME = {
    "spin": (800, 850, 900),
    "saint": (100, 150, 200),
    "ar-iql": (400, 600, 800),
    "f-iql": (500, 550, 700),
    "bc": (300, 300, 300),
}
# medium-expert: one seed per cell, so no interval and no verdict.
ME = {"spin": (700,), "f-iql": (600,)}


@pytest.fixture
def grid(tmp_path):
    root = tmp_path / "runs"
    for task in ("cheetah-run", "walker-walk"):
        for dataset, finals in (("random-medium-expert", RME), ("medium-expert", ME)):
            for agent, returns in finals.items():
                for seed, final in enumerate(returns):
                    write_run(root, agent, task, dataset, seed, curve(final))
    return root


def test_each_pair_of_the_papers_agents_gets_the_papers_order_and_a_verdict(grid):
    rows = build_report(collect_runs(grid)).paper
    found = {(r["dataset"], r["higher"], r["lower"]): r for r in rows}
    # Four of the paper's agents on random-medium-expert: 6 pairs; BC is not in the paper; SPIN and F-IQL on
    # medium-expert: 1 pair. 'all' is not a dataset the paper reports.
    assert len(rows) == 7
    assert {d for d, _, _ in found} == {"random-medium-expert", "medium-expert"}
    assert not any("bc" in (h, lo) for _, h, lo in found)

    spin_fiql = found[("random-medium-expert", "spin", "f-iql")]
    assert (spin_fiql["paper_higher_return"], spin_fiql["paper_lower_return"]) == (499.2, 388.3)
    assert spin_fiql["probability"] == pytest.approx(1.0)
    assert spin_fiql["verdict"] == REPRODUCED
    assert (spin_fiql["tasks"], spin_fiql["runs"], spin_fiql["baseline_runs"]) == (2, 6, 6)

    saint_fiql = found[("random-medium-expert", "saint", "f-iql")]  # the paper's order, whatever the grid says
    assert saint_fiql["probability"] == pytest.approx(0.0)
    assert saint_fiql["verdict"] == REVERSED

    ar_fiql = found[("random-medium-expert", "ar-iql", "f-iql")]
    assert 0.0 < ar_fiql["probability"] < 1.0
    assert ar_fiql["ci95_low"] <= 0.5 <= ar_fiql["ci95_high"]
    assert ar_fiql["verdict"] == UNRESOLVED

    single = found[("medium-expert", "spin", "f-iql")]
    assert single["probability"] == pytest.approx(1.0)
    assert single["verdict"] == NO_INTERVAL
    assert single["ci95_low"] is None and single["ci95_high"] is None


def test_the_document_and_json_carry_the_comparison(grid):
    result = CliRunner().invoke(app, ["report", str(grid)])
    assert result.exit_code == 0, result.output
    section = (grid / "report.md").read_text().split("## Comparison with the paper")[1].split("## ")[0]
    assert "random-medium-expert: paper (mean raw return) spin 499.2 > saint 438.9 > ar-iql 395.6 > f-iql 388.3" in (
        section
    )
    assert "here (IQM of normalized scores) spin 85.0 > " in section
    reversed_row = "| saint | f-iql | 438.9 vs 388.3 | 2 | 6 vs 6 | 0.00 | [0.00, 0.00] | reversed |"
    assert reversed_row in section
    assert f"| medium-expert | spin | f-iql | 753.2 vs 724.7 | 2 | 2 vs 2 | 1.00 | - | {NO_INTERVAL} |" in section

    result = CliRunner().invoke(app, ["report", str(grid), "--format", "json", "--output", str(grid / "r.json")])
    assert result.exit_code == 0, result.output
    document = json.loads((grid / "r.json").read_text())
    assert len(document["paper_comparison"]) == 7


def test_a_grid_without_two_of_the_papers_agents_on_one_dataset_says_so(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "spin", "cheetah-run", "medium", 0, curve(500))
    write_run(root, "bc", "cheetah-run", "medium", 0, curve(400))
    report = build_report(collect_runs(root))
    assert report.paper == []
    result = CliRunner().invoke(app, ["report", str(root)])
    assert result.exit_code == 0, result.output
    document = (root / "report.md").read_text()
    assert "No dataset of this grid has two of the paper's agents on the same cells." in document


def test_runs_at_other_bins_are_not_compared_with_the_papers_3_bin_table(tmp_path):
    root = tmp_path / "runs"
    for agent, final in (("spin", 500), ("f-iql", 400)):
        write_run(root, agent, "cheetah-run", "medium", 0, curve(final), bins=10)
    assert build_report(collect_runs(root)).paper == []


def test_imported_original_datasets_map_to_the_papers_quality_levels():
    assert quality("original/random-medium-expert") == "random-medium-expert"
    assert paper_results("original/medium")["spin"].mean_return == 345.2
    assert paper_results("random") == {}
    assert [r.agent for r in paper_order("expert")] == ["spin", "f-iql", "saint", "ar-iql"]
