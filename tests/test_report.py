"""Reports from run folders: official final numbers, labelled best, time-to-target, files and plots."""

import csv
import json

import pytest
from typer.testing import CliRunner

from spin_bench.cli import app
from spin_bench.runner.report import Report, build_cells, build_report, collect_runs, render
from spin_bench.runner.spec import RunSpec, config_json


def _fake_run(root, agent, task, seed, returns, walls, dataset="medium", status="finished", overrides=(), digest=None):
    """A run folder as execute_run leaves it (config.json + summary.json + metrics.csv)."""
    spec = RunSpec(agent, task, dataset, 3, seed, "quick", overrides, digest or f"{task}-{dataset}-digest")
    folder = spec.folder(root)
    folder.mkdir(parents=True)
    run_config = {"spec": spec.to_dict(), "agent_config": config_json(spec.resolved_config())}
    (folder / "config.json").write_text(json.dumps(run_config))
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
    found = collect_runs(runs)
    assert found.skipped == []
    cells = {(c.agent, c.task): c for c in build_cells(found.finished, found.failed)}
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


def test_cells_show_the_mean_of_the_last_evaluations_beside_the_final_one(tmp_path):
    from spin_bench.runner.report import LAST_EVALS

    root = tmp_path / "runs"
    # A curve that peaks and falls: the final evaluation (100) and the mean of the last five (300) disagree.
    _fake_run(root, "f-iql", "cheetah-run", 0, [700, 600, 500, 400, 300, 200, 100], list(range(7)))
    _fake_run(root, "f-iql", "cheetah-run", 1, [200, 300], [1, 2])  # fewer evaluations than LAST_EVALS: all of them
    found = collect_runs(root)
    (cell,) = build_cells(found.finished, found.failed)
    assert LAST_EVALS == 5
    assert cell.final_return_mean == pytest.approx((100 + 300) / 2)
    assert cell.last_evals_return_mean == pytest.approx((300 + 250) / 2)
    assert cell.last_evals_normalized_mean == pytest.approx((30 + 25) / 2)
    table = render(build_report(found), "md")
    assert "mean of last 5 evals: return (normalized)" in table and "| 275.0 (27.5) |" in table


def test_report_cli_writes_markdown_csv_json_and_plots(runs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(runs), "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    # The terminal tables (CliRunner: 80 columns) show whole numbers and explain TTT.
    assert "575.0 ± 75.0" in result.output and "TTT: time-to-target" in result.output
    md = (runs / "report.md").read_text()
    assert "official number is the FINAL evaluation" in md and "Seeds: 0, 1" in md
    panel = md.split("### cheetah-run, medium, 3 bins")[1].split("###")[0]
    assert "| spin | quick | 5000 | 2 | 57.5 | [50.0, 65.0] | 575.0 | [500.0, 650.0] |" in panel  # steps always shown
    assert "best return (not official)" in md and "IQM" in md
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert "aggregate_iqm.png" in pngs and "curve_cheetah-run_medium_bins3.png" in pngs
    assert all((tmp_path / "plots" / p).stat().st_size > 1000 for p in pngs)

    assert runner.invoke(app, ["report", str(runs), "--format", "json"]).exit_code == 0
    data = json.loads((runs / "report.json").read_text())
    spin_agg = next(a for a in data["aggregates"] if a["agent"] == "spin")
    assert spin_agg["tasks"] == 1 and spin_agg["runs"] == 2  # finger-spin, which only SPIN ran, is left out
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
        render(Report([], [], []), "xml")


def test_runs_of_different_configs_are_separate_cells_with_their_differing_fields(tmp_path):
    root = tmp_path / "runs"
    for seed in (0, 1):
        _fake_run(root, "f-iql", "cheetah-run", seed, [100, 200], [1, 2], overrides=(("num_steps", 100),))
        _fake_run(root, "f-iql", "cheetah-run", seed, [300, 400], [1, 2], overrides=(("num_steps", 300),))
        _fake_run(root, "f-iql", "cheetah-run", seed, [500, 600], [1, 2], overrides=(("num_steps", 300), ("beta", 10)))
    # The same config on other data (a rebuilt dataset): a cell of its own, told apart by its digest.
    _fake_run(root, "f-iql", "cheetah-run", 0, [700, 800], [1, 2], overrides=(("num_steps", 300),), digest="ff" * 32)
    found = collect_runs(root)
    rows = build_cells(found.finished, found.failed)
    assert [(r.config["num_steps"], r.config["beta"], r.final_return_mean, len(r.seeds)) for r in rows] == [
        (100, 3.0, 200.0, 2),
        (300, 3.0, 400.0, 2),
        (300, 3.0, 800.0, 1),
        (300, 10.0, 600.0, 2),
    ]  # never averaged together
    result = CliRunner().invoke(app, ["report", str(root)])
    assert result.exit_code == 0, result.output
    md = (root / "report.md").read_text()
    assert "| agent | preset | steps | beta | data | n (seeds) |" in md
    assert "| f-iql | quick | 300 | 10 | cheetah- | 2 | 60.0 | [60.0, 60.0] | 600.0 |" in md
    assert "| f-iql | quick | 300 | 3 | ffffffff | 1 (< 2) | 80.0 | - | 800.0 | - |" in md  # no CI from one seed
    assert "| agent | dataset | bins | preset | steps | beta | tasks | runs | IQM | 95% CI |" in md
    for header in ("steps", "beta", "data"):
        assert header in result.output  # the terminal table too


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda f: _write(f / "summary.json", "{}"), "summary.json: lacks 'agent'"),
        (lambda f: _write(f / "summary.json", '{"status": "finished", "agent": "bc"}'), "summary.json: lacks 'task'"),
        (lambda f: _write(f / "summary.json", "[1, 2]"), "summary.json: holds a list, not a JSON object"),
        (lambda f: _write(f / "summary.json", '{"agent": '), "summary.json: not valid JSON"),
        (lambda f: _write(f / "config.json", "{"), "config.json: not valid JSON"),
        (lambda f: (f / "config.json").unlink(), "config.json: missing"),
        (lambda f: _write(f / "metrics.csv", ""), "metrics.csv: missing or without evaluations"),
        (lambda f: _write(f / "metrics.csv", "step,wall_seconds,eval_return_mean\n1,x,3\n"), "metrics.csv: unreadable"),
        (lambda f: _write(f / "metrics.csv", "step,wall_seconds\n1,2\n"), "metrics.csv: a row lacks one of"),
    ],
)
def test_bad_run_files_are_skipped_with_a_one_line_warning(runs, damage, why):
    folder = next(p.parent for p in sorted(runs.rglob("summary.json")) if "spin/cheetah-run" in str(p))
    damage(folder)
    file, reason = why.split(": ", 1)
    found = collect_runs(runs)
    assert len(found.skipped) == 1
    path, got = found.skipped[0]
    assert path == folder / file and got.startswith(reason) and "\n" not in got
    result = CliRunner().invoke(app, ["report", str(runs)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipped a run: {path}: {got}"]
    assert "1 run(s) skipped" in result.output
    # The other spin seed is still reported, alone.
    cells = {(c.agent, c.task): c for c in build_cells(found.finished, found.failed)}
    assert len(cells[("spin", "cheetah-run")].seeds) == 1


def test_a_finished_summary_without_its_numbers_is_skipped(runs):
    path = next(p for p in sorted(runs.rglob("summary.json")) if "bc/" in str(p))
    summary = json.loads(path.read_text())
    del summary["final_return_mean"]
    path.write_text(json.dumps(summary))
    found = collect_runs(runs)
    assert found.skipped == [(path, "lacks 'final_return_mean'")]
    assert CliRunner().invoke(app, ["report", str(runs)]).exit_code == 0


def test_only_bad_runs_is_one_error_line(tmp_path):
    root = tmp_path / "runs"
    _fake_run(root, "bc", "cheetah-run", 0, [1, 2], [1, 2])
    next(root.rglob("summary.json")).write_text("{}")
    result = CliRunner().invoke(app, ["report", str(root)])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].endswith("no finished runs under " + repr(str(root)) + " (1 skipped)")
