"""Action repeat in the DecQN behaviour trainer: one transition per decision, held for k env steps."""

import json
import subprocess

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import launch_cli

import spin_bench
from spin_bench.pipeline.behaviour import trainer
from spin_bench.pipeline.behaviour.config import DecQNConfig
from spin_bench.pipeline.behaviour.diagnose import sample_replay_observations, snapshot_q_values
from spin_bench.pipeline.behaviour.export import export_snapshots
from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
from spin_bench.pipeline.behaviour.policy import BehaviourPolicy, load_behaviour_policy, save_snapshot
from spin_bench.pipeline.behaviour.workers import WorkerPool, WorkerSpec, _episode_seed

TASK = "walker-stand"  # a reward well above zero from the first step, so summed rewards differ from single ones


def _network(seed: int) -> DecoupledQNetwork:
    env = gym.make(spin_bench.env_id(TASK), bins=3)
    obs_dim, nvec = env.observation_space.shape[0], [int(m) for m in env.action_space.nvec]
    env.close()
    torch.manual_seed(seed)
    return DecoupledQNetwork(obs_dim, nvec, hidden=(16,)).eval()


def _pool(network: DecoupledQNetwork, seed: int, action_repeat: int, gamma: float = 0.9) -> WorkerPool:
    spec = WorkerSpec(TASK, 3, network.architecture(), gamma, 1, seed, action_repeat)
    pool = WorkerPool([spec])
    pool.set_weights(network.state_dict())
    return pool


def test_a_worker_stores_one_transition_per_decision_with_the_summed_rewards_of_its_env_steps():
    seed, repeat, gamma = 5, 3, 0.9
    pool = _pool(_network(0), seed, repeat, gamma)
    try:
        chunks = []
        # Chunks of 5 cut decisions short; 1000 more steps finish the first episode (1000 = 333 * 3 + 1).
        for steps in (5, 5, 1000):
            pool.start_collect(steps, 1.0)
            (chunk,), collected, _ = pool.finish_collect()
            assert collected == steps  # the trainer's counters stay in env steps
            chunks.append(chunk)
    finally:
        pool.close()
    # 1010 env steps: 334 decisions in the first episode (the last one a single step), 3 in the second and one
    # still held; a decision is stored in the chunk where its last env step falls.
    assert [len(c["returns"]) for c in chunks] == [1, 2, 334]
    rows = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}

    # The same env, seeds and actions by hand: each action held for up to 3 steps, cut at the episode's end.
    env = gym.make(spin_bench.env_id(TASK), bins=3)
    episode = 0
    obs, _ = env.reset(seed=_episode_seed(seed, episode))
    held_steps = []
    for i, action in enumerate(rows["actions"]):
        np.testing.assert_array_equal(rows["observations"][i], obs)
        total, steps, done = 0.0, 0, False
        while steps < repeat and not done:
            obs, reward, terminated, truncated, _ = env.step(action)
            total, steps, done = total + reward, steps + 1, terminated or truncated
        held_steps.append(steps)
        assert rows["returns"][i] == np.float32(total)
        np.testing.assert_array_equal(rows["next_observations"][i], obs)
        assert rows["discounts"][i] == np.float32(0.0 if terminated else gamma)
        if done:
            episode += 1
            obs, _ = env.reset(seed=_episode_seed(seed, episode))
    env.close()
    assert held_steps == [3] * 333 + [1] + [3] * 3
    assert not np.array_equal(rows["actions"][0], rows["actions"][1])  # the actions do change between decisions


def _manual_return(network: DecoupledQNetwork, seed: int, repeat: int, worker_seed: int) -> float:
    """One evaluation episode by hand, drawing from the worker's evaluation stream as it does."""
    env = gym.make(spin_bench.env_id(TASK), bins=3)
    policy = BehaviourPolicy(network, metadata={})
    rng = np.random.default_rng([worker_seed, 2])
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action = policy.act(obs[None], 0.0, rng)[0]
        for _ in range(repeat):
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            done = terminated or truncated
            if done:
                break
    env.close()
    return total


def test_evaluation_holds_each_greedy_action_for_the_same_repeat():
    network, worker_seed, eval_seed = _network(1), 7, 1_000_000
    pool = _pool(network, worker_seed, action_repeat=4)
    try:
        (evaluated,) = pool.evaluate([eval_seed], 0.0)
    finally:
        pool.close()
    expected = _manual_return(network, eval_seed, 4, worker_seed)
    assert evaluated == expected
    assert expected != _manual_return(network, eval_seed, 1, worker_seed)  # the repeat changes this policy's return


def test_training_with_action_repeat_counts_env_steps_and_records_the_repeat(tmp_path):
    config = DecQNConfig(hidden=(32, 32), learning_starts=500, eval_interval=1000, eval_episodes=1, chunk_steps=250,
                         replay_size=10_000, action_repeat=2)  # fmt: skip
    run = trainer.run_training(TASK, 2000, out=tmp_path / "run", workers=1, config=config, log=lambda _: None)
    rows = (run / "curve.csv").read_text().splitlines()[1:]
    # Env steps and the replay ratio count env steps: learning starts once 500 env steps (250 decisions) are in
    # the replay, and the updates owed are 0.5 per env step from there, as without action repeat.
    assert [(int(r.split(",")[0]), int(r.split(",")[1])) for r in rows] == [(1000, 125), (2000, 625)]
    assert json.loads((run / "config.json").read_text())["decqn"]["action_repeat"] == 2
    assert load_behaviour_policy(run / "snapshots" / "step_000002000.pt").metadata["action_repeat"] == 2
    record = export_snapshots(run, tmp_path / "export")
    assert record["decqn"]["action_repeat"] == 2 and "--set action_repeat=2" in record["command"]
    # A decision's Q sums two env steps' rewards: the diagnostics scale the value an eval implies the same way.
    last = snapshot_q_values(run, sample_replay_observations(run, 64))[-1]
    assert last.implied_q == pytest.approx(2 * last.eval_return / 1000 / (1 - config.gamma))


def test_action_repeat_below_one_is_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"action_repeat=0 must be >= 1"):
        DecQNConfig(action_repeat=0)
    out = tmp_path / "run"
    args = ["behaviour", "train", "--task", TASK, "--set", "action_repeat=-2", "--out", str(out)]
    process = launch_cli(args, cli="spin_bench.pipeline.cli", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, stderr = process.communicate()
    assert process.returncode == 2 and len(stderr.strip().splitlines()) == 1
    assert "action_repeat=-2 must be >= 1" in stderr and not out.exists()


def test_register_checkpoints_refuses_a_snapshot_trained_with_action_repeat(tiny_catalog):
    # Dataset rollouts act once per env step; a snapshot trained to hold its actions would be rolled out unlike
    # the policy that was evaluated, so the catalog must not take it.
    torch.manual_seed(1)
    expert = tiny_catalog.parent / "checkpoints" / "expert.pt"
    save_snapshot(expert, DecoupledQNetwork(17, [3] * 6, hidden=(32, 32)), action_repeat=2)
    before = tiny_catalog.read_bytes()
    proc = launch_cli(["register-checkpoints", "cheetah-run"], cli="spin_bench.pipeline.cli",
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, out + err
    assert "action_repeat=2" in err and len(err.strip().splitlines()) == 1
    assert tiny_catalog.read_bytes() == before
