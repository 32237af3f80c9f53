"""Reports from run folders: official final numbers, labelled best, time-to-target, files and plots."""

import csv
import json

import pytest
from typer.testing import CliRunner

from spin_bench.cli import app
from spin_bench.runner.report import build_cells, collect_runs, render
from spin_bench.runner.spec import RunSpec


def _fake_run(root, agent, task, seed, returns, walls, dataset="medium", status="finished"):
    """A run folder as execute_run leaves it (summary.json + metrics.csv)."""
    spec = RunSpec(agent, task, dataset, 3, seed, "quick")
    folder = spec.folder(root)
    folder.mkdir(parents=True)
    steps = [1000 * (i + 1) for i in range(len(returns))]
    with open(folder / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["step", "wall_seconds", "eval_return_mean", "eval_return_std", "normalized_score"])
        writer.writeheader()
        for s, w, r in zip(steps, walls, returns, strict=True):
            row = {"step": s, "wall_seconds": w, "eval_return_mean": r, "eval_return_std": 1.0}
            writer.writerow(row | {"normalized_score": r / 10})
    best = max(range(len(returns)), key=lambda i: returns[i])
    summary = {**spec.to_dict(), "status": status}
    if status == "finished":
        summary |= {
            "eval_episodes": 5,
            "final_return_mean": returns[-1],
            "final_return_std": 1.0,
            "final_normalized_score": returns[-1] / 10,
            "best_return_mean": returns[best],
            "best_step": steps[best],
            "best_normalized_score": returns[best] / 10,
        }
    (folder / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    # F-IQL ends at 400 and 600 (mean 500): the target is 0.95 * 500 = 475.
    _fake_run(root, "f-iql", "cheetah-run", 0, [100, 300, 400], [10, 20, 30])
    _fake_run(root, "f-iql", "cheetah-run", 1, [200, 500, 600], [10, 20, 30])
    _fake_run(root, "spin", "cheetah-run", 0, [480, 700, 650], [15, 25, 35])  # reaches 475 at 15 s
    _fake_run(root, "spin", "cheetah-run", 1, [100, 200, 500], [15, 25, 35])  # at 35 s
    _fake_run(root, "bc", "cheetah-run", 0, [100, 100, 100], [1, 2, 3])  # never
    _fake_run(root, "spin", "finger-spin", 0, [300, 300, 300], [1, 2, 3])  # no F-IQL there
    _fake_run(root, "spin", "finger-spin", 1, [0, 0, 0], [1, 2, 3], status="failed")
    return root


def test_cells_use_the_final_evaluation_and_time_to_target(runs):
    records, failed = collect_runs(runs)
    cells = {(c.agent, c.task): c for c in build_cells(records, failed)}
    spin = cells[("spin", "cheetah-run")]
    assert spin.final_return_mean == pytest.approx((650 + 500) / 2)  # final, not best
    assert spin.best_return_mean == pytest.approx((700 + 500) / 2)
    assert spin.time_to_target_s == pytest.approx(25.0)  # median of 15 and 35
    assert spin.target_reached == "2/2"
    assert cells[("f-iql", "cheetah-run")].target_reached == "1/2"  # seed 1 reaches 475 at 20 s
    assert cells[("bc", "cheetah-run")].time_to_target_s is None
    assert cells[("bc", "cheetah-run")].target_reached == "0/1"
    assert cells[("spin", "finger-spin")].target_reached == "n/a"
    assert cells[("spin", "finger-spin")].failed == 1


def test_report_cli_writes_markdown_csv_json_and_plots(runs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(runs), "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    # The terminal tables (CliRunner: 80 columns) show whole numbers and explain TTT.
    assert "575.0 ± 75.0" in result.output and "TTT: time-to-target" in result.output
    md = (runs / "report.md").read_text()
    assert "official number is the FINAL evaluation" in md and "Seeds: 0, 1" in md
    assert "| spin | cheetah-run | medium | 3 | quick | 2 | 575.0 ± 75.0 |" in md
    assert "best return (not official)" in md and "IQM" in md
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert "aggregate_iqm.png" in pngs and "curve_cheetah-run_medium_bins3_quick.png" in pngs
    assert all((tmp_path / "plots" / p).stat().st_size > 1000 for p in pngs)

    assert runner.invoke(app, ["report", str(runs), "--format", "json"]).exit_code == 0
    data = json.loads((runs / "report.json").read_text())
    spin_agg = next(a for a in data["aggregates"] if a["agent"] == "spin")
    assert spin_agg["tasks"] == 2 and spin_agg["runs"] == 3
    assert spin_agg["ci95_low"] <= spin_agg["iqm_normalized"] <= spin_agg["ci95_high"]
    assert runner.invoke(app, ["report", str(runs), "--format", "csv"]).exit_code == 0
    rows = list(csv.DictReader(open(runs / "report.csv")))
    assert {r["agent"] for r in rows} == {"f-iql", "spin", "bc"}


def test_report_bad_input_is_one_line(runs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(runs), "--format", "xml"])
    assert result.exit_code == 2 and "unknown report format 'xml'; valid formats: md, csv, json" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
    with pytest.raises(ValueError, match="unknown report format"):
        render([], [], "xml")
