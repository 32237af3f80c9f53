import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import launch_cli

from spin_bench.datasets.snapshot import SnapshotError, epsilon_greedy, load_snapshot_policy
from spin_bench.pipeline.behaviour.config import DecQNConfig
from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
from spin_bench.pipeline.behaviour.policy import load_behaviour_policy, save_snapshot
from spin_bench.pipeline.behaviour.replay import NStepReplay
from spin_bench.pipeline.behaviour.trainer import DecQNLearner
from spin_bench.pipeline.behaviour.workers import _NStepAccumulator


def test_n_step_returns_bootstrap_through_truncation_but_not_termination():
    gamma = 0.9
    acc = _NStepAccumulator(gamma, n_step=3)
    obs = [np.full(2, i, dtype=np.float32) for i in range(6)]
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0]
    for t in range(5):
        last = t == 4
        acc.push(obs[t], np.array([t]), rewards[t], obs[t + 1], terminated=False, done=last)
    rows = acc.drain()
    assert len(rows["returns"]) == 5
    np.testing.assert_allclose(rows["returns"][0], 1 + 0.9 * 2 + 0.81 * 3)
    np.testing.assert_array_equal(rows["next_observations"][0], obs[3])
    np.testing.assert_allclose(rows["discounts"][:3], 0.9**3)
    # The last two transitions are truncated windows that still bootstrap from the final state.
    np.testing.assert_allclose(rows["returns"][3:], [4 + 0.9 * 5, 5])
    np.testing.assert_allclose(rows["discounts"][3:], [0.9**2, 0.9])
    np.testing.assert_array_equal(rows["next_observations"][4], obs[5])

    acc.push(obs[0], np.array([0]), 1.0, obs[1], terminated=False, done=False)
    acc.push(obs[1], np.array([1]), 1.0, obs[2], terminated=True, done=True)
    rows = acc.drain()
    np.testing.assert_array_equal(rows["discounts"], [0.0, 0.0])
    np.testing.assert_allclose(rows["returns"], [1.9, 1.0])


def test_epsilon_greedy_draws_the_same_randomness_whatever_epsilon():
    greedy = np.zeros((4, 5), dtype=np.int64)
    nvec = np.array([3, 3, 3, 2, 10])
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    assert (epsilon_greedy(greedy, nvec, 0.0, a) == 0).all()
    explored = epsilon_greedy(greedy, nvec, 1.0, b)
    assert (explored < nvec).all() and explored.any()
    assert a.random() == b.random()  # both streams advanced by the same amount


def test_epsilon_schedule():
    config = DecQNConfig(learning_starts=100, epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=100)
    assert config.epsilon(0) == 1.0
    assert config.epsilon(150) == pytest.approx(0.55)
    assert config.epsilon(10_000) == pytest.approx(0.1)
    assert DecQNConfig.from_dict(config.to_dict()) == config


def test_snapshot_round_trip_is_weights_only_and_acts_identically(tmp_path):
    network = DecoupledQNetwork(17, [3, 3, 2, 5])
    digest = save_snapshot(tmp_path / "s.pt", network, task="cheetah-run", env_steps=7)
    assert len(digest) == 64 and [p.name for p in tmp_path.iterdir()] == ["s.pt"]
    policy = load_behaviour_policy(tmp_path / "s.pt")
    assert policy.metadata == {"task": "cheetah-run", "env_steps": 7}
    obs = np.random.default_rng(0).normal(size=(8, 17)).astype(np.float32)
    with torch.no_grad():
        expected = network(torch.from_numpy(obs)).argmax(-1).numpy()
    np.testing.assert_array_equal(policy.greedy(obs), expected)
    # Padded bins are never chosen.
    assert (policy.act(obs, 1.0, np.random.default_rng(0))[:, 2] < 2).all()
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(SnapshotError, match="not a spin-bench behaviour snapshot"):
        load_behaviour_policy(tmp_path / "bad.pt")


def test_symlog_observation_transform_squashes_outliers_and_survives_a_snapshot(tmp_path):
    from spin_bench.pipeline.behaviour.config import apply_overrides
    from spin_bench.pipeline.behaviour.network import symlog

    x = torch.tensor([-8e4, -1.0, 0.0, 0.5, 8e4])
    expected = torch.tensor([-np.log1p(8e4), -np.log(2.0), 0.0, np.log(1.5), np.log1p(8e4)], dtype=torch.float32)
    torch.testing.assert_close(symlog(x), expected)

    config = apply_overrides(DecQNConfig(), ["observation_transform=symlog"])
    network = DecoupledQNetwork(17, [3, 3], observation_transform=config.observation_transform)
    assert network.architecture()["observation_transform"] == "symlog"
    assert "observation_transform" not in DecoupledQNetwork(17, [3, 3]).architecture()  # older snapshots' format
    save_snapshot(tmp_path / "s.pt", network)
    loaded = load_behaviour_policy(tmp_path / "s.pt").network
    obs = torch.randn(8, 17) * 1e3
    torch.testing.assert_close(loaded(obs), network(obs))
    plain = DecoupledQNetwork(17, [3, 3])
    plain.load_state_dict(network.state_dict())
    torch.testing.assert_close(plain(symlog(obs)), network(obs))

    with pytest.raises(ValueError, match="layer_norm='every' is not one of first, all"):
        apply_overrides(DecQNConfig(), ["layer_norm=every"])
    with pytest.raises(ValueError, match="observation_transform='log' is not one of none, symlog"):
        apply_overrides(DecQNConfig(), ["observation_transform=log"])
    with pytest.raises(ValueError, match="observation_transform='tanh' is not one of none, symlog"):
        DecoupledQNetwork(17, [3, 3], observation_transform="tanh")


def test_layer_norm_after_every_hidden_layer_bounds_q_on_extreme_inputs_and_survives_a_snapshot(tmp_path):
    torch.manual_seed(0)
    first = DecoupledQNetwork(17, [3, 3], (64, 64))
    every = DecoupledQNetwork(17, [3, 3], (64, 64), layer_norm="all")
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in first.torso) == 1
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in every.torso) == 2
    assert every.architecture()["layer_norm"] == "all" and "layer_norm" not in first.architecture()
    # |Q| <= |head weights| * |normalized features| + |bias|, however large the input.
    with torch.no_grad():
        every.torso[3].weight.mul_(1e3)  # a second layer whose weights ran away
        first.torso[3].weight.mul_(1e3)
    obs = torch.randn(64, 17) * 1e4
    features = 64**0.5  # a LayerNorm's output (unit gain, zero shift) has norm sqrt(width); ReLU only shrinks it

    def bound(network):
        return network.head.weight.norm(dim=1).max() * features + network.head.bias.abs().max()

    assert every(obs).abs().max() <= bound(every)
    assert first(obs).abs().max() > 20 * bound(first)  # with one LayerNorm the runaway layer passes straight through

    save_snapshot(tmp_path / "s.pt", every)
    loaded = load_behaviour_policy(tmp_path / "s.pt").network
    torch.testing.assert_close(loaded(obs), every(obs))
    fast = load_snapshot_policy(tmp_path / "s.pt").greedy  # the rollouts' torch-free forward pass
    np.testing.assert_array_equal(np.concatenate([fast(o[None]) for o in obs.numpy()]), loaded(obs).argmax(-1).numpy())


def _third_differences(utilities: torch.Tensor) -> float:
    """Largest third finite difference over bins: zero (to rounding) exactly when utilities are quadratic in the bin."""
    return float(utilities.diff(n=3, dim=-1).abs().max())


def test_utility_basis_makes_each_dimension_a_polynomial_over_its_bins_and_folds_into_a_plain_snapshot(tmp_path):
    torch.manual_seed(0)
    obs = torch.randn(64, 17) * 3
    basis = DecoupledQNetwork(17, [9, 9, 9], (32, 32), layer_norm="all", utility_basis=3)
    free = DecoupledQNetwork(17, [9, 9, 9], (32, 32), layer_norm="all")
    with torch.no_grad():
        utilities = basis(obs)
        assert utilities.shape == (64, 3, 9) and basis.head.out_features == 3 * 3
        assert _third_differences(utilities) < 1e-5  # quadratic in the bin
        assert _third_differences(free(obs)) > 1e-2  # free utilities are not
        assert len(set(utilities.argmax(-1).flatten().tolist())) > 2  # interior bins too, not only the two ends

    plain = basis.folded()
    assert plain.utility_basis == 0 and "utility_basis" not in plain.architecture()
    assert basis.architecture()["utility_basis"] == 3
    save_snapshot(tmp_path / "s.pt", plain)
    loaded = load_behaviour_policy(tmp_path / "s.pt").network
    torch.testing.assert_close(loaded(obs), utilities, atol=1e-5, rtol=1e-5)
    fast = load_snapshot_policy(tmp_path / "s.pt").greedy  # the rollouts' torch-free forward pass
    np.testing.assert_array_equal(np.concatenate([fast(o[None]) for o in obs.numpy()]), loaded(obs).argmax(-1).numpy())

    with pytest.raises(ValueError, match=r"utility_basis=9 must be 0 or in \[2, 8\] for 9 bins"):
        DecoupledQNetwork(17, [9, 9], utility_basis=9)
    with pytest.raises(ValueError, match=r"the same bins in every dimension, not \[5, 9\]"):
        DecoupledQNetwork(17, [9, 5], utility_basis=3)
    with pytest.raises(ValueError, match="utility_basis=1 must be 0 .free utilities. or >= 2"):
        DecQNConfig(utility_basis=1)


def test_training_with_a_utility_basis_snapshots_plain_networks_and_resumes(tmp_path):
    from spin_bench.pipeline.behaviour import trainer

    threads = torch.get_num_threads()
    config = DecQNConfig(hidden=(32, 32), learning_starts=500, eval_interval=1000, eval_episodes=1,
                         chunk_steps=250, replay_size=10000, utility_basis=3)  # fmt: skip
    run = tmp_path / "run"
    try:
        for steps in (1000, 2000):  # the second call resumes the first's checkpoint
            trainer.run_training("finger-spin", steps, bins=7, out=run, workers=1, config=config, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    assert json.loads((run / "config.json").read_text())["decqn"]["utility_basis"] == 3
    rows = _curve(run)
    assert [int(r["env_steps"]) for r in rows] == [1000, 2000]
    policy = load_behaviour_policy(run / rows[-1]["snapshot"])
    assert "utility_basis" not in policy.network.architecture() and policy.network.nvec == [7, 7]
    with torch.no_grad():
        utilities = policy.network(torch.randn(32, policy.network.obs_dim))
    assert _third_differences(utilities) < 1e-5  # quadratic over the 7 bins, as the learner's basis made it
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["state"]["env_steps"] == 2000


def test_replay_ring_buffer_wraps_and_survives_save_load(tmp_path):
    replay = NStepReplay(capacity=5, obs_dim=2, num_dims=3)
    for start in (0, 3):
        n = 3
        replay.add(
            {
                "observations": np.arange(start, start + n, dtype=np.float32)[:, None].repeat(2, 1),
                "actions": np.zeros((n, 3), dtype=np.int8),
                "returns": np.arange(start, start + n, dtype=np.float32),
                "next_observations": np.zeros((n, 2), dtype=np.float32),
                "discounts": np.ones(n, dtype=np.float32),
            }
        )
    assert replay.size == 5 and replay.cursor == 1
    assert sorted(replay.returns.tolist()) == [1, 2, 3, 4, 5]
    replay.save(tmp_path / "r.npz")
    other = NStepReplay(capacity=5, obs_dim=2, num_dims=3)
    other.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(other.returns, replay.returns)
    assert other.cursor == 1


def test_learner_solves_a_contextual_bandit():
    """Reward = fraction of sub-actions equal to a state-dependent target: greedy must find it."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, m, num_dims = 4096, 3, 4
    context = rng.integers(0, 2, size=n)
    obs = np.eye(2, dtype=np.float32)[context]
    targets = np.where(context[:, None] == 0, 0, 2).repeat(num_dims, 1)
    actions = rng.integers(0, m, size=(n, num_dims))
    batch_all = {
        "observations": obs,
        "actions": actions.astype(np.int8),
        "returns": (actions == targets).mean(1).astype(np.float32),
        "next_observations": obs,
        "discounts": np.zeros(n, dtype=np.float32),
    }
    learner = DecQNLearner(2, [m] * num_dims, DecQNConfig(hidden=(64, 64), learning_rate=1e-3), torch.device("cpu"))
    for _ in range(600):
        idx = rng.integers(0, n, size=128)
        learner.update({k: v[idx] for k, v in batch_all.items()})
    with torch.no_grad():
        greedy = learner.online(torch.eye(2)).argmax(-1).numpy()
    np.testing.assert_array_equal(greedy, [[0] * num_dims, [2] * num_dims])


MAINTAIN = "spin_bench.pipeline.cli"


def _run_cli(*args, check=True):
    return subprocess.run(
        [sys.executable, "-c", "from spin_bench.pipeline.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=check,
    )


def _curve(run):
    with open(run / "curve.csv") as f:
        return list(csv.DictReader(f))


def _wait_for_first_evaluation(run, process, timeout=240):
    """Until the training in ``process`` has written its first curve row (its stop handler is installed by then)."""
    deadline = time.time() + timeout
    while not (run / "curve.csv").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert (run / "curve.csv").exists(), process.communicate()[0]


def _curve_rows(run) -> int:
    """Evaluations written to the run's curve.csv so far (its header excluded)."""
    path = run / "curve.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


TINY = [
    "--set", "hidden=32,32", "--set", "learning_starts=500", "--set", "eval_interval=1000",
    "--set", "eval_episodes=2", "--set", "chunk_steps=250", "--set", "replay_size=10000",
]  # fmt: skip


def test_behaviour_train_cli_writes_curve_snapshots_and_resumes(tmp_path):
    run = tmp_path / "run"
    args = ["--env-steps", "2000", "--out", str(run), "--workers", "2", "--learner-threads", "2"]
    symlog = ["--set", "observation_transform=symlog"]
    out = _run_cli("behaviour", "train", "--task", "finger-spin", *args, *TINY, *symlog)
    assert "finger-spin: 2 env worker(s), learner on cpu, 2 torch threads" in out.stdout
    rows = _curve(run)
    assert [int(r["env_steps"]) for r in rows] == [1000, 2000]
    assert int(rows[-1]["updates"]) == int((2000 - 500) * 0.5) - 250  # the learner lags one chunk
    snapshot = load_behaviour_policy(run / rows[-1]["snapshot"])
    assert snapshot.metadata["env_steps"] == 2000 and snapshot.metadata["eval_episodes"] == 2
    assert snapshot.network.observation_transform == "symlog"
    assert all(0 < abs(float(r["q_max"])) < 100 for r in rows)  # greedy Q on replay states, within what rewards allow
    assert all(float(r["q_mean"]) <= float(r["q_max"]) for r in rows)  # the mean and max of the same probe
    assert f"Q mean {float(rows[-1]['q_mean']):.3g} (eval implies " in out.stdout
    assert float(rows[-1]["eval_return_mean"]) == pytest.approx(snapshot.metadata["eval_return_mean"], abs=0.01)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["state"]["env_steps"] == 2000

    # Resume with a larger budget: continues from the checkpoint and appends to the curve.
    resume = ["--env-steps", "3000", "--out", str(run)]
    out = _run_cli("behaviour", "train", "--task", "finger-spin", *resume, *TINY, *symlog)
    assert "resumed" in out.stdout and "at 2,000 env steps" in out.stdout
    rows = _curve(run)
    assert [int(r["env_steps"]) for r in rows] == [1000, 2000, 3000]
    assert int(rows[-1]["updates"]) == int((3000 - 500) * 0.5) - 250
    assert float(rows[-1]["wall_seconds"]) > float(rows[1]["wall_seconds"])
    # Another configuration in the same folder is refused, in one line.
    out = _run_cli("behaviour", "train", "--task", "finger-spin", "--out", str(run), "--bins", "5", *TINY, check=False)
    assert out.returncode == 2 and "holds a run with bins=3, not 5" in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_checkpoints_between_chunks_and_the_same_command_resumes(tmp_path, sig):
    run = tmp_path / "run"
    args = ["behaviour", "train", "--task", "finger-spin", "--env-steps", "100000", "--out", str(run), "--workers", "1"]
    process = launch_cli([*args, *TINY], cli=MAINTAIN, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for_first_evaluation(run, process)
    os.killpg(process.pid, sig)  # the whole group, as a terminal's Ctrl-C or a job scheduler does
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert "checkpointed" in output and "run the same command again to resume" in output
    stopped_at = torch.load(run / "checkpoint.pt", weights_only=True)["state"]["env_steps"]
    assert stopped_at >= 1000 and stopped_at % 250 == 0  # a chunk boundary past the first evaluation

    config = json.loads((run / "config.json").read_text())
    del config["decqn"]["observation_transform"]  # as in runs started before the hyperparameter existed
    (run / "config.json").write_text(json.dumps(config))
    resumed = _run_cli(*args[:5], str(stopped_at + 500), *args[6:], *TINY)
    assert f"at {stopped_at:,} env steps" in resumed.stdout
    assert torch.load(run / "checkpoint.pt", weights_only=True)["state"]["env_steps"] == stopped_at + 500


def test_a_kill_between_replay_and_checkpoint_resumes_from_the_matching_pair(tmp_path, monkeypatch):
    from spin_bench.pipeline.behaviour import trainer

    run = tmp_path / "run"
    config = DecQNConfig(hidden=(32, 32), learning_starts=500, eval_interval=1000, eval_episodes=2,
                         chunk_steps=250, replay_size=10000)  # fmt: skip
    save_checkpoint, threads = trainer._save_checkpoint, torch.get_num_threads()

    class Killed(Exception):
        pass

    def killed_at_2000(path, learner, rng, state, replay_file):
        if state.env_steps == 2000:  # the curve row and replay_000002000.npz are written; the checkpoint is not
            raise Killed
        save_checkpoint(path, learner, rng, state, replay_file)

    monkeypatch.setattr(trainer, "_save_checkpoint", killed_at_2000)
    try:
        with pytest.raises(Killed):
            trainer.run_training("finger-spin", 3000, out=run, workers=1, config=config, log=lambda _: None)
        assert sorted(p.name for p in run.glob("replay*")) == ["replay_000001000.npz", "replay_000002000.npz"]
        assert [int(r["env_steps"]) for r in _curve(run)] == [1000, 2000]
        with np.load(run / "replay_000001000.npz") as data:
            size_at_1000 = len(data["returns"])
        (run / "replay_000002000.npz.tmp.npz").write_bytes(b"cut off")  # what a kill inside np.savez leaves

        monkeypatch.setattr(trainer, "_save_checkpoint", save_checkpoint)
        messages = []
        trainer.run_training("finger-spin", 3000, out=run, workers=1, config=config, log=messages.append)
    finally:
        torch.set_num_threads(threads)
    resumed = next(m for m in messages if m.startswith("resumed"))
    assert "at 1,000 env steps" in resumed and resumed.endswith(f"replay {size_at_1000:,}")
    assert "dropped 1 curve row(s) past the checkpoint" in "\n".join(messages)
    assert [int(r["env_steps"]) for r in _curve(run)] == [1000, 2000, 3000]  # 2,000 trained again, logged once
    assert [p.name for p in run.glob("replay*")] == ["replay_000003000.npz"]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["replay_file"] == "replay_000003000.npz"
    with np.load(run / "replay_000003000.npz") as data:
        # One transition per env step, less the n-step tails still pending at the chunk ends; resuming with the
        # later replay would hold about 4,000.
        assert 2990 <= len(data["returns"]) <= 3000


def test_sigint_ignored_at_launch_stays_ignored_and_sigterm_still_stops(tmp_path):
    # A training started with `&` by a script: the shell made SIGINT ignored; a job scheduler's SIGTERM still works.
    run = tmp_path / "run"
    args = ["behaviour", "train", "--task", "finger-spin", "--env-steps", "100000", "--out", str(run), "--workers", "1"]
    process = launch_cli(
        [*args, *TINY], sigint=signal.SIG_IGN, cli=MAINTAIN, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    _wait_for_first_evaluation(run, process)
    os.killpg(process.pid, signal.SIGINT)
    # An honoured SIGINT stops the run at the next chunk boundary (every 250 env steps), long before the next
    # evaluation 1000 env steps on: a second curve row proves the SIGINT was ignored, however fast the machine.
    deadline = time.time() + 240
    while _curve_rows(run) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None and _curve_rows(run) >= 2  # still training, past the next evaluation
    os.killpg(process.pid, signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130 and "SIGTERM: checkpointed" in output, output


def test_behaviour_cli_rejects_bad_input_in_one_line(tmp_path):
    out = _run_cli("behaviour", "train", "--task", "cheetah-runn", "--out", str(tmp_path / "x"), check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "unknown task 'cheetah-runn'" in out.stderr and "cheetah-run" in out.stderr
    assert not (tmp_path / "x").exists()
    out = _run_cli("behaviour", "train", "--task", "cheetah-run", "--set", "gama=0.9", check=False)
    assert out.returncode == 2 and "bad override 'gama=0.9'" in out.stderr and "gamma" in out.stderr
    out = _run_cli(
        "behaviour",
        "train",
        "--task",
        "cheetah-run",
        "--learner-threads",
        "-1",
        "--out",
        str(tmp_path / "y"),
        check=False,
    )
    assert out.returncode == 2 and "learner_threads=-1 must be >= 0" in out.stderr
    assert not (tmp_path / "y").exists()
    out = _run_cli("behaviour", "train", "--task", "cheetah-run", "--set", "matmul_precision=low", check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "matmul_precision='low' is not one of highest, high, medium" in out.stderr
    out = _run_cli("behaviour", "train", "--task", "cheetah-run", "--set", "utility_basis=3", "--out",
                   str(tmp_path / "z"), check=False)  # fmt: skip
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "utility_basis=3 must be 0 or in [2, 2] for 3 bins" in out.stderr and not (tmp_path / "z").exists()


def test_matmul_precision_applies_to_the_learner_updates_only_while_training(tmp_path, monkeypatch):
    from spin_bench.pipeline.behaviour import trainer

    seen, update, threads = set(), trainer.DecQNLearner.update, torch.get_num_threads()

    def recording_update(self, batch, learning_rate=None):
        seen.add(torch.get_float32_matmul_precision())
        return update(self, batch, learning_rate)

    monkeypatch.setattr(trainer.DecQNLearner, "update", recording_update)
    config = DecQNConfig(hidden=(32, 32), learning_starts=500, eval_interval=1000, eval_episodes=1,
                         chunk_steps=250, replay_size=10000, matmul_precision="medium")  # fmt: skip
    try:
        trainer.run_training("finger-spin", 1000, out=tmp_path / "run", workers=1, config=config, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    assert seen == {"medium"}
    assert torch.get_float32_matmul_precision() == "highest"  # restored for whatever runs next in the process
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["decqn"]
    assert recorded["matmul_precision"] == "medium"


def test_export_picks_final_as_expert_and_half_return_as_medium(tmp_path):
    from spin_bench.pipeline.behaviour.export import select_snapshots

    curve = [{"env_steps": s, "eval_return_mean": r} for s, r in [(1, 50), (2, 290), (3, 340), (4, 500), (5, 640)]]
    chosen = select_snapshots(curve)
    assert chosen.expert["env_steps"] == 5 and chosen.medium["env_steps"] == 3  # |340 - 320| < |290 - 320|
    with pytest.raises(ValueError, match="at least 2"):
        select_snapshots(curve[:1])

    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "config.json").write_text('{"task": "finger-spin", "bins": 3, "seed": 0, "decqn": {}}')
    rows = ["env_steps,eval_return_mean,eval_return_std,eval_episodes,snapshot"]
    for step, ret in [(1000, 10.0), (2000, 60.0), (3000, 100.0)]:
        save_snapshot(run / f"snapshots/step_{step}.pt", DecoupledQNetwork(9, [3, 3]), env_steps=step)
        rows.append(f"{step},{ret},1.0,10,snapshots/step_{step}.pt")
    (run / "curve.csv").write_text("\n".join(rows) + "\n")
    out = _run_cli("behaviour", "export", str(run), "--dest", str(tmp_path / "dest"))
    assert "expert: step 3,000" in out.stdout and "medium: step 2,000" in out.stdout
    record = json.loads((tmp_path / "dest" / "behaviour.json").read_text())
    assert record["snapshots"]["medium"]["env_steps"] == 2000
    assert record["command"].startswith("spin-bench-maintain behaviour train --task finger-spin --bins 3 --seed 0")
    assert load_behaviour_policy(tmp_path / "dest" / "expert.pt").metadata["env_steps"] == 3000
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == [
        "behaviour.json",
        "curve.csv",
        "expert.pt",
        "medium.pt",
    ]


def test_export_of_a_chosen_step_picks_the_medium_before_it_and_records_the_exact_command(tmp_path):
    # After a divergence the final snapshot is not the one to ship: --expert-step picks an earlier one.
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    decqn = {**DecQNConfig().to_dict(), "hidden": [32, 32], "learning_rate": 0.0001}
    (run / "config.json").write_text(json.dumps({"task": "finger-spin", "bins": 3, "seed": 2, "decqn": decqn}))
    rows = ["env_steps,eval_return_mean,eval_return_std,eval_episodes,snapshot"]
    for step, ret in [(1000, 10.0), (2000, 45.0), (3000, 100.0), (4000, 20.0)]:
        save_snapshot(run / f"snapshots/step_{step}.pt", DecoupledQNetwork(9, [3, 3], (32, 32)), env_steps=step)
        rows.append(f"{step},{ret},1.0,10,snapshots/step_{step}.pt")
    (run / "curve.csv").write_text("\n".join(rows) + "\n")

    out = _run_cli("behaviour", "export", str(run), "--dest", str(tmp_path / "dest"), "--expert-step", "3000")
    assert "expert: step 3,000" in out.stdout and "medium: step 2,000" in out.stdout
    record = json.loads((tmp_path / "dest" / "behaviour.json").read_text())
    assert record["command"] == (
        "spin-bench-maintain behaviour train --task finger-spin --bins 3 --seed 2 --env-steps 3000 "
        "--set hidden=32,32 --set learning_rate=0.0001"
    )
    assert load_behaviour_policy(tmp_path / "dest" / "expert.pt").metadata["env_steps"] == 3000

    bad = [("2500", "expert step 2,500 has no snapshot; snapshots are at 1,000 to 4,000"),
           ("1000", "expert step 1,000 is the first snapshot")]  # fmt: skip
    for step, message in bad:
        out = _run_cli("behaviour", "export", str(run), "--dest", str(tmp_path / "bad"), "--expert-step", step,
                       check=False)  # fmt: skip
        assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()


def test_diagnose_reports_large_features_and_flags_impossible_q_values(tmp_path):
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": "finger-spin", "bins": 3, "seed": 0,
                                                 "decqn": DecQNConfig().to_dict()}))  # fmt: skip
    rng = np.random.default_rng(0)
    observations = rng.standard_normal((1000, 9)).astype(np.float32)
    observations[:50, 4] = 5e4  # 5% of the states carry a dog-sized outlier in feature 4
    replay = NStepReplay(2000, 9, 2)
    replay.add({"observations": observations, "actions": np.zeros((1000, 2), np.int8), "returns": np.zeros(1000),
                "next_observations": observations, "discounts": np.full(1000, 0.99)})  # fmt: skip
    replay.save(run / "replay.npz")
    rows = ["env_steps,loss,eval_return_mean,eval_return_std,eval_episodes,snapshot"]
    # (step, constant greedy Q, eval return): Q = 400 is well above 1 / (1 - 0.99); 104 slightly above it, for a
    # policy worth (1000 / 1000) / 0.01 = 100 (ordinary overestimation); 60 for a policy worth 4 (15x: overestimated).
    snapshots = [(1000, 5.0, 50.0), (2000, 104.0, 1000.0), (3000, 400.0, 1000.0), (4000, 60.0, 40.0)]
    for step, bias, eval_return in snapshots:
        network = DecoupledQNetwork(9, [3, 3], (32, 32))
        torch.nn.init.zeros_(network.head.weight)
        torch.nn.init.constant_(network.head.bias, bias)
        save_snapshot(run / f"snapshots/step_{step}.pt", network, env_steps=step)
        rows.append(f"{step},0.1,{eval_return},1.0,10,snapshots/step_{step}.pt")
    (run / "curve.csv").write_text("\n".join(rows) + "\n")

    out = _run_cli("behaviour", "diagnose", str(run), "--states", "1000").stdout
    assert "5.0% have a feature above 100 and 5.0% above 1000" in out
    assert "4: 5e+04 / 5e+04" in out  # feature 4 listed first, its 99th percentile and max
    assert "greedy Q on replay states (true values <= 100)" in out
    assert out.count("diverged") == 2 and out.count("above bound") == 1  # the row marks and the verdict line
    assert out.count("overestimated 15x") == 1  # 60 / 4, the 4,000-step row
    assert "Q-values over 1.25x 100 from 3,000 env steps" in out and "checked before it is at 2,000" in out
    out = _run_cli("behaviour", "diagnose", str(run), "--steps", "1000,2000").stdout
    assert "diverged" not in out and "2,000" in out and "ordinary overestimation" in out and "overestimated" not in out
    out = _run_cli("behaviour", "diagnose", str(run), "--steps", "1000").stdout
    assert "diverged" not in out and "above bound" not in out and "overestimat" not in out
    assert "│ 5 │ 5 │" in " ".join(out.split())  # Q mean 5 beside the 5 an eval return of 50 implies
    out = _run_cli("behaviour", "diagnose", str(run), "--steps", "1000,4000").stdout
    assert "Q mean 15x the value the eval return implies at 4,000 env steps" in out and "diverged" not in out
    out = _run_cli("behaviour", "diagnose", str(run), "--steps", "4000,1000").stdout
    assert "overestimated 15x" in out and "Q mean 15x" not in out  # the verdict reads the latest snapshot given

    bad = [(["--steps", "1500"], "no snapshot at 1,500 env steps; the run has 1,000 to 4,000"),
           (["--steps", "10k"], "--steps '10k' must be comma-separated integers"),
           (["--states", "0"], "--states 0 must be >= 1")]  # fmt: skip
    for args, message in bad:
        result = _run_cli("behaviour", "diagnose", str(run), *args, check=False)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    (run / "replay.npz").unlink()
    result = _run_cli("behaviour", "diagnose", str(run), check=False)
    assert result.returncode == 2 and "holds no replay*.npz: diagnose needs a behaviour run folder" in result.stderr


def test_divergence_warning_flags_impossible_q_or_diverging_td_loss_but_not_a_learning_run():
    from spin_bench.pipeline.behaviour.trainer import divergence_warning

    def curve(losses):
        return [{"loss": loss} for loss in losses]

    # Healthy loss curves of this package's runs (walker-walk, finger-spin): growth as the agent learns.
    assert divergence_warning(curve([0.037, 0.397, 0.604, 0.628, 0.925, 1.22, 1.26, 1.13])) is None
    assert divergence_warning(curve([0.0268, 0.0693, 0.154, 0.308, 0.654])) is None
    assert divergence_warning(curve(["", 0.2])) is None
    # dog-trot at 1M env steps: an order-of-magnitude jump ...
    message = divergence_warning(curve([0.153, 0.158, 0.161, 0.234, 3.27]))
    assert message is not None and "21x the lowest of the previous 3" in message and "diverging" in message
    # ... and, later, exponential growth.
    message = divergence_warning(curve([86.5, 99.7, 186.3, 406.5, 930.7]))
    assert message is not None and "three evaluations in a row" in message
    # Greedy Q well above 1 / (1 - gamma) is flagged at once, however small the loss (dog-trot at 1M env steps).
    rows = [{"loss": 0.161, "q_max": 30.35}, {"loss": 0.234, "q_max": 416.6}]
    assert divergence_warning(rows[:1]) is None
    message = divergence_warning(rows)
    assert message is not None and "greedy Q reaches 417 on replay states, over 1.25x the 100 that rewards" in message
    assert divergence_warning(rows, gamma=0.999) is None  # 1 / (1 - 0.999) = 1000
    # A little above the bound is a near-perfect critic's overestimation (walker-walk, eval 930-955), not divergence.
    assert divergence_warning([{"loss": 1.04, "q_max": 104.8}]) is None
    assert divergence_warning([{"loss": 0.02, "q_max": 143}]) is not None  # dog-trot, 10 bins, 100k env steps


@pytest.mark.parametrize(("target_clip", "loss"), [("none", 485.0), ("bound", 99.5)])
def test_target_clip_bounds_the_td_target_by_what_rewards_allow(target_clip, loss):
    learner = DecQNLearner(4, [3, 3], DecQNConfig(hidden=(8,), target_clip=target_clip), torch.device("cpu"))
    for network, value in ((learner.online, 0.0), (learner.target, 500.0)):  # online Q = 0; a runaway target: 500
        torch.nn.init.zeros_(network.head.weight)
        torch.nn.init.constant_(network.head.bias, value)
    batch = {"observations": np.zeros((2, 4), np.float32), "actions": np.zeros((2, 2), np.int8),
             "returns": np.full(2, 0.5, np.float32), "next_observations": np.zeros((2, 4), np.float32),
             "discounts": np.full(2, 0.97, np.float32)}  # fmt: skip
    # Huber(delta=1) of 0.5 + 0.97 * 500 = 485.5 unclipped, of 100 = 1 / (1 - 0.99) clipped.
    assert learner.update(batch) == pytest.approx(loss)


def test_learner_and_replay_checkpoints_restore_exactly(tmp_path):
    from spin_bench.pipeline.behaviour.trainer import TrainState, _restore_learner, _save_checkpoint

    rng = np.random.default_rng(0)

    def rows(count, obs_dim=5, dims=3):
        return {
            "observations": rng.random((count, obs_dim), dtype=np.float32),
            "actions": rng.integers(0, 3, (count, dims)).astype(np.int8),
            "returns": rng.random(count, dtype=np.float32),
            "next_observations": rng.random((count, obs_dim), dtype=np.float32),
            "discounts": rng.random(count, dtype=np.float32),
        }

    replay = NStepReplay(1000, 5, 3)
    for _ in range(7):  # wraps around twice
        replay.add(rows(300))
    replay.save(tmp_path / "replay.npz")
    restored = NStepReplay(1000, 5, 3)
    restored.load(tmp_path / "replay.npz")
    assert (restored.size, restored.cursor) == (replay.size, replay.cursor) == (1000, 100)
    for name in ("observations", "actions", "returns", "next_observations", "discounts"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(replay, name))

    config = DecQNConfig(hidden=(32, 32))
    learner = DecQNLearner(5, [3, 3, 3], config, torch.device("cpu"))
    for _ in range(20):
        learner.update(replay.sample(64, rng))
    _save_checkpoint(tmp_path / "checkpoint.pt", learner, rng, TrainState(env_steps=1), "replay.npz")
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    resumed = DecQNLearner(5, [3, 3, 3], config, torch.device("cpu"))
    _restore_learner(resumed, ckpt)
    batch = replay.sample(64, rng)
    assert [learner.update(batch) for _ in range(5)] == [resumed.update(batch) for _ in range(5)]
    for a, b in zip(learner.target.parameters(), resumed.target.parameters(), strict=True):
        assert torch.equal(a, b)


def test_status_lists_each_run_against_its_catalog_target(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    for name, task, bins, decqn, rows in [
        # (env steps, wall seconds, eval return, Q mean, Q max)
        (
            "finger-spin-bins3-seed0",
            "finger-spin",
            3,
            {},
            [(1000, 60.0, 100.0, 1.5, 5.0), (2000, 120.0, 300.0, 63.0, 80.0)],
        ),
        ("dog-trot-bins10-seed0", "dog-trot", 10, {"layer_norm": "all"}, [(25000, 100.0, 6.4, 50.0, 660.0)]),
        # Warm-started from an export at 1.9M env steps.
        ("dog-trot-bins3-seed0", "dog-trot", 3, {"init_from": 1_900_000}, [(1_925_000, 60.0, 180.0, 30.0, 40.0)]),
        ("cheetah-run-bins7-seed0", "cheetah-run", 7, {}, [(5000, 10.0, 1.5, "", "")]),  # no catalog entry, no Q logged
    ]:
        (root / name).mkdir(parents=True)
        init_from = decqn.pop("init_from", None)
        config = {"task": task, "bins": bins, "seed": 0, "decqn": {**DecQNConfig().to_dict(), **decqn}}
        if init_from:
            config["init_from"] = {"path": "datasets/checkpoints/dog-trot/bins3", "env_steps": init_from}
        (root / name / "config.json").write_text(json.dumps(config))
        lines = ["env_steps,wall_seconds,q_mean,q_max,eval_return_mean"]
        lines += [f"{step},{seconds},{q_mean},{q_max},{ret}" for step, seconds, ret, q_mean, q_max in rows]
        (root / name / "curve.csv").write_text("\n".join(lines) + "\n")
    (root / "not-a-run").mkdir()

    monkeypatch.setenv("COLUMNS", "200")  # one line per run
    out = _run_cli("behaviour", "status", str(root))
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if "-seed0" in line}
    assert sorted(lines) == [
        "cheetah-run-bins7-seed0",
        "dog-trot-bins10-seed0",
        "dog-trot-bins3-seed0",
        "finger-spin-bins3-seed0",
    ]
    # finger-spin: best 300 at 2,000 env steps, 41% of its 725.6 target; 1,000 env steps in 60 s.
    assert "2,000" in lines["finger-spin-bins3-seed0"] and "300.0 (0.002M)" in lines["finger-spin-bins3-seed0"]
    assert "726 (41%)" in lines["finger-spin-bins3-seed0"] and " 17 " in lines["finger-spin-bins3-seed0"]
    assert " 2.1x " in lines["finger-spin-bins3-seed0"]  # Q mean 63 for a policy worth (300 / 1000) / 0.01 = 30
    assert "660 diverged" in lines["dog-trot-bins10-seed0"] and "626 (1%)" in lines["dog-trot-bins10-seed0"]
    assert " 50.0x " in lines["dog-trot-bins10-seed0"]  # Q mean 50 for a policy worth 0.64, floored at 1
    assert "layer_norm=all" in lines["dog-trot-bins10-seed0"] and "export" not in lines["dog-trot-bins10-seed0"]
    assert lines["dog-trot-bins3-seed0"].rstrip().endswith("from 1.9M export")
    # No target, no Q max, no Q/eval, one evaluation.
    assert lines["cheetah-run-bins7-seed0"].split()[5:9] == ["–", "–", "–", "–"]

    assert "no behaviour runs in" in _run_cli("behaviour", "status", str(tmp_path)).stdout
    missing = _run_cli("behaviour", "status", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 2 and "is not a folder of behaviour runs" in missing.stderr
