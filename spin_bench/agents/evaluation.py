"""Evaluation in the environment: N episodes stepped together, one batched policy call per step."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from spin_bench.agents.base import Agent


def evaluate(
    agent: Agent,
    env_id: str,
    episodes: int = 10,
    seed: int = 0,
    deterministic: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
) -> np.ndarray:
    """Undiscounted returns ``(episodes,)`` of ``agent`` on ``env_id`` (e.g. ``spin_bench.env_id("dog-run")``).

    Episode k is reset with ``seed + 100 + k`` (the paper's protocol). Actions are sampled from the policy
    by default, episode k's from its own generator seeded with its reset seed, so an episode's return depends
    on the agent, ``seed`` and k alone: evaluations repeat exactly, the first 10 of 50 episodes are a
    10-episode evaluation, and the agent's own RNG is left untouched. ``deterministic=True`` acts greedily.
    ``max_episode_steps`` shortens episodes (tests, smoke runs).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    make_kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        make_kwargs["max_episode_steps"] = max_episode_steps
    envs = [gym.make(env_id, **make_kwargs) for _ in range(episodes)]
    generators = [torch.Generator(device=agent.device).manual_seed(int(seed) + 100 + k) for k in range(episodes)]
    try:
        obs = np.stack([env.reset(seed=seed + 100 + k)[0] for k, env in enumerate(envs)])
        returns = np.zeros(episodes, dtype=np.float64)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            live = np.flatnonzero(running)
            actions = agent.act(obs[live], deterministic=deterministic, generator=[generators[k] for k in live])
            for k, action in zip(live, actions, strict=True):
                obs[k], reward, terminated, truncated, _ = envs[k].step(action)
                returns[k] += reward
                running[k] = not (terminated or truncated)
        return returns
    finally:
        for env in envs:
            env.close()
