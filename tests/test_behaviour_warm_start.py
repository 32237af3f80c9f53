"""Warm starts: a behaviour run continued from its export (datasets/checkpoints/...) once its run folder is gone."""

import json

import pytest
import torch
from test_behaviour import TINY, _curve, _run_cli

from spin_bench.pipeline.behaviour.config import DecQNConfig
from spin_bench.pipeline.behaviour.export import export_snapshots
from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
from spin_bench.pipeline.behaviour.policy import save_snapshot
from spin_bench.pipeline.behaviour.trainer import DecQNLearner, TrainState, _warm_start
from spin_bench.pipeline.behaviour.warm_start import load_warm_start


def _export(tmp_path, networks, returns, bins=7):
    """An export of a hand-made run whose snapshots are ``networks`` (one per 1000 env steps)."""
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": "finger-spin", "bins": bins, "seed": 0, "decqn": {}}))
    rows = ["env_steps,updates,wall_seconds,eval_return_mean,eval_return_std,eval_episodes,snapshot"]
    for k, (network, ret) in enumerate(zip(networks, returns, strict=True), start=1):
        save_snapshot(run / f"snapshots/step_{k}000.pt", network, env_steps=k * 1000)
        rows.append(f"{k * 1000},{k * 100},{k * 10.0},{ret},1.0,10,snapshots/step_{k}000.pt")
    (run / "curve.csv").write_text("\n".join(rows) + "\n")
    export_snapshots(run, tmp_path / "export")
    return tmp_path / "export"


@pytest.mark.parametrize("utility_basis", [0, 3])
def test_a_warm_start_continues_from_the_exported_expert_with_its_counters_and_curve(tmp_path, utility_basis):
    torch.manual_seed(0)
    config = DecQNConfig(hidden=(32, 32), layer_norm="all", utility_basis=utility_basis)
    trained = [DecQNLearner(9, [7, 7], config, torch.device("cpu")).policy_network() for _ in range(3)]
    export = _export(tmp_path, trained, [10.0, 60.0, 100.0])  # expert: the third, medium: the second

    warm = load_warm_start(export, "finger-spin", 7)
    learner = DecQNLearner(9, [7, 7], config, torch.device("cpu"))
    out = tmp_path / "continued"
    state = _warm_start(warm, learner, out, config)

    obs = torch.randn(64, 9) * 3
    with torch.no_grad():
        expected = trained[2](obs)
        torch.testing.assert_close(learner.online(obs), expected, atol=1e-5, rtol=1e-5)  # a basis: solved for, exact
        torch.testing.assert_close(learner.target(obs), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(learner.policy_network()(obs), expected, atol=1e-5, rtol=1e-5)
    assert not learner.optimizer.state  # fresh Adam moments
    assert (state.env_steps, state.updates, state.wall_seconds, state.next_eval) == (3000, 300, 30.0, 25000)
    assert (state.start_env_steps, state.start_updates) == (3000, 300)
    # No burst of updates for the history: the replay ratio counts from the new replay's learning_starts.
    assert state.learning_starts(config) == config.warm_start_refill > config.learning_starts  # a larger refill
    assert state.owed_updates(config) == 300 - int(config.warm_start_refill * config.updates_per_step)
    state.env_steps += config.warm_start_refill + 1000
    assert state.owed_updates(config) == 300 + 500
    # Fresh Adam moments: the step size ramps up over warm_start_lr_warmup updates, then stays.
    assert state.learning_rate(config) == pytest.approx(config.learning_rate / config.warm_start_lr_warmup)
    state.updates += config.warm_start_lr_warmup // 2 - 1
    assert state.learning_rate(config) == pytest.approx(config.learning_rate / 2)
    state.updates += config.warm_start_lr_warmup
    assert state.learning_rate(config) == config.learning_rate
    assert TrainState().learning_rate(config) == config.learning_rate  # a run from scratch: no ramp
    # The curve carries on; only the medium and expert snapshots came along, so only they can be chosen again.
    assert [(int(r["env_steps"]), r["snapshot"]) for r in _curve(out)] == [
        (1000, ""),
        (2000, "snapshots/step_000002000.pt"),
        (3000, "snapshots/step_000003000.pt"),
    ]
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step_000002000.pt", "step_000003000.pt"]

    if utility_basis:  # free utilities cannot be squeezed into a quadratic: refused, not approximated
        free = DecoupledQNetwork(9, [7, 7], (32, 32), layer_norm="all")
        with pytest.raises(ValueError, match="not the weights of a utility_basis=3 network"):
            learner.online.load_plain_state_dict(free.state_dict())


def test_behaviour_train_init_from_an_export_continues_resumes_and_records_its_lineage(tmp_path):
    first, export, second = tmp_path / "first", tmp_path / "export", tmp_path / "second"
    refill = ["--set", "warm_start_refill=500", "--set", "warm_start_lr_warmup=100"]
    base = ["behaviour", "train", "--task", "finger-spin", "--workers", "1", *TINY, *refill]
    _run_cli(*base, "--env-steps", "2000", "--out", str(first))
    _run_cli("behaviour", "export", str(first), "--dest", str(export))
    parent = json.loads((export / "behaviour.json").read_text())
    first_rows = _curve(first)

    out = _run_cli(*base, "--env-steps", "3000", "--out", str(second), "--init-from", str(export))
    assert f"warm start from {export}: the expert at 2,000 env steps" in out.stdout
    rows = _curve(second)
    assert [int(r["env_steps"]) for r in rows] == [1000, 2000, 3000]
    assert [r["eval_return_mean"] for r in rows[:2]] == [r["eval_return_mean"] for r in first_rows]
    # 500 refill steps before learning resumes, then 0.5 updates per step, one 250-step chunk behind.
    assert int(rows[-1]["updates"]) == int(first_rows[-1]["updates"]) + int((1000 - 500) * 0.5) - 125
    assert float(rows[-1]["wall_seconds"]) > float(first_rows[-1]["wall_seconds"])
    init_from = json.loads((second / "config.json").read_text())["init_from"]
    assert init_from == {
        "path": export.as_posix(),
        "expert_sha256": parent["snapshots"]["expert"]["sha256"],
        "env_steps": 2000,
        "command": parent["command"],
        "init_from": None,
    }

    # The same command with more steps resumes the new run's own checkpoint (its replay and optimizer).
    out = _run_cli(*base, "--env-steps", "4000", "--out", str(second), "--init-from", str(export))
    assert "resumed" in out.stdout and "at 3,000 env steps" in out.stdout and "warm start" not in out.stdout
    assert json.loads((second / "config.json").read_text())["init_from"] == init_from

    # Its export names the warm start in its command and keeps the parent's record.
    _run_cli("behaviour", "export", str(second), "--dest", str(tmp_path / "export2"))
    record = json.loads((tmp_path / "export2" / "behaviour.json").read_text())
    assert f"--env-steps 4000 --init-from {export.as_posix()} --set hidden=32,32" in record["command"]
    assert "--set warm_start_refill=500 --set warm_start_lr_warmup=100" in record["command"]
    assert record["init_from"] == init_from
    assert record["snapshots"]["medium"]["env_steps"] in (1000, 2000, 3000)  # from the kept snapshots


def test_init_from_refuses_a_bad_export_in_one_line_and_leaves_no_run_folder(tmp_path):
    export = _export(tmp_path, [DecoupledQNetwork(9, [3, 3], (32, 32)) for _ in range(2)], [10.0, 20.0], bins=3)
    train = ["behaviour", "train", "--task", "finger-spin", "--workers", "1", *TINY]

    def refused(*args, out="new"):
        result = _run_cli(*train, "--out", str(tmp_path / out), *args, check=False)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert out != "new" or not (tmp_path / out).exists()
        return result.stderr

    assert "holds finger-spin at 3 bins, not finger-spin at 5" in refused("--init-from", str(export), "--bins", "5")
    assert "must be more than the 2,000 its expert was trained for" in refused(
        "--init-from", str(export), "--env-steps", "2000"
    )
    message = refused("--init-from", str(export), "--set", "layer_norm=all")
    assert "its expert is a network with layer_norm='first', these settings train one with layer_norm='all'" in message
    assert "is not a behaviour export (no behaviour.json)" in refused("--init-from", str(tmp_path / "nowhere"))

    # A run trained from scratch is not silently swapped for the export's.
    _run_cli(*train, "--env-steps", "1000", "--out", str(tmp_path / "scratch"))
    message = refused("--init-from", str(export), "--env-steps", "3000", out="scratch")
    assert "holds a run that started from scratch, not from --init-from" in message

    (export / "expert.pt").write_bytes((export / "expert.pt").read_bytes() + b"\0")
    assert "does not match the sha256 behaviour.json records" in refused("--init-from", str(export))
