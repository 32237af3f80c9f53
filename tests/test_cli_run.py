"""`spin-bench run` end to end on a tiny real dataset (built from the tiny test catalog)."""

import contextlib
import json
import os
import signal
import subprocess
import time

import pytest
import torch
from conftest import launch_cli
from typer.testing import CliRunner

from spin_bench.cli import app
from spin_bench.runner.executors import _interrupt_once, run_grid
from spin_bench.runner.run import PROGRESS_INTERVAL_S, read_metrics
from spin_bench.runner.spec import RunSpec

TINY = ["--task", "cheetah-run", "--dataset", "medium", "--preset", "quick", "--eval-episodes", "1"]


def _folder(out, agent="f-iql", seed=0):
    return RunSpec(agent, "cheetah-run", "medium", 3, seed, "quick").folder(out)


def _wait_until_training(folder, timeout=240):
    """Until the run's progress file shows training steps (the dataset is built and the loop runs)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        progress = folder / "progress.json"
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            if json.loads(progress.read_text())["step"] > 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"no training step in {folder} after {timeout} s")


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


def test_killed_run_resumes_from_its_checkpoint(tiny_catalog, tmp_path):
    out = tmp_path / "runs"
    args = ["run", "bc", *TINY, "--steps", "1200", "--eval-every", "200", "--out", str(out)]
    process = launch_cli(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = _folder(out, "bc")
    deadline = time.time() + 240
    while not (folder / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.5)
    assert (folder / "checkpoint.pt").exists(), process.stderr.read() if process.poll() is not None else "timeout"
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGKILL)  # a crash: no chance to save anything more
    process.wait()
    # metrics.csv is written just before checkpoint.pt, so the kill may land between the two:
    # the checkpoint on disk, not the last metrics row, is what a resume must continue from.
    checkpointed = torch.load(folder / "checkpoint.pt", weights_only=True)["agent"]["step"]
    assert 200 <= checkpointed < 1200

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["resumed_from"] == [checkpointed]  # continued from the checkpoint, not from zero
    steps = [r["step"] for r in read_metrics(folder)]
    assert steps == list(range(200, 1201, 200))


def test_ctrl_c_checkpoints_and_prints_the_resume_command(tiny_catalog, tmp_path):
    out = tmp_path / "runs"
    args = ["run", "bc", *TINY, "--steps", "100000", "--eval-every", "100000", "--out", str(out)]
    process = launch_cli(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = _folder(out, "bc")
    _wait_until_training(folder)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Resume with:" in stderr and "spin-bench run bc --task cheetah-run" in stderr
    state = json.loads((folder / "progress.json").read_text())
    assert state["status"] == "interrupted" and state["step"] > 0
    assert (folder / "checkpoint.pt").exists() and not (folder / "summary.json").exists()


def test_a_run_started_with_sigint_ignored_keeps_ignoring_it(tiny_catalog, tmp_path):
    # `spin-bench run ... &` from a script: the shell ignores SIGINT for the job, and so must its run processes.
    out = tmp_path / "runs"
    args = ["run", "bc", *TINY, "--steps", "100000", "--eval-every", "100000", "--out", str(out)]
    process = launch_cli(args, sigint=signal.SIG_IGN, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    folder = _folder(out, "bc")
    try:
        _wait_until_training(folder)
        os.killpg(process.pid, signal.SIGINT)
        step = json.loads((folder / "progress.json").read_text())["step"]
        time.sleep(3 * PROGRESS_INTERVAL_S)
        assert process.poll() is None, process.stderr.read()
        state = json.loads((folder / "progress.json").read_text())
        assert state["status"] == "running" and state["step"] > step  # still training
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_relayed_second_ctrl_c_cannot_cut_the_checkpoint_save():
    # The race CI hit: Ctrl-C reaches the run, the parent relays a second SIGINT, and it lands inside the handler
    # that saves the checkpoint. Run processes take the first SIGINT only.
    previous = signal.signal(signal.SIGINT, _interrupt_once)
    outcome = "the first SIGINT did not interrupt"
    try:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGINT)  # the relayed copy, arriving mid-save
            time.sleep(0.2)
            outcome = "saved"
    except KeyboardInterrupt:
        outcome = "the relayed SIGINT cut the save"
    finally:
        signal.signal(signal.SIGINT, previous)
    assert outcome == "saved"


def test_a_diverging_run_fails_alone(tiny_catalog, tmp_path):
    good = RunSpec("bc", "cheetah-run", "medium", 3, 0, "quick", (("num_steps", 50), ("eval_every", 50)))
    bad = RunSpec("f-iql", "cheetah-run", "medium", 3, 0, "quick", (("num_steps", 50), ("lr", 1e10)))
    outcomes = run_grid([bad, good], tmp_path / "runs", workers=2)
    assert outcomes[0].summary is None and "became" in outcomes[0].error and "stopping this run" in outcomes[0].error
    failed = json.loads((bad.folder(tmp_path / "runs") / "summary.json").read_text())
    assert failed["status"] == "failed"
    assert outcomes[1].summary["status"] == "finished"


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "spinn"], "unknown agent 'spinn'; valid agents: spin, saint, f-iql, ar-iql, bc"),
        (["run", "bc", "--task", "cheetah-runn"], "unknown task 'cheetah-runn'; valid tasks:"),
        (["run", "bc", "--dataset", "mediun"], "unknown dataset 'mediun'; valid datasets: random, medium"),
        (["run", "bc", "--preset", "fast"], "unknown preset 'fast'; valid presets: paper, quick"),
        (["run", "bc", "--seeds", "0,x"], "malformed seed list '0,x'"),
        (["run", "bc", "--seeds", "1,1"], "malformed seed list '1,1'"),
        (["run", "bc", "--executor", "slurm"], "unknown executor 'slurm'; valid executors: local, ray"),
        (["run", "bc", "--device", "tpu"], "unknown device 'tpu'; valid devices: auto, cpu, cuda"),
        (["run", "bc", "--steps", "0"], "--num-steps 0 must be >= 1"),
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
