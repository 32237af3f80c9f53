"""The README's main job until the benchmark runner lands: one random-policy episode.

Usage: python -m spin_bench.demo [task]
"""

from __future__ import annotations

import sys
import time

import gymnasium as gym
import numpy as np

import spin_bench


def main(task: str = "cheetah-run") -> None:
    env = gym.make(spin_bench.env_id(task))
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    episode_return, steps, start = 0.0, 0, time.perf_counter()
    done = False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        episode_return += reward
        steps += 1
        done = terminated or truncated
    elapsed = time.perf_counter() - start
    joint = float(np.prod(env.action_space.nvec.astype(float)))
    print(
        f"{spin_bench.env_id(task)}: obs {obs.shape}, {env.action_space.nvec.size} action dims, "
        f"{joint:.3g} joint actions; random-policy return {episode_return:.2f} over {steps} steps "
        f"({steps / elapsed:,.0f} steps/s)"
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
