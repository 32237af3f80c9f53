"""Batched evaluation: one policy call per step across episodes, episode k seeded with seed + 100 + k."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import spin_bench
from spin_bench.agents import evaluate
from spin_bench.registry import make_agent

ENV = spin_bench.env_id("cheetah-run")


class ScriptedAgent:
    """Acts from the observation alone (so each episode's return is fixed by its reset seed); logs calls."""

    device = torch.device("cpu")

    def __init__(self):
        self.calls = []

    def act(self, obs, deterministic=False, generator=None):
        self.calls.append((obs.shape[0], deterministic, generator))
        return (obs[:, 2:8] > 0).astype(np.int64) * 2


def run_alone(seed: int, steps: int) -> float:
    env = gym.make(ENV, max_episode_steps=steps)
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step((obs[2:8] > 0).astype(np.int64) * 2)
        total += reward
        done = terminated or truncated
    return total


def test_episodes_step_together_with_the_paper_seeds():
    agent = ScriptedAgent()
    returns = evaluate(agent, ENV, episodes=3, seed=7, max_episode_steps=40)
    assert len(agent.calls) == 40  # one batched call per step, not one per episode
    assert all(batch == 3 and not deterministic for batch, deterministic, _ in agent.calls)
    # one generator per episode, the same objects at every step
    assert all(len(g) == 3 and all(isinstance(x, torch.Generator) for x in g) for _, _, g in agent.calls)
    assert len({tuple(map(id, g)) for _, _, g in agent.calls}) == 1
    expected = [run_alone(7 + 100 + k, 40) for k in range(3)]
    np.testing.assert_allclose(returns, expected)
    assert len(set(returns.tolist())) > 1  # the seeds differ per episode


def test_greedy_option_reaches_the_policy():
    agent = ScriptedAgent()
    evaluate(agent, ENV, episodes=2, seed=0, deterministic=True, max_episode_steps=5)
    assert all(deterministic for _, deterministic, _ in agent.calls)


@pytest.mark.parametrize("name", ["f-iql", "ar-iql", "saint"])
def test_an_episode_return_does_not_depend_on_how_many_episodes_run(name):
    # Episode k samples from its own generator: the first 2 episodes of a 4-episode evaluation are a 2-episode
    # evaluation (with one shared generator, episode 0's draws would interleave with the others').
    env = gym.make(ENV)
    obs_dim, nvec = env.observation_space.shape[0], env.action_space.nvec
    agent = make_agent(name, obs_dim, nvec, preset="quick", seed=1)
    kwargs = dict(seed=5, max_episode_steps=25)
    short = evaluate(agent, ENV, episodes=2, **kwargs)
    long = evaluate(agent, ENV, episodes=4, **kwargs)
    np.testing.assert_array_equal(short, long[:2])
    assert len(set(long.tolist())) > 1
