"""`spin-bench run` end to end on a tiny real dataset (built from the tiny test catalog)."""

import csv
import json
import time

import pytest
from typer.testing import CliRunner

from spin_bench.cli import app
from spin_bench.runner.executors import run_grid
from spin_bench.runner.run import read_metrics
from spin_bench.runner.spec import RunSpec

TINY = ["--task", "cheetah-run", "--dataset", "medium", "--preset", "quick", "--eval-episodes", "1"]


def _folders(out, agent="f-iql", seed=0):
    """The run folders of ``agent`` and ``seed`` on cheetah-run medium, one per config (oldest first)."""
    found = (out / agent / "cheetah-run" / "medium" / "bins3").glob(f"*/seed{seed}")
    return sorted(found, key=lambda folder: folder.stat().st_mtime_ns)


def _folder(out, agent="f-iql", seed=0, timeout=0.0):
    """The one run folder of ``agent`` and ``seed`` (waiting up to ``timeout`` s for a run to create it)."""
    deadline = time.time() + timeout
    while not _folders(out, agent, seed) and time.time() < deadline:
        time.sleep(0.5)
    folders = _folders(out, agent, seed)
    assert len(folders) == 1, folders
    return folders[0]


def test_run_trains_evaluates_writes_the_run_folder_and_skips_when_finished(tiny_catalog, tmp_path):
    out = tmp_path / "runs"
    runner = CliRunner()
    result = runner.invoke(app, ["run", "f-iql", *TINY, "--steps", "200", "--eval-every", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "normalized" in result.output and "(0-100)" in result.output and "f-iql" in result.output
    folder = _folder(out)
    config = json.loads((folder / "config.json").read_text())
    assert config["agent_config"]["num_steps"] == 200 and config["dataset_id"] == "spin/cheetah-run/medium-v0"
    assert config["versions"]["torch"] and "git_commit" in config and config["device"] == "cpu"
    assert config["host"]["torch_threads"] == 1 and config["host"]["cpu_model"]  # reports name the machine
    rows = read_metrics(folder)
    assert [r["step"] for r in rows] == [100, 200]
    assert rows[0]["wall_seconds"] < rows[1]["wall_seconds"]
    assert {"critic_loss", "value_loss", "actor_loss"} <= set(rows[0])
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["final_return_mean"] == rows[-1]["eval_return_mean"]
    assert f"{summary['final_return_mean']:.1f} ± 0.0" in result.output  # the results table, one seed
    # Normalized with the tiny catalog's references (random 5, expert 500).
    assert summary["final_normalized_score"] == pytest.approx(100 * (rows[-1]["eval_return_mean"] - 5) / 495, abs=0.01)

    before = (folder / "metrics.csv").read_text()
    result = runner.invoke(app, ["run", "f-iql", *TINY, "--steps", "200", "--eval-every", "100", "--out", str(out)])
    assert result.exit_code == 0 and (folder / "metrics.csv").read_text() == before  # skipped, not retrained


def test_other_options_are_another_run_and_the_same_command_skips(tiny_catalog, tmp_path):
    # The case: the same command with --steps 300 after --steps 100 must train 300 steps, not return
    # the 100-step result; both runs stay, each in its own folder. No --preset: the default, paper.
    out = tmp_path / "runs"
    base = ["run", "bc", "--task", "cheetah-run", "--dataset", "medium", "--seeds", "0", "--eval-every", "50"]
    base += ["--eval-episodes", "1", "--out", str(out)]
    runner = CliRunner()
    result = runner.invoke(app, [*base, "--steps", "100"])
    assert result.exit_code == 0, result.output
    assert "1 run(s) -> " in result.output and "[local, 1 at a time, cpu]" in result.output  # the device shows
    first = _folder(out, "bc")
    assert first.parent.name.startswith("paper-num_steps=100-eval_every=50-eval_episodes=1-")

    result = runner.invoke(app, [*base, "--steps", "300"])
    assert result.exit_code == 0, result.output
    short, long = _folders(out, "bc")
    assert short == first
    summary = json.loads((long / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 300
    assert [r["step"] for r in read_metrics(long)] == [50, 100, 150, 200, 250, 300]
    config = json.loads((long / "config.json").read_text())
    assert config["agent_config"]["num_steps"] == 300 and config["spec"]["preset"] == "paper"
    assert config["spec"]["label"] == long.parent.name and "data_digest" in config["spec"]
    assert json.loads((short / "summary.json").read_text())["steps"] == 100  # the first run is kept as it was

    before = {p: (p / "metrics.csv").read_text() for p in (short, long)}
    result = runner.invoke(app, [*base, "--steps", "300"])
    assert result.exit_code == 0, result.output
    assert _folders(out, "bc") == [short, long]
    assert {p: (p / "metrics.csv").read_text() for p in (short, long)} == before  # skipped, not retrained


def test_a_local_build_trains_and_its_runs_carry_its_own_sha256(tiny_catalog, tmp_path):
    # A machine whose build differs from the published sha256 can still train, on data it must opt in to.
    from spin_bench.cli.datasets import app as datasets_app
    from spin_bench.pipeline.record import record_dataset

    dataset = "spin/cheetah-run/medium-v0"
    runner = CliRunner()
    record_dataset(dataset, workers=1, progress=False)
    raw = json.loads(tiny_catalog.read_text())
    raw["entries"][0]["datasets"][dataset]["sha256"] = "e" * 64  # recorded on a CPU that rounds differently
    tiny_catalog.write_text(json.dumps(raw, indent=2))
    command = ["run", "bc", *TINY, "--steps", "100", "--eval-every", "100", "--out", str(tmp_path / "runs")]
    result = runner.invoke(app, command)
    assert result.exit_code != 0 and "the catalog records eeeeeeeeeeeeeeee" in result.output
    result = runner.invoke(datasets_app, ["build", dataset, "--force"])
    assert result.exit_code != 0 and "--allow-mismatch" in result.output
    result = runner.invoke(datasets_app, ["build", dataset, "--force", "--allow-mismatch"])
    assert result.exit_code == 0 and "installed as a local build, not the published data" in result.output

    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert f"{dataset} is a local build" in " ".join(result.output.split())
    config = json.loads((_folder(tmp_path / "runs", "bc") / "config.json").read_text())
    assert config["spec"]["data_digest"] not in (None, "e" * 64)


def test_a_set_grid_trains_one_run_per_value_and_report_tells_them_apart(tiny_catalog, tmp_path):
    out = tmp_path / "runs"
    args = ["run", "f-iql", *TINY, "--set", "beta=1,10", "--steps", "20", "--eval-every", "20", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 run(s) -> " in result.output
    folders = _folders(out, "f-iql")
    assert len(folders) == 2
    configs = [json.loads((folder / "config.json").read_text()) for folder in folders]
    assert sorted(c["agent_config"]["beta"] for c in configs) == [1.0, 10.0]
    assert all(c["agent_config"]["num_steps"] == 20 for c in configs)
    labels = sorted(folder.parent.name for folder in folders)
    assert all(label.startswith("quick-num_steps=20-eval_every=20-eval_episodes=1-beta=") for label in labels)
    assert "-beta=1-" in labels[0] and "-beta=10-" in labels[1]
    assert "beta" in result.output  # the results table: one row per config, beta a column

    result = CliRunner().invoke(app, ["report", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out / "report.csv")))
    assert sorted((r["beta"], r["steps"], r["seeds"]) for r in rows) == [("1", "20", "1"), ("10", "20", "1")]


def test_a_config_file_sets_fields_and_set_overrides_it(tiny_catalog, tmp_path):
    out = tmp_path / "runs"
    config_file = tmp_path / "ablation.yaml"
    config_file.write_text("critic_hidden: [64, 64]\nexpectile: [0.6, 0.9]\nnum_steps: 20\neval_every: 20\n")
    args = ["run", "f-iql", *TINY, "--config", str(config_file), "--set", "expectile=0.7", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((_folder(out, "f-iql") / "config.json").read_text())["agent_config"]
    assert (config["critic_hidden"], config["expectile"], config["num_steps"]) == ([64, 64], 0.7, 20)

    config_file.write_text("critic_hidden: [64, 0]\n")
    result = CliRunner().invoke(app, ["run", "f-iql", *TINY, "--config", str(config_file), "--out", str(out)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "critic_hidden=(64, 0) is out of range" in result.output


def test_a_diverging_run_fails_alone(tiny_catalog, tmp_path):
    good = RunSpec("bc", "cheetah-run", "medium", 3, 0, "quick", (("num_steps", 50), ("eval_every", 50)))
    bad = RunSpec("f-iql", "cheetah-run", "medium", 3, 0, "quick", (("num_steps", 50), ("lr", 1e10)))
    outcomes = run_grid([bad, good], tmp_path / "runs", workers=2)
    assert outcomes[0].summary is None and "became" in outcomes[0].error and "stopping this run" in outcomes[0].error
    failed = json.loads((_folder(tmp_path / "runs", "f-iql") / "summary.json").read_text())
    assert failed["status"] == "failed"
    assert outcomes[1].summary["status"] == "finished"


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "spinn"], "unknown agent 'spinn' (did you mean spin?); valid agents: spin, saint, f-iql, ar-iql, bc"),
        (["run", "bc", "--task", "cheetah-runn"], "unknown task 'cheetah-runn' (did you mean cheetah-run?); valid"),
        (["run", "bc", "--dataset", "mediun"], "unknown dataset 'mediun' (did you mean medium?); valid datasets:"),
        (["run", "bc", "--preset", "fast"], "unknown preset 'fast'; valid presets: paper, lite, quick"),
        (["run", "bc", "--seeds", "0,x"], "malformed seed list '0,x'"),
        (["run", "bc", "--seeds", "1,1"], "malformed seed list '1,1'"),
        (["run", "bc", "--executor", "slurm"], "unknown executor 'slurm'; valid executors: local, ray"),
        (["run", "bc", "--device", "tpu"], "unknown device 'tpu'; valid devices: auto, cpu, cuda"),
        (["run", "bc", "--continue-from", "/no/runs"], "--continue-from /no/runs is not a directory"),
        (["run", "bc", "--steps", "0"], "--steps 0 must be >= 1"),
        (["run", "bc", "--steps", "-5"], "--steps -5 must be >= 1"),
        (["run", "bc", "--eval-episodes", "0"], "--eval-episodes 0 must be >= 1"),
        (["run", "bc", "--address", "10.0.0.1:6379"], "--address 10.0.0.1:6379 is for --executor ray"),
        (["run", "f-iql", "--set", "nosuch=1"], "agent f-iql (FIQLConfig) has no field 'nosuch'; valid fields:"),
        (["run", "f-iql", "--set", "beta=abc"], "beta=abc is not valid: beta takes a number"),
        (["run", "f-iql", "--set", "expectile=2"], "expectile=2.0 is out of range: expectile must be in (0, 1)"),
        (["run", "f-iql,bc", "--set", "beta=1,10"], "agent bc (BCConfig) has no field 'beta'"),
        (["run", "f-iql", "--set", "critic_hidden=256,x"], "critic_hidden=256,x is not valid"),
        (["run", "bc", "--steps", "10", "--set", "num_steps=20"], "give --steps or --set num_steps, not both"),
        (["run", "bc", "--config", "no-such-file.yaml"], "cannot read config file 'no-such-file.yaml'"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(tiny_catalog, tmp_path, args, message):
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # nothing done before the check


def test_unwritable_output_folder_is_reported_before_training(tiny_catalog, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(app, ["run", "bc", *TINY, "--out", str(tmp_path / "file" / "runs")])
    assert result.exit_code == 2 and "is not writable" in result.output


def test_ray_executor_runs_a_small_grid_on_a_local_cluster(tiny_catalog, tmp_path):
    out = tmp_path / "runs"
    args = ["run", "bc,f-iql", *TINY, "--seeds", "0,1", "--steps", "60", "--eval-every", "60"]
    result = CliRunner().invoke(app, [*args, "--executor", "ray", "--workers", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for agent in ("bc", "f-iql"):
        for seed in (0, 1):
            summary = json.loads((_folder(out, agent, seed) / "summary.json").read_text())
            assert summary["status"] == "finished" and summary["steps"] == 60


def test_task_all_means_the_tasks_whose_datasets_can_be_had(tmp_path, monkeypatch):
    from conftest import write_tiny_catalog

    from spin_bench.runner.data import tasks_with_datasets

    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(write_tiny_catalog(tmp_path / "ok")))
    assert tasks_with_datasets(3) == ("cheetah-run",)
    # An expert below its target leaves its entry without obtainable datasets: --task all skips it.
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(write_tiny_catalog(tmp_path / "below", expert_ref=420.0)))
    assert tasks_with_datasets(3) == ()
    result = CliRunner().invoke(app, ["run", "bc", "--task", "all", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "--task all: no task has a dataset to use at 3 bins yet" in result.output
    assert (
        "cheetah-run: the expert reference of cheetah-run (3 bins), 420.0, is below its target 450.0" in result.output
    )


def test_task_all_names_each_task_it_skips_and_why_in_one_line(tmp_path, monkeypatch):
    from conftest import write_tiny_catalog

    from spin_bench.pipeline.catalog_edit import EditableCatalog

    # Two entries: cheetah-run's expert meets its target, a second one's (a copy named walker-walk) does not.
    path = write_tiny_catalog(tmp_path / "two")
    raw = json.loads(path.read_text())
    below = json.loads(json.dumps(raw["entries"][0]).replace("cheetah-run", "walker-walk"))
    below["expert_target"] = 900.0
    raw["entries"].append(below)
    EditableCatalog(raw, path).save()
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(path))
    # --steps -1 is refused after the task list is resolved and before any work.
    result = CliRunner().invoke(app, ["run", "bc", "--task", "all", "--steps", "-1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    skip_lines = [line for line in result.output.splitlines() if line.startswith("--task all skips")]
    assert skip_lines == [
        "--task all skips walker-walk: the expert reference of walker-walk (3 bins), 500.0, is below its target 900.0"
        ": its checkpoints are provisional until training reaches the target"
    ]
