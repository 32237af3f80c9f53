"""The README's commands, and the remaining commands through the installed console script."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPIN_BENCH = str(Path(sys.executable).with_name("spin-bench"))


def readme_command(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```", text)
    assert match, f"README has no {marker} block"
    return match.group(1)


def test_readme_has_exactly_the_two_setup_commands_and_ci_runs_the_test_one():
    main, test = readme_command("main-command"), readme_command("test-command")
    for command in (main, test):
        assert command.startswith("pip install torch==2.13.0 && pip install -e ")
    # The whole suite, in parallel or not: no -m or -k selection.
    assert re.fullmatch(r".* && python -m pytest -q( -n \S+)?( --dist \S+)?", test), test
    assert "test-command" in (ROOT / ".ci" / "run").read_text()


def _cli(*args, check=True):
    return subprocess.run([SPIN_BENCH, *args], capture_output=True, text=True, check=check)


def test_readme_main_command_runs_end_to_end_then_eval_and_video(tiny_catalog, tmp_path):
    run_part = readme_command("main-command").split("&&")[-1].strip()
    argv = shlex.split(run_part)
    assert argv[:2] == ["spin-bench", "run"] and "--preset" in argv and "quick" in argv
    out = tmp_path / "runs"
    # The README's command as written, made test-sized by the tiny catalog and these trailing overrides.
    result = _cli(*argv[1:], "--steps", "100", "--eval-every", "100", "--eval-episodes", "1", "--out", str(out))
    assert "Results: final evaluation (official)" in result.stdout
    (folder,) = (out / "f-iql" / "cheetah-run" / "random-medium-expert" / "bins3").glob("quick-*/seed0")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 100

    result = _cli("eval", str(folder), "--episodes", "2", "--video", str(tmp_path / "ep.mp4"))
    assert re.search(r"f-iql at step 100 on SPIN/cheetah-run-disc-v0 .* over 2 episodes \(sampled\)", result.stdout)
    assert "(1000 frames)" in result.stdout and (tmp_path / "ep.mp4").stat().st_size > 10_000
    bad = _cli("eval", str(tmp_path / "nothing"), check=False)
    assert bad.returncode == 2 and "not found" in bad.stderr


@pytest.mark.parametrize(
    "what, expected",
    [
        ("agents", ["spin", "saint", "f-iql", "ar-iql", "bc"]),
        ("presets", ["paper", "quick", "num_steps=5000"]),
        ("tasks", ["dog-run", "SPIN/dog-run-disc-v0", "1.35e+18", "humanoid_CMU-run"]),
    ],
)
def test_list_tables(tiny_catalog, what, expected):
    result = _cli("list", what)
    for text in expected:
        assert text in result.stdout, (text, result.stdout)


def test_list_rejects_unknown_tables():
    result = _cli("list", "models", check=False)
    assert result.returncode == 2 and "unknown list 'models'; valid: tasks, agents, presets" in result.stderr
    result = _cli("list", "datasets", check=False)  # one home for the dataset table
    assert result.returncode == 2 and "(datasets: spin-bench datasets list)" in result.stderr


def test_user_help_shows_user_commands_and_points_to_the_maintainers_command():
    user = _cli("--help").stdout
    for command in ("run", "report", "eval", "list", "datasets"):
        assert re.search(rf"│ {command} ", user), (command, user)
    assert not re.search(r"│ behaviour ", user) and "spin-bench-maintain --help" in user
    datasets = _cli("datasets", "--help").stdout
    for command in ("publish", "check-prefix", "card", "reference", "register-checkpoints"):
        assert not re.search(rf"│ {command} ", datasets), (command, datasets)
    maintain = subprocess.run([SPIN_BENCH + "-maintain", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("behaviour", "record", "reference", "register-checkpoints", "card", "publish", "check-prefix"):
        assert re.search(rf"│ {command} ", maintain), (command, maintain)
