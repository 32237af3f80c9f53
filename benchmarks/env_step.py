"""Environment step throughput: raw dm_control vs shimmy's Gymnasium env vs spin-bench's env.

Usage: python benchmarks/env_step.py [--seconds 5] [--tasks dog-run cheetah-run]

All three replay the same action sequence on one core, in one process, one after another:
random bin indices for spin-bench, and their continuous values (the bin table lookup) for
raw dm_control and shimmy, so the physics does the same work and the ratio is pure overhead.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import spin_bench  # first: picks the headless renderer before dm_control loads
from spin_bench.envs import split_task

import shimmy  # noqa: E402  isort: skip

gym.register_envs(spin_bench)
gym.register_envs(shimmy)
NUM_ACTIONS = 4096


def steps_per_second(step, reset, seconds: float) -> float:
    reset()
    for _ in range(200):  # warm-up
        step()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            if step():
                reset()
        count += 100
    return count / elapsed


def raw_dm_control(task: str, actions: np.ndarray, seconds: float) -> float:
    from dm_control import suite

    env = suite.load(*split_task(task), task_kwargs={"random": 0})
    i = 0

    def step():
        nonlocal i
        i += 1
        return env.step(actions[i % NUM_ACTIONS]).last()

    def reset():
        env.task._random = np.random.RandomState(0)  # the same initial state as reset(seed=0)
        env.reset()

    return steps_per_second(step, reset, seconds)


def gym_env(env: gym.Env, actions: np.ndarray, seconds: float) -> float:
    i = 0

    def step():
        nonlocal i
        i += 1
        _, _, terminated, truncated, _ = env.step(actions[i % NUM_ACTIONS])
        return terminated or truncated

    return steps_per_second(step, lambda: env.reset(seed=0), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    parser.add_argument("--tasks", nargs="+", default=["dog-run", "cheetah-run"])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    args = parser.parse_args()
    print(f"{'task':<14}{'raw dm_control':>16}{'shimmy':>12}{'spin-bench':>12}{'spin/raw':>10}{'shimmy/raw':>12}")
    for task in args.tasks:
        ours_env = gym.make(spin_bench.env_id(task)).unwrapped
        indices = np.random.default_rng(0).integers(
            0, ours_env.action_space.nvec, size=(NUM_ACTIONS, ours_env.action_space.nvec.size)
        )
        continuous = np.stack([ours_env.indices_to_action(a) for a in indices])
        shimmy_env = gym.make(f"dm_control/{task}-v0").unwrapped
        runs: dict[str, list[float]] = {"raw": [], "shimmy": [], "ours": []}
        for _ in range(args.rounds):  # interleaved so drift in machine speed hits all three alike
            runs["raw"].append(raw_dm_control(task, continuous, args.seconds))
            runs["shimmy"].append(gym_env(shimmy_env, continuous.astype(np.float32), args.seconds))
            runs["ours"].append(gym_env(ours_env, indices, args.seconds))
        raw, shim, ours = (float(np.median(runs[k])) for k in ("raw", "shimmy", "ours"))
        print(f"{task:<14}{raw:>16,.0f}{shim:>12,.0f}{ours:>12,.0f}{ours / raw:>10.3f}{shim / raw:>12.3f}")


if __name__ == "__main__":
    main()
