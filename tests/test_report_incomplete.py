"""An incomplete grid: agents that ran different (task, dataset) cells are compared only on the cells they all ran,
the document says which cells those are and which were left out, cells short of seeds are flagged, and
``--readme`` writes the aggregate table into a README's marked block."""

import json

import numpy as np
import pytest
from test_report_published import curve, write_run
from typer.testing import CliRunner

from spin_bench.cli import app
from spin_bench.runner.report import build_report, collect_runs
from spin_bench.runner.stats import interquartile_mean

# Final returns per seed (normalized = return / 10). SPIN has no medium-expert run; BC has no walker-walk run;
# F-IQL's walker-walk cell has 2 seeds where the grid's cells have 3.
FINALS = {
    ("spin", "cheetah-run", "medium"): (500, 600, 700),
    ("spin", "walker-walk", "medium"): (300, 300, 300),
    ("f-iql", "cheetah-run", "medium"): (400, 600, 800),
    ("f-iql", "walker-walk", "medium"): (100, 200),
    ("f-iql", "cheetah-run", "medium-expert"): (900, 900, 900),
    ("bc", "cheetah-run", "medium"): (100, 100, 100),
    ("bc", "cheetah-run", "medium-expert"): (500, 500, 500),
}
README = "# project\n\n## Results\n\nText above.\n\n<!-- results:begin -->\nold\n<!-- results:end -->\n\nText below.\n"


@pytest.fixture
def partial(tmp_path):
    root = tmp_path / "runs"
    for (agent, task, dataset), finals in FINALS.items():
        for seed, final in enumerate(finals):
            write_run(root, agent, task, dataset, seed, curve(final))
    return root


def test_aggregates_improvements_and_profiles_use_only_the_cells_every_agent_has(partial):
    report = build_report(collect_runs(partial))
    agg = {(a["agent"], a["dataset"]): a for a in report.aggregates}
    # F-IQL on medium: cheetah-run's 40, 60, 80 alone; its walker-walk runs (10, 20) would pull the IQM down.
    assert agg[("f-iql", "medium")]["tasks"] == 1 and agg[("f-iql", "medium")]["runs"] == 3
    assert agg[("f-iql", "medium")]["iqm_normalized"] == pytest.approx(interquartile_mean([40, 60, 80]))
    assert agg[("spin", "medium")]["iqm_normalized"] == pytest.approx(60.0)
    assert agg[("bc", "medium-expert")]["iqm_normalized"] == pytest.approx(50.0)
    assert ("spin", "medium-expert") not in agg
    assert {a["tasks"] for a in report.aggregates if a["dataset"] == "all"} == {1}

    poi = {(p["baseline"], p["dataset"]): p for p in report.improvements}
    # cheetah-run only: 50/60/70 against 40/60/80 wins 4.5 of 9 pairs; walker-walk (all wins) is left out.
    assert poi[("f-iql", "medium")]["tasks"] == 1
    assert poi[("f-iql", "medium")]["probability"] == pytest.approx(0.5)
    assert set(poi) == {(b, d) for b in ("f-iql", "bc") for d in ("medium", "all")}

    from spin_bench.runner.report import profiles

    found = {(p["agent"], p["dataset"]): p for p in profiles(report.rows)}
    fiql = found[("f-iql", "medium")]
    at_45 = fiql["taus"].index(next(t for t in fiql["taus"] if t >= 45))
    assert fiql["fraction"][at_45] == pytest.approx(2 / 3, abs=1e-3)  # 60 and 80 of cheetah-run's 40, 60, 80

    compared = {c.scope: c for c in report.comparisons}
    assert compared["medium"].cells == (("cheetah-run", "medium"),)
    assert [(cell, [e.agent for e in missing]) for cell, missing in compared["medium"].left_out] == [
        (("walker-walk", "medium"), ["bc"])
    ]
    assert [e.agent for e in compared["medium-expert"].entries] == ["f-iql", "bc"]  # SPIN has no run there
    assert compared["medium-expert"].cells == (("cheetah-run", "medium-expert"),)
    assert compared["all"].cells == (("cheetah-run", "medium"),)


def test_the_document_names_the_compared_cells_the_left_out_ones_and_cells_short_of_seeds(partial):
    result = CliRunner().invoke(app, ["report", str(partial)])
    assert result.exit_code == 0, result.output
    md = (partial / "report.md").read_text()
    section = md.split("## Cells compared")[1].split("## Aggregate")[0]
    assert "| task | dataset | spin n | f-iql n | bc n | compared in |" in section
    assert "| cheetah-run | medium | 3 | 3 | 3 | medium, all |" in section
    assert "| walker-walk | medium | 3 | 2 (< 3) | - | none |" in section
    assert "| cheetah-run | medium-expert | - | 3 | 3 | medium-expert |" in section
    assert "- medium: 1 cell(s), cheetah-run; agents spin, f-iql, bc." in section
    assert "- cheetah-run medium-expert: left out of all (no runs of spin)." in section
    assert "- walker-walk medium: left out of medium, all (no runs of bc)." in section
    assert "Incomplete grid: 7 of the 9 (agent, task, dataset) cells" in section
    aggregate = md.split("## Aggregate")[1].split("## Probability")[0]
    assert "| spin | 60.0 [50.0, 70.0] (n=3) | - | 60.0 [50.0, 70.0] (n=3) |" in aggregate
    assert "Cells compared: medium: cheetah-run; medium-expert: cheetah-run; all: cheetah-run medium." in aggregate
    panel = md.split("### walker-walk, medium, 3 bins")[1].split("###")[0]
    assert "| agent | preset | steps | n (seeds) |" in panel
    assert "| f-iql | quick | 5000 | 2 (< 3) | 15.0 |" in panel and "| spin | quick | 5000 | 3 | 30.0 |" in panel

    assert CliRunner().invoke(app, ["report", str(partial), "--format", "json"]).exit_code == 0
    data = json.loads((partial / "report.json").read_text())
    everything = next(c for c in data["compared_cells"] if c["dataset"] == "all")
    assert everything["cells"] == ["cheetah-run/medium"]
    assert {"cell": "walker-walk/medium", "no_runs": ["bc"]} in everything["left_out"]
    short = [c for c in data["cells"] if c["fewer_seeds_than_typical"]]
    assert [(c["agent"], c["task"]) for c in short] == [("f-iql", "walker-walk")]


def test_a_complete_grid_leaves_nothing_out(tmp_path):
    root = tmp_path / "runs"
    for agent in ("spin", "f-iql"):
        for task in ("cheetah-run", "walker-walk"):
            for seed in (0, 1):
                write_run(root, agent, task, "medium", seed, curve(100 * (seed + 1)))
    report = build_report(collect_runs(root))
    assert all(not c.left_out and len(c.cells) == 2 for c in report.comparisons)
    assert CliRunner().invoke(app, ["report", str(root)]).exit_code == 0
    md = (root / "report.md").read_text()
    assert "No cell is left out: every agent has runs on every cell." in md
    assert "Complete grid: all 4 (agent, task, dataset) cells have 2 seed(s)." in md
    assert " (< 2) |" not in md  # no cell flagged


def test_readme_option_rewrites_only_the_marked_block_with_the_aggregate_table(partial, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text(README)
    (tmp_path / "results").mkdir()
    args = ["report", "runs", "--format", "md", "--output", "results/README.md", "--readme", "README.md"]
    runner = CliRunner()
    assert runner.invoke(app, args).exit_code == 0
    first = (tmp_path / "README.md").read_text()
    assert runner.invoke(app, args).exit_code == 0
    assert (tmp_path / "README.md").read_text() == first  # byte for byte again
    head, block = first.split("<!-- results:begin -->\n")
    block, tail = block.split("<!-- results:end -->")
    assert head == "# project\n\n## Results\n\nText above.\n\n" and tail == "\n\nText below.\n"
    assert "old" not in block
    command = "spin-bench report runs --format md --output results/README.md --readme README.md"
    assert f"Generated by `{command}`" in block
    assert command in (tmp_path / "results" / "README.md").read_text()  # the document names the same command
    assert "Protocol `quick` (5000 gradient steps" in block and "trained on CPU (AMD EPYC 7B13" in block
    assert "Incomplete grid: 7 of the 9" in block
    assert "| agent | medium | medium-expert | all |" in block
    assert "| f-iql | 60.0 [40.0, 80.0] (n=3) | 90.0 [90.0, 90.0] (n=3) | 60.0 [40.0, 80.0] (n=3) |" in block
    assert "[results/README.md](results/README.md)" in block  # linked relative to the README
    # The block's table is the document's table: one rendering of one set of numbers.
    document = (tmp_path / "results" / "README.md").read_text()
    table = [line for line in block.splitlines() if line.startswith("| ")]
    assert "\n".join(table) in document
    # A README that changed aggregate (one more run) is rewritten.
    write_run(tmp_path / "runs", "spin", "cheetah-run", "medium-expert", 0, curve(100))
    assert runner.invoke(app, args).exit_code == 0
    assert (tmp_path / "README.md").read_text() != first


@pytest.mark.parametrize(
    "readme, args, message",
    [
        ("# no markers\n", [], "README.md needs one '<!-- results:begin -->' line followed by one"),
        (README + README, [], "it has 2 and 2"),
        (README, ["--format", "csv"], "--readme needs --format md"),
    ],
)
def test_readme_option_refuses_a_file_it_cannot_write_into_and_leaves_it_as_is(
    partial, tmp_path, monkeypatch, readme, args, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text(readme)
    result = CliRunner().invoke(app, ["report", "runs", "--readme", "README.md", *args])
    assert result.exit_code == 2 and message in result.output
    assert (tmp_path / "README.md").read_text() == readme
    assert not any((tmp_path / "runs").glob("report.*"))  # nothing half-written
    missing = CliRunner().invoke(app, ["report", "runs", "--readme", "nope.md"])
    assert missing.exit_code == 2 and "--readme file 'nope.md' does not exist" in missing.output


def test_seed_counts_are_flagged_against_the_most_common_count():
    from spin_bench.runner.report import CellRow, typical_seed_count

    def row(n):
        return CellRow("f-iql", "t", "d", 3, "lite", list(range(n)), *np.zeros(6), eval_episodes=10)

    assert typical_seed_count([row(3), row(3), row(1)]) == 3
    assert typical_seed_count([row(1), row(1), row(3)]) == 1
    assert typical_seed_count([row(2), row(3)]) == 3  # a tie: the larger count
    assert typical_seed_count([]) == 0
