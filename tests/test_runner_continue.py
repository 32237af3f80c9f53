"""`run --continue-from`: a longer run starts from a finished shorter run's final checkpoint and ends exactly where
a run trained from step 0 ends (metrics, networks, optimizers, RNG and sampler states)."""

import json

import pytest
import torch
from conftest import assert_equal_to_the_bit, metrics_without_wall_clock
from typer.testing import CliRunner

from spin_bench.cli import app
from spin_bench.runner.run import execute_run
from spin_bench.runner.spec import RunSpec

SHORT, LONG, EVAL_EVERY = 20, 40, 10
TINY = ["--task", "cheetah-run", "--dataset", "medium", "--preset", "quick", "--eval-episodes", "1"]


@pytest.fixture
def data(tiny_catalog):
    """The tiny catalog's cheetah-run medium dataset, built (execute_run, unlike ``run``, never builds one)."""
    from spin_bench.runner.data import ensure_datasets

    ensure_datasets(["spin/cheetah-run/medium-v0"])


def _spec(agent: str, steps: int, **overrides) -> RunSpec:
    settings = {"num_steps": steps, "eval_every": EVAL_EVERY, "eval_episodes": 1, **overrides}
    if agent == "spin":
        settings["asm_steps"] = 50  # a short pre-training: what is checked is that its result carries over
    return RunSpec(agent, "cheetah-run", "medium", 3, 0, "quick", tuple(sorted(settings.items())))


def _train(spec: RunSpec, root, continue_from=None) -> dict:
    threads = torch.get_num_threads()
    try:
        # one ASM cache for every run: SPIN pre-trains once (the cache gives the same weights and time to all)
        return execute_run(spec, root, cache_dir=root.parent / "asm", threads=1, continue_from=continue_from)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("agent", ["f-iql", "spin"])
def test_a_run_continued_from_a_shorter_one_equals_one_trained_from_step_0(data, tmp_path, agent):
    reference = _spec(agent, LONG).folder(tmp_path / "reference")
    _train(_spec(agent, LONG), tmp_path / "reference")
    _train(_spec(agent, SHORT), tmp_path / "short")

    summary = _train(_spec(agent, LONG), tmp_path / "long", continue_from=tmp_path / "short")
    folder = _spec(agent, LONG).folder(tmp_path / "long")
    assert metrics_without_wall_clock(folder) == metrics_without_wall_clock(reference)
    assert [row["step"] for row in metrics_without_wall_clock(folder)] == ["10", "20", "30", "40"]
    continued, fresh = (torch.load(f / "checkpoint.pt", weights_only=True) for f in (folder, reference))
    for key in ("agent", "sampler", "losses"):
        assert_equal_to_the_bit(continued[key], fresh[key], key)
    assert continued["agent"]["config"]["num_steps"] == LONG

    short_folder = _spec(agent, SHORT).folder(tmp_path / "short")
    expected = {"run": short_folder.relative_to(tmp_path / "short").as_posix(), "step": SHORT}
    recorded = json.loads((folder / "config.json").read_text())["continued_from"]
    assert {k: recorded[k] for k in expected} == expected and recorded["host"]["cpu_model"]
    assert summary["continued_from"] == recorded and summary["steps"] == LONG
    assert json.loads((reference / "config.json").read_text()).get("continued_from") is None
    if agent == "spin":  # the ASM's pre-training time is carried over, not counted as zero
        assert summary["pretrain_seconds"] > 0


def test_only_a_finished_run_of_the_same_config_on_an_evaluation_step_is_continued(data, tmp_path):
    short = tmp_path / "short"
    _train(_spec("f-iql", SHORT, beta=10.0), short)  # another config
    _train(_spec("f-iql", 15), short)  # not a multiple of eval_every: a fresh run evaluates at 10, 20, 30, 40
    _train(_spec("f-iql", 30), short)  # finished, but its checkpoint is gone
    (_spec("f-iql", 30).folder(short) / "checkpoint.pt").unlink()
    summary = _train(_spec("f-iql", LONG), tmp_path / "long", continue_from=short)
    assert "continued_from" not in summary and summary["resumed_from"] == []

    _train(_spec("f-iql", 10), short)
    _train(_spec("f-iql", SHORT), short)
    summary = _train(_spec("f-iql", LONG), tmp_path / "long2", continue_from=short)
    assert summary["continued_from"]["step"] == SHORT  # the longest that qualifies


def test_the_cli_continues_the_shorter_runs_and_says_so(tiny_catalog, tmp_path):
    runner = CliRunner()
    args = ["run", "f-iql", *TINY, "--eval-every", str(EVAL_EVERY)]
    result = runner.invoke(app, [*args, "--steps", str(SHORT), "--out", str(tmp_path / "v0")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, [*args, "--steps", str(LONG), "--out", str(tmp_path / "v1"), "--continue-from", str(tmp_path / "v0")]
    )
    assert result.exit_code == 0, result.output
    assert f"1 run(s) started from the final checkpoint of a shorter run in {tmp_path / 'v0'}" in result.output
    (folder,) = (tmp_path / "v1" / "f-iql" / "cheetah-run" / "medium" / "bins3").glob("*/seed0")
    assert json.loads((folder / "summary.json").read_text())["continued_from"]["step"] == SHORT
