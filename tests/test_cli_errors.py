"""The one error model of every command: exit codes 0 / 1 (data, remote, environment, training) / 2 (bad input) /
130 (interrupted), each failure one line ``spin-bench: error: ...`` on stderr, never a traceback."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_tiny_catalog
from typer.testing import CliRunner

from spin_bench.cli import app

DATASET = "spin/cheetah-run/medium-v0"
RUN_ARGS = ["run", "bc", "--task", "cheetah-run", "--dataset", "medium", "--preset", "quick"]
RUN_ARGS += ["--steps", "20", "--eval-every", "20", "--eval-episodes", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real finished bc run (20 steps) on the tiny catalog's medium dataset:
    (catalog, Minari data dir, runs root, run folder)."""
    root = tmp_path_factory.mktemp("trained")
    catalog, data = write_tiny_catalog(root / "catalog"), root / "minari"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SPIN_BENCH_CATALOG", str(catalog))
        env.setenv("MINARI_DATASETS_PATH", str(data))
        result = CliRunner().invoke(app, [*RUN_ARGS, "--out", str(root / "runs")])
    assert result.exit_code == 0, result.output
    (folder,) = {p.parent for p in (root / "runs").rglob("checkpoint.pt")}
    return catalog, data, root / "runs", folder


@pytest.fixture
def run_folder(trained, tmp_path, monkeypatch):
    """A copy of the trained run folder, to damage; the CLI sees the trained run's catalog and data."""
    catalog, data, _, folder = trained
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(catalog))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(data))
    return Path(shutil.copytree(folder, tmp_path / "run"))


def _one_error_line(result, code: int) -> str:
    """The single stderr line of a command that failed with ``code`` (asserted), without its prefix."""
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spin-bench: error: "), result.stderr
    return lines[0].removeprefix("spin-bench: error: ")


def _cli_process(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``spin-bench ARGS`` in a fresh interpreter (for what is chosen at import time, like MuJoCo's renderer)."""
    return subprocess.run(
        [sys.executable, "-c", "from spin_bench.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_eval_unknown_device_is_bad_input_naming_the_devices(run_folder):
    result = CliRunner().invoke(app, ["eval", str(run_folder), "--device", "tpu"])
    assert _one_error_line(result, 2) == "unknown device 'tpu'; valid devices: auto, cpu, cuda"


def test_debug_variable_shows_the_traceback_instead(run_folder, monkeypatch):
    monkeypatch.setenv("SPIN_BENCH_DEBUG", "1")
    result = CliRunner().invoke(app, ["eval", str(run_folder), "--device", "tpu"])
    assert isinstance(result.exception, ValueError) and "spin-bench: error:" not in result.output


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:3000])


def _foreign_objects(path: Path) -> None:
    import argparse

    torch.save({"agent": argparse.Namespace(step=1)}, path)  # weights-only loading refuses it


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _no_agent_state(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    del state["agent"]["config"]
    torch.save(state, path)


@pytest.mark.parametrize("damage", [_truncated, _foreign_objects, _empty, _no_agent_state])
def test_eval_of_a_damaged_checkpoint_says_so_in_one_line(run_folder, damage):
    checkpoint = run_folder / "checkpoint.pt"
    damage(checkpoint)
    message = _one_error_line(CliRunner().invoke(app, ["eval", str(run_folder)]), 1)
    assert message.startswith(f"checkpoint {checkpoint} is damaged (")
    assert "weights_only" not in message  # torch's advice to load it unsafely is never passed on


def test_eval_of_a_damaged_run_config_names_the_file(run_folder):
    config = run_folder / "config.json"
    config.write_text('{"env_id": ')
    message = _one_error_line(CliRunner().invoke(app, ["eval", str(run_folder)]), 1)
    assert message == f"{config} is damaged: not valid JSON (Expecting value at line 1 column 12)"
    config.write_text("{}")
    message = _one_error_line(CliRunner().invoke(app, ["eval", str(run_folder)]), 1)
    assert message == f"{config} is damaged: it lacks 'env_id', 'env_kwargs', 'dataset_id'"


def test_eval_video_to_an_unwritable_path_fails_before_evaluating(run_folder, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    video = tmp_path / "file" / "episode.mp4"
    result = CliRunner().invoke(app, ["eval", str(run_folder), "--video", str(video)])
    message = _one_error_line(result, 2)
    assert message.startswith(f"--video '{video}': output folder '{video.parent}' is not writable")
    assert result.stdout == ""  # no evaluation ran


def test_eval_video_without_an_opengl_backend_fails_before_evaluating(run_folder, tmp_path):
    video = tmp_path / "episode.mp4"
    result = _cli_process("eval", str(run_folder), "--episodes", "1", "--video", str(video), MUJOCO_GL="disable")
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "spin-bench: error: --video: MuJoCo cannot render on this machine (MUJOCO_GL=disable: No OpenGL rendering "
        "backend is available.); install libEGL and set MUJOCO_GL=egl (or OSMesa and MUJOCO_GL=osmesa), or leave "
        "out --video"
    ]
    assert result.stdout == "" and not video.exists()


def test_usage_errors_keep_clicks_exit_code_2(run_folder):
    result = CliRunner().invoke(app, ["eval", str(run_folder), "--episodes", "many"])
    assert result.exit_code == 2 and "Invalid value for '--episodes'" in result.stderr


def test_an_unwritable_output_file_is_exit_1_naming_it(trained, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    output = tmp_path / "file" / "report.md"
    result = CliRunner().invoke(app, ["report", str(trained[2]), "--output", str(output)])
    assert _one_error_line(result, 1) == f"{output}: Not a directory"


def test_interrupt_is_exit_130_in_one_line(monkeypatch):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr("spin_bench.cli.listing._agents_table", interrupted)  # Ctrl-C while the command works
    result = CliRunner().invoke(app, ["list", "agents"])
    assert result.exit_code == 130 and result.stderr.strip().splitlines() == ["spin-bench: interrupted"]


def test_run_on_a_damaged_dataset_is_a_data_failure_with_the_fix(trained, tmp_path, monkeypatch):
    catalog, data, _, _ = trained
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(catalog))
    shutil.copytree(data, tmp_path / "minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    hdf5 = tmp_path / "minari" / DATASET / "data" / "main_data.hdf5"
    hdf5.write_bytes(hdf5.read_bytes()[: hdf5.stat().st_size // 2])
    result = CliRunner().invoke(app, [*RUN_ARGS, "--out", str(tmp_path / "runs")])
    message = _one_error_line(result, 1)
    assert message.startswith(f"{DATASET}: the data at ") and "is damaged or unreadable" in message
    assert f"spin-bench datasets verify {DATASET}" in message


def test_publish_to_a_missing_bucket_is_a_remote_failure(tiny_catalog, gcs_remote):
    from spin_bench.pipeline.cli import app as maintain_app
    from spin_bench.pipeline.record import record_dataset

    dataset = "spin/cheetah-run/random-v0"
    record_dataset(dataset, workers=1, progress=False)
    result = CliRunner().invoke(maintain_app, ["publish", dataset, "--remote", "gcp://missing-bucket"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # after the "Uploading ..." progress line
    assert last.startswith(
        f"spin-bench: error: cannot publish {dataset}: uploading to gcp://missing-bucket failed (404"
    )
    assert last.endswith("check that it exists and that these credentials may write to it")


def test_a_dataset_that_cannot_be_had_is_exit_1_in_run_as_in_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(write_tiny_catalog(tmp_path / "catalog", expert_ref=420.0)))
    built = CliRunner().invoke(app, ["datasets", "build", "spin/cheetah-run/expert-v0"])
    assert "cannot be built yet" in _one_error_line(built, 1)
    ran = CliRunner().invoke(app, ["run", "bc", "--dataset", "expert", "--out", str(tmp_path / "runs")])
    assert "spin/cheetah-run/expert-v0 is not local, not published and not buildable" in _one_error_line(ran, 1)


def test_a_damaged_run_record_is_named_when_the_run_is_run_again(trained, tmp_path, monkeypatch):
    catalog, data, runs, folder = trained
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(catalog))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(data))
    out = Path(shutil.copytree(runs, tmp_path / "runs"))
    summary = out / folder.relative_to(runs) / "summary.json"
    summary.write_text('{"status": ')
    result = CliRunner().invoke(app, [*RUN_ARGS, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"{summary} is damaged: not valid JSON (Expecting value at line 1 column 12)" in " ".join(
        result.stderr.split()
    )
