"""Interrupted, crashed, concurrent and orphaned runs, through the real CLI.

Faults happen at known updates through the test hook ``SPIN_BENCH_TEST_SIGNAL_AT`` (the run process signals
itself or its process group), never after a sleep. Every resumed run must equal an uninterrupted one exactly:
metrics.csv (all but the wall clock) and the final checkpoint's tensors.
"""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import assert_equal_to_the_bit, launch_cli, metrics_without_wall_clock, write_tiny_catalog
from rich.console import Console

from spin_bench.errors import DamagedFileError, SpinBenchError
from spin_bench.runner.interrupts import StopSignals
from spin_bench.runner.lock import RunLockedError
from spin_bench.runner.progress import PlainLines
from spin_bench.runner.run import execute_run, read_metrics
from spin_bench.runner.signal_hook import ENV_VAR, parse_signal_at
from spin_bench.runner.spec import RunSpec

DATASET_ID = "spin/cheetah-run/medium-v0"
STEPS, EVAL_EVERY = 40, 20
SETTINGS = {"num_steps": STEPS, "eval_every": EVAL_EVERY, "eval_episodes": 1}
ARGS = ["--task", "cheetah-run", "--dataset", "medium", "--preset", "quick", "--eval-episodes", "1"]
ARGS += ["--steps", str(STEPS), "--eval-every", str(EVAL_EVERY)]
DEADLINE_S = 240
"""Generous bound for a process to reach a state (a slow, shared machine); never a timing assertion."""


# -- fixtures: one tiny dataset and one uninterrupted reference run per agent, for the whole module ------------
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """The tiny test catalog and its medium dataset, built once for this module: (catalog, datasets dir, sha256)."""
    from spin_bench.datasets.integrity import verified_digest
    from spin_bench.runner.data import ensure_datasets

    root = tmp_path_factory.mktemp("tiny")
    catalog = write_tiny_catalog(root / "catalog")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPIN_BENCH_CATALOG", str(catalog))
        patch.setenv("MINARI_DATASETS_PATH", str(root / "datasets"))
        ensure_datasets([DATASET_ID])
        return catalog, root / "datasets", verified_digest(DATASET_ID)


@pytest.fixture
def data(tiny_data, monkeypatch):
    """This module's catalog and dataset for the test and the processes it starts; yields the data's sha256."""
    catalog, datasets, digest = tiny_data
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(catalog))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(datasets))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return digest


def _spec(agent: str, digest: str) -> RunSpec:
    return RunSpec(agent, "cheetah-run", "medium", 3, 0, "quick", tuple(SETTINGS.items())).with_data_digest(digest)


@pytest.fixture(scope="module")
def references(tiny_data, tmp_path_factory):
    """``reference(agent)``: the folder of an uninterrupted run (trained once, in this process, on one thread as
    the CLI's run processes are)."""
    catalog, datasets, digest = tiny_data
    root = tmp_path_factory.mktemp("references")
    done: dict[str, Path] = {}

    def reference(agent: str) -> Path:
        if agent not in done:
            threads = torch.get_num_threads()
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("SPIN_BENCH_CATALOG", str(catalog))
                patch.setenv("MINARI_DATASETS_PATH", str(datasets))
                try:
                    execute_run(_spec(agent, digest), root, threads=1)
                finally:
                    torch.set_num_threads(threads)
            done[agent] = _spec(agent, digest).folder(root)
        return done[agent]

    return reference


@pytest.fixture
def started():
    """Process ids this test started (a CLI process's group, a trainer it stopped); any left at the end are
    killed, so a failing test leaves no stopped trainer behind."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if _process_state(pid) not in (None, "Z"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# -- helpers ----------------------------------------------------------------------------------------------------
def _cli(args, hook=None, sigint=signal.SIG_DFL, started=None):
    """``spin-bench run ARGS`` in its own process group, stdout and stderr piped (not a terminal)."""
    env = {key: value for key, value in os.environ.items() if key != ENV_VAR}
    if hook is not None:
        env[ENV_VAR] = hook
    process = launch_cli(
        ["run", *args], sigint=sigint, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if started is not None:
        started.append(process.pid)
    return process


def _finish(process) -> tuple[str, str]:
    return process.communicate(timeout=DEADLINE_S)


def _folder(out: Path, agent: str, digest: str) -> Path:
    return _spec(agent, digest).folder(out)


def _checkpoint(folder: Path) -> dict:
    return torch.load(folder / "checkpoint.pt", weights_only=True)


def _assert_same_as_uninterrupted(folder: Path, reference: Path) -> None:
    assert metrics_without_wall_clock(folder) == metrics_without_wall_clock(reference)
    resumed, uninterrupted = _checkpoint(folder), _checkpoint(reference)
    for key in ("agent", "sampler", "losses"):
        assert_equal_to_the_bit(resumed[key], uninterrupted[key], key)


def _wait_until_stopped(folder: Path, process) -> int:
    """The pid of the run process training ``folder`` once the hook's SIGSTOP has stopped it."""
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        assert process.poll() is None, _finish(process)
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int((folder / "lock").read_text())
            if _process_state(pid) == "T":
                return pid
        time.sleep(0.2)
    raise AssertionError(f"no stopped trainer for {folder} after {DEADLINE_S} s")


def _process_state(pid: int) -> str | None:
    """``/proc`` state letter (R, S, T, Z, ...), None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _wait_until_gone(pid: int) -> None:
    """Until ``pid`` has exited (a zombie counts: its new parent may not reap it)."""
    deadline = time.time() + DEADLINE_S
    while _process_state(pid) not in (None, "Z"):
        assert time.time() < deadline, f"process {pid} still runs after {DEADLINE_S} s"
        time.sleep(0.2)


# -- stop signals ---------------------------------------------------------------------------------------------
def test_stop_signals_wait_for_the_update_boundary_and_a_second_signal_never_cuts_the_save():
    # A terminal's foreground job, whatever this process inherited: started with `&` by a non-interactive shell
    # (as CI may be), it ignores SIGINT, which StopSignals leaves ignored (the next test).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _stop_signals_wait_for_the_update_boundary()
    finally:
        signal.signal(signal.SIGINT, before)


def _stop_signals_wait_for_the_update_boundary() -> None:
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # during an update: recorded, nothing raised
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested == "SIGTERM"
        with pytest.raises(KeyboardInterrupt), stop.raising():  # the next interruptible block stops at once
            pass
    with StopSignals() as stop:
        with pytest.raises(KeyboardInterrupt), stop.raising():  # an evaluation: the first signal raises in it
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
        os.kill(os.getpid(), signal.SIGINT)  # a relayed copy arriving during the checkpoint save
        for _ in range(1000):
            pass
        assert stop.requested == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored_while_training():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a job started with `&`
    try:
        with StopSignals() as stop:
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.requested is None
            os.kill(os.getpid(), signal.SIGTERM)  # a job scheduler's stop still works
            assert stop.requested == "SIGTERM"
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize(
    "text, message",
    [
        ("x:SIGINT", "expected <step>:<signal>"),
        ("3:SIGFOO", "'SIGFOO' is neither a signal name nor KeyboardInterrupt"),
        ("3:SIGINT:in", "flags"),
    ],
)
def test_the_test_hook_rejects_a_malformed_setting(text, message):
    with pytest.raises(ValueError, match=message):
        parse_signal_at(text)


# -- exact interrupts --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("agent", ["bc", "f-iql"])
def test_ctrl_c_and_sigterm_inside_an_update_resume_exactly(data, references, tmp_path, agent):
    # The failure: a signal lands inside agent.update (here right after the optimizer step, before the
    # target update and the step counter), and the checkpoint held half of the next step.
    out = tmp_path / "runs"
    folder = _folder(out, agent, data)
    args = [agent, *ARGS, "--out", str(out)]

    process = _cli(args, hook="13:SIGINT:mid:group")  # Ctrl-C in a terminal: the whole process group
    stdout, stderr = _finish(process)
    assert process.returncode == 130, stderr
    assert "Resume with:" in stderr and f"spin-bench run {agent} --task cheetah-run" in stderr
    assert _checkpoint(folder)["agent"]["step"] == 13  # the update that was under way completed, then the stop
    assert json.loads((folder / "progress.json").read_text())["status"] == "interrupted"
    assert not (folder / "summary.json").exists()
    assert f"interrupted at step 13/{STEPS}" in stdout  # a plain line: stdout is not a terminal

    process = _cli(args, hook="31:SIGTERM:mid:group")  # a job scheduler's stop, after an evaluation
    stdout, stderr = _finish(process)
    assert process.returncode == 130, stderr
    assert _checkpoint(folder)["agent"]["step"] == 31
    first_eval = read_metrics(references(agent))[0]
    assert f"evaluated at step 20/{STEPS}: return {first_eval['eval_return_mean']:.1f}" in stdout

    process = _cli(args)
    stdout, stderr = _finish(process)
    assert process.returncode == 0, stderr
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["resumed_from"] == [13, 31]
    _assert_same_as_uninterrupted(folder, references(agent))
    assert f"evaluated at step {STEPS}/{STEPS}" in stdout and "evaluated at step 20/" not in stdout


def test_an_interrupt_raised_inside_an_update_never_saves_the_half_applied_state(
    data, references, tmp_path, monkeypatch
):
    # A KeyboardInterrupt that arrives as an exception (Ray's cancel, a run in another thread), not as a signal
    # the run can defer: the state it cuts is not saved, and the resume starts from the last complete checkpoint.
    spec = _spec("bc", data)
    folder = spec.folder(tmp_path)
    threads = torch.get_num_threads()
    try:
        monkeypatch.setenv(ENV_VAR, "13:KeyboardInterrupt:mid")
        with pytest.raises(KeyboardInterrupt):
            execute_run(spec, tmp_path, threads=1)
        assert not (folder / "checkpoint.pt").exists()  # no complete state before the evaluation at step 20
        assert json.loads((folder / "progress.json").read_text())["status"] == "interrupted"
        monkeypatch.setenv(ENV_VAR, "31:KeyboardInterrupt:mid")
        with pytest.raises(KeyboardInterrupt):
            execute_run(spec, tmp_path, threads=1)
        assert _checkpoint(folder)["agent"]["step"] == 20
        monkeypatch.delenv(ENV_VAR)
        assert execute_run(spec, tmp_path, threads=1)["resumed_from"] == [20]
    finally:
        torch.set_num_threads(threads)
    _assert_same_as_uninterrupted(folder, references("bc"))


def test_a_crash_inside_an_update_resumes_from_the_last_complete_checkpoint(data, references, tmp_path):
    out = tmp_path / "runs"
    folder = _folder(out, "bc", data)
    args = ["bc", *ARGS, "--out", str(out)]
    process = _cli(args, hook="30:SIGKILL:mid:group")  # no chance to save anything more
    _finish(process)
    assert process.returncode == -signal.SIGKILL
    assert _checkpoint(folder)["agent"]["step"] == 20  # the checkpoint of the evaluation at step 20

    process = _cli(args)
    _, stderr = _finish(process)
    assert process.returncode == 0, stderr
    assert json.loads((folder / "summary.json").read_text())["resumed_from"] == [20]
    _assert_same_as_uninterrupted(folder, references("bc"))


def test_a_run_started_with_sigint_ignored_keeps_ignoring_it(data, references, tmp_path):
    # `spin-bench run ... &` from a script: the shell ignores SIGINT for the job, and so must its run processes.
    out = tmp_path / "runs"
    process = _cli(["bc", *ARGS, "--out", str(out)], hook="13:SIGINT:group", sigint=signal.SIG_IGN)
    _, stderr = _finish(process)
    assert process.returncode == 0, stderr
    folder = _folder(out, "bc", data)
    assert json.loads((folder / "summary.json").read_text())["resumed_from"] == []  # never stopped
    _assert_same_as_uninterrupted(folder, references("bc"))


# -- exclusive runs, orphans -------------------------------------------------------------------------------------
def test_a_second_trainer_on_a_folder_is_refused_and_the_first_goes_on(data, references, tmp_path, started):
    out = tmp_path / "runs"
    folder = _folder(out, "bc", data)
    args = ["bc", *ARGS, "--out", str(out)]
    first = _cli(args, hook="7:SIGSTOP", started=started)  # its trainer stops itself at step 7, holding the lock
    pid = _wait_until_stopped(folder, first)
    started.append(pid)

    second = subprocess.run(
        [sys.executable, "-c", "from spin_bench.cli import main; main()", "run", *args], capture_output=True, text=True
    )
    assert second.returncode == 1, second.stderr
    assert second.stderr.strip().splitlines() == [
        f"spin-bench: error: {folder} is being trained by process {pid}; wait for it or use another --out"
    ]
    with pytest.raises(RunLockedError, match=f"is being trained by process {pid}"):  # past the grid's check too
        execute_run(_spec("bc", data), out)

    os.kill(pid, signal.SIGCONT)
    stdout, stderr = _finish(first)
    assert first.returncode == 0, stderr
    _assert_same_as_uninterrupted(folder, references("bc"))
    assert f"evaluated at step 20/{STEPS}" in stdout and f"finished at step {STEPS}/{STEPS}" in stdout


def test_a_run_killed_outside_a_terminal_takes_its_trainer_with_it(data, references, tmp_path, started):
    # `kill -9` of the `run` process alone (its own session: no terminal signals the group). Its trainer must not
    # go on as an orphan: it gets SIGTERM, checkpoints its step and exits.
    out = tmp_path / "runs"
    folder = _folder(out, "bc", data)
    args = ["bc", *ARGS, "--out", str(out)]
    parent = _cli(args, hook="7:SIGSTOP", started=started)
    trainer = _wait_until_stopped(folder, parent)
    started.append(trainer)
    parent.kill()
    parent.wait()  # not communicate(): the trainer holds the other ends of its pipes
    os.kill(trainer, signal.SIGCONT)  # the parent-death signal is pending: it acts as the trainer resumes
    _wait_until_gone(trainer)
    assert _checkpoint(folder)["agent"]["step"] == 7 and not (folder / "summary.json").exists()
    assert json.loads((folder / "progress.json").read_text())["status"] == "interrupted"

    resumed = _cli(args)
    _, stderr = _finish(resumed)
    assert resumed.returncode == 0, stderr
    assert json.loads((folder / "summary.json").read_text())["resumed_from"] == [7]
    _assert_same_as_uninterrupted(folder, references("bc"))


def test_the_portable_parent_watchdog_stops_a_process_whose_parent_died():
    # Where the kernel has no parent-death signal, a thread watches the parent. Parent P starts child C, which
    # watches P; P is killed; C must exit.
    child = (
        "import os; from spin_bench.runner.interrupts import watch_parent; "
        "parent = os.getppid(); print(os.getpid(), flush=True); watch_parent(parent, poll_s=0.05)"
    )
    parent = f"import signal, subprocess, sys; subprocess.Popen([sys.executable, '-c', {child!r}]); signal.pause()"
    process = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(process.stdout.readline())
    finally:
        process.kill()
        process.communicate()
    _wait_until_gone(pid)


# -- what a run checks before training ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"PK\x03\x04 not a zip archive", "is damaged ("),
        ("pickle", "it holds objects other than tensors and plain values"),
        ("partial", "it lacks sampler, wall_seconds, resumes"),
    ],
)
def test_a_damaged_checkpoint_is_refused_in_one_line_naming_the_file(data, tmp_path, content, reason):
    import datetime

    spec = _spec("bc", data)
    folder = spec.folder(tmp_path)
    folder.mkdir(parents=True)
    path = folder / "checkpoint.pt"
    if content == "pickle":
        torch.save({"agent": datetime.date(2024, 1, 1)}, path)  # not loadable weights-only
    elif content == "partial":
        torch.save({"agent": {}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(DamagedFileError) as raised:
        execute_run(spec, tmp_path)
    message = str(raised.value)
    assert message.startswith(f"checkpoint {path} is damaged (") and reason in message
    assert message.endswith("; delete it to restart this run from step 0") and "\n" not in message
    assert "weights_only" not in message


def test_a_finished_run_is_returned_only_when_its_recorded_config_and_data_match(data, references, tmp_path):
    spec = _spec("bc", data)
    folder = spec.folder(tmp_path)
    shutil.copytree(references("bc"), folder)
    assert execute_run(spec, tmp_path)["status"] == "finished"

    config = json.loads((folder / "config.json").read_text())
    assert config["dataset_sha256"] == data and config["precision"] == "float32"
    changed = {**config, "agent_config": {**config["agent_config"], "lr": 0.1}}
    (folder / "config.json").write_text(json.dumps(changed))
    with pytest.raises(SpinBenchError, match="holds a run with a different config"):
        execute_run(spec, tmp_path)
    (folder / "config.json").write_text(json.dumps({**config, "dataset_sha256": "0" * 64}))
    with pytest.raises(SpinBenchError, match="holds a run on other data"):
        execute_run(spec, tmp_path)


def test_data_other_than_the_runs_digest_is_refused_before_anything_is_written(data, tmp_path):
    from spin_bench.datasets.integrity import DatasetIntegrityError
    from spin_bench.runner.executors import run_grid

    spec = _spec("bc", "0" * 64)
    for train in (lambda: execute_run(spec, tmp_path / "runs"), lambda: run_grid([spec], tmp_path / "runs")):
        with pytest.raises(DatasetIntegrityError, match=f"{DATASET_ID}: the installed data has sha256 {data[:16]}"):
            train()
    assert not (tmp_path / "runs").exists()


def test_run_refuses_a_tampered_dataset_in_one_line_before_training(tiny_catalog, tmp_path):
    from typer.testing import CliRunner

    from spin_bench.cli import app
    from spin_bench.datasets.minari_io import local_dataset_dir
    from spin_bench.pipeline.record import record_dataset

    random_id = "spin/cheetah-run/random-v0"
    record_dataset(random_id, workers=1, progress=False)  # the catalog records its sha256
    metadata = local_dataset_dir(random_id) / "data" / "metadata.json"
    meta = json.loads(metadata.read_text())
    space = json.loads(meta["action_space"])
    meta["action_space"] = json.dumps({**space, "nvec": [4] * len(space["nvec"])})  # 4 bins where 3 were built
    metadata.write_text(json.dumps(meta))

    out = tmp_path / "runs"
    args = ["run", "bc", "--task", "cheetah-run", "--dataset", "random", "--preset", "quick", "--steps", "10"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"spin-bench: error: {random_id}: the installed data has sha256")
    assert "corrupt or changed" in lines[0]
    assert not (out / "bc").exists()


# -- progress outside a terminal ----------------------------------------------------------------------------------
def test_plain_progress_prints_each_evaluation_once_and_the_end(tmp_path):
    spec = RunSpec("bc", "cheetah-run", "medium", 3, 0, "quick", tuple(SETTINGS.items()), "0" * 64)
    folder = spec.folder(tmp_path)
    folder.mkdir(parents=True)
    text = io.StringIO()
    lines = PlainLines([spec], tmp_path, Console(file=text, width=80), started=0.0, interval_s=3600)

    def progress(status, step, last_eval):
        state = {"status": status, "step": step, "total": STEPS, "updates_per_s": 120.0, "last_eval": last_eval}
        (folder / "progress.json").write_text(json.dumps({**state, "resumed_from": []}))

    progress("running", 5, None)
    lines.refresh(set())
    lines.refresh(set())  # within the interval: nothing new
    (folder / "metrics.csv").write_text("step,wall_seconds,eval_return_mean,normalized_score\n20,1.0,12.5,1.5\n")
    progress("running", 21, 12.5)
    lines.refresh(set())
    lines.refresh(set())
    progress("finished", 40, 12.5)
    lines.refresh({spec})
    assert text.getvalue().splitlines() == [
        f"{spec.key}: step 5/40, 120 updates/s",
        f"{spec.key}: evaluated at step 20/40: return 12.5 (normalized 1.5), 120 updates/s",
        f"{spec.key}: finished at step 40/40, last eval 12.5",
    ]
