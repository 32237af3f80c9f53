"""Prioritized replay (DecQN's own agent used it): the sum tree's draws, weights, persistence, and a real run."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from spin_bench.pipeline.behaviour.config import DecQNConfig
from spin_bench.pipeline.behaviour.replay import FIELDS, NStepReplay, PrioritizedReplay
from spin_bench.pipeline.behaviour.trainer import DecQNLearner, make_replay


def _rows(count, start=0, obs_dim=2, dims=3):
    return {
        "observations": np.arange(start, start + count, dtype=np.float32)[:, None].repeat(obs_dim, 1),
        "actions": np.zeros((count, dims), dtype=np.int8),
        "returns": np.arange(start, start + count, dtype=np.float32),
        "next_observations": np.zeros((count, obs_dim), dtype=np.float32),
        "discounts": np.ones(count, dtype=np.float32),
    }


def _leaves(replay):
    return replay.tree[replay.leaves : replay.leaves + replay.size]


def test_draws_follow_priorities_and_weights_undo_them():
    replay = PrioritizedReplay(capacity=6, obs_dim=2, num_dims=3, alpha=1.0, beta=0.5)
    replay.add(_rows(4))
    np.testing.assert_array_equal(_leaves(replay), [1.0, 1.0, 1.0, 1.0])  # new rows: the largest priority so far
    replay.update_priorities(np.array([0, 1, 2, 3]), np.array([1.0, -2.0, 3.0, 4.0]))  # |TD error|
    assert replay.total == pytest.approx(10.0)
    rng = np.random.default_rng(0)
    counts = np.zeros(4)
    for _ in range(200):
        idx, batch = replay.sample_prioritized(256, rng)
        np.testing.assert_array_equal(batch["returns"], idx)  # each row's own data comes with its index
        counts += np.bincount(idx, minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), [0.1, 0.2, 0.3, 0.4], atol=0.005)
    # Weight (size * P(i)) ** -beta over the batch's largest: row 0 (P = 0.1) gets 1, row 3 (P = 0.4) gets 0.5.
    weights = dict(zip(idx.tolist(), batch["weights"].tolist(), strict=True))
    assert weights[0] == pytest.approx(1.0, rel=1e-5) and weights[3] == pytest.approx(0.5, rel=1e-5)
    # A new row enters with the largest |TD error| seen (4), so it is replayed soon.
    replay.add(_rows(1, start=4))
    assert _leaves(replay)[4] == pytest.approx(4.0)


def test_the_tree_stays_the_sum_of_its_rows_through_wraps_and_repeated_indices():
    replay = PrioritizedReplay(capacity=1000, obs_dim=2, num_dims=3, alpha=0.6, beta=0.2)
    rng = np.random.default_rng(1)
    for step in range(9):  # 2,700 rows through 1,000 slots
        replay.add(_rows(300, start=300 * step))
        idx, _ = replay.sample_prioritized(256, rng)  # repeats within a batch are likely
        replay.update_priorities(idx, rng.exponential(size=256))
    assert (replay.size, replay.cursor) == (1000, 700)
    assert replay.leaves == 1024 and replay.depth == 10
    for level in range(replay.depth):  # every inner node is the sum of its two children
        nodes = np.arange(1 << level, 2 << level)
        np.testing.assert_allclose(replay.tree[nodes], replay.tree[2 * nodes] + replay.tree[2 * nodes + 1])
    assert np.all(replay.tree[replay.leaves + 1000 :] == 0)  # padding leaves are never drawn
    assert replay.total == pytest.approx(_leaves(replay).sum())


def test_priorities_survive_save_and_load_and_a_uniform_replay_loads_with_equal_ones(tmp_path):
    replay = PrioritizedReplay(capacity=50, obs_dim=2, num_dims=3, alpha=0.6, beta=0.2)
    replay.add(_rows(40))
    replay.update_priorities(np.arange(10), np.linspace(0, 9, 10))
    replay.save(tmp_path / "replay.npz")
    restored = PrioritizedReplay(capacity=50, obs_dim=2, num_dims=3, alpha=0.6, beta=0.2)
    restored.load(tmp_path / "replay.npz")
    np.testing.assert_array_equal(restored.tree, replay.tree)
    assert restored.max_priority == replay.max_priority
    a, b = (r.sample_prioritized(32, np.random.default_rng(7)) for r in (replay, restored))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1]["weights"], b[1]["weights"])

    uniform = NStepReplay(capacity=50, obs_dim=2, num_dims=3)
    uniform.add(_rows(20))
    uniform.save(tmp_path / "uniform.npz")
    restored.load(tmp_path / "uniform.npz")
    assert restored.size == 20 and np.all(_leaves(restored) == _leaves(restored)[0]) and restored.total > 0
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(restored, name)[:20], getattr(uniform, name)[:20])


def test_weights_scale_each_transitions_loss_and_td_errors_come_back():
    config = DecQNConfig(hidden=(16, 16), priority_exponent=0.6)
    torch.manual_seed(0)
    learner = DecQNLearner(3, [3, 3], config, torch.device("cpu"))
    rng = np.random.default_rng(0)
    batch = {
        "observations": rng.random((8, 3), dtype=np.float32),
        "actions": rng.integers(0, 3, (8, 2)).astype(np.int8),
        "returns": rng.random(8, dtype=np.float32),
        "next_observations": rng.random((8, 3), dtype=np.float32),
        "discounts": np.zeros(8, dtype=np.float32),
    }
    with torch.no_grad():
        q = learner.online(torch.from_numpy(batch["observations"]))
        q = q.gather(2, torch.from_numpy(batch["actions"]).long()[..., None]).squeeze(-1).mean(1).numpy()
    before = [p.clone() for p in learner.online.parameters()]
    loss, td_errors = learner.update_with_td_errors({**batch, "weights": np.zeros(8, dtype=np.float32)})
    assert loss == 0.0  # zero weights: nothing to learn from
    assert all(torch.equal(a, b) for a, b in zip(before, learner.online.parameters(), strict=True))
    np.testing.assert_allclose(td_errors, np.abs(batch["returns"] - q), rtol=1e-5)  # no bootstrap: discounts 0
    unweighted = learner.update(batch)
    assert learner.update_with_td_errors({**batch, "weights": np.ones(8, dtype=np.float32)})[0] < unweighted


def test_make_replay_is_uniform_unless_priority_exponent_is_positive():
    assert type(make_replay(DecQNConfig(replay_size=10), 2, 3)) is NStepReplay
    replay = make_replay(DecQNConfig(replay_size=10, priority_exponent=0.6, importance_exponent=0.4), 2, 3)
    assert isinstance(replay, PrioritizedReplay) and (replay.alpha, replay.beta) == (0.6, 0.4)
    with pytest.raises(ValueError, match=r"priority_exponent=1.5 must be in \[0, 1\]"):
        DecQNConfig(priority_exponent=1.5)


def test_behaviour_train_with_prioritized_replay_learns_checkpoints_priorities_and_resumes(tmp_path):
    run = tmp_path / "run"
    tiny = ["--set", "hidden=32,32", "--set", "learning_starts=500", "--set", "eval_interval=1000",
            "--set", "eval_episodes=2", "--set", "chunk_steps=250", "--set", "replay_size=10000",
            "--set", "priority_exponent=0.6"]  # fmt: skip

    def train(env_steps):
        return subprocess.run(
            [sys.executable, "-c", "from spin_bench.pipeline.cli import main; main()", "behaviour", "train",
             "--task", "finger-spin", "--env-steps", str(env_steps), "--out", str(run), "--workers", "1", *tiny],
            capture_output=True, text=True, check=True,
        )  # fmt: skip

    train(2000)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    with np.load(run / ckpt["replay_file"]) as data:
        priorities = data["priorities"]
        assert len(priorities) == 2000 and float(data["max_priority"]) > PrioritizedReplay.PRIORITY_FLOOR
    # Rows the learner drew carry their own TD errors; rows it has not drawn yet still carry the entry priority.
    assert len(np.unique(priorities)) > 100
    out = train(3000)
    assert "resumed" in out.stdout and "at 2,000 env steps" in out.stdout
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["state"]["env_steps"] == 3000
