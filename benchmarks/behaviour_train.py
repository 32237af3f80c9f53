"""Where the behaviour trainer's time goes: the DecQN learner against the simulator, per benchmark task shape.

Usage: python benchmarks/behaviour_train.py [--tasks cheetah-run quadruped-walk humanoid-stand dog-trot]
       [--updates 300] [--sim-steps 3000] [--threads 1] [--device cpu] [--set layer_norm=all ...]

learner: ``DecQNLearner.update`` (double-Q n-step update, Adam, Polyak) at the default config (256-256, batch 256)
on random batches of the task's shapes, after a warm-up; torch threads as given (the trainer gives the learner the
cores its workers leave: 1 of 2 here).
sim: one env (``gymnasium.make`` of ``SPIN/<task>-disc-v0``) stepped with uniform random actions on one core, the
raw simulation a worker does between policy calls.
The trainer overlaps the two (workers collect while the learner updates), so at ``updates_per_step`` u its env steps/s
per worker are at most min(sim, learner / u): the "bound" column says which one limits it.
With ``--set key=value`` the learner runs with those hyperparameters, and the default learner is measured alongside,
interleaved, as the reference ("vs default": the speed ratio).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import spin_bench
from spin_bench.behaviour.config import DecQNConfig, apply_overrides
from spin_bench.behaviour.trainer import DecQNLearner


def learner_rate(config: DecQNConfig, obs_dim: int, nvec: list[int], updates: int, device: torch.device) -> float:
    """Updates/s of a DecQN learner on random batches of this shape."""
    learner = DecQNLearner(obs_dim, nvec, config, device)
    rng = np.random.default_rng(0)
    b, n = config.batch_size, len(nvec)
    batch = {
        "observations": rng.standard_normal((b, obs_dim), dtype=np.float32),
        "actions": rng.integers(0, min(nvec), (b, n)).astype(np.int8),
        "returns": rng.standard_normal(b, dtype=np.float32),
        "next_observations": rng.standard_normal((b, obs_dim), dtype=np.float32),
        "discounts": np.full(b, config.gamma**config.n_step, dtype=np.float32),
    }
    for _ in range(max(10, updates // 10)):  # warm-up: allocator, kernels
        learner.update(batch)
    start = time.perf_counter()
    for _ in range(updates):
        learner.update(batch)  # .item() inside syncs, so CUDA timings are honest too
    return updates / (time.perf_counter() - start)


def sim_rate(task: str, steps: int) -> tuple[float, int, int]:
    """(random-action steps/s on one core, obs dim, action dims)."""
    import gymnasium as gym

    env = gym.make(spin_bench.env_id(task))
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        _, _, _, truncated, _ = env.step(action)
        if truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    shape = (int(env.observation_space.shape[0]), int(env.action_space.nvec.size))
    env.close()
    return rate, *shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["cheetah-run", "quadruped-walk", "humanoid-stand", "dog-trot"])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--sim-steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value, repeatable")
    args = parser.parse_args()
    config = apply_overrides(DecQNConfig(), args.overrides)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ratio = config.updates_per_step
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {device}, updates_per_step {ratio}")
    if args.overrides:
        print("learner with " + ", ".join(args.overrides))
    reference = f"{'vs default':>12}" if args.overrides else ""
    header = f"{'task':<16}{'obs':>5}{'N':>4}{'learner upd/s':>15}{reference}{'sim steps/s':>13}{'cap steps/s':>13}"
    header += "  bound"
    print(header)
    for task in args.tasks:
        sim, obs_dim, n = sim_rate(task, args.sim_steps)
        if args.overrides:
            # Interleaved halves, so a load change on the machine hits both learners alike.
            half = max(1, args.updates // 2)
            order = (config, DecQNConfig(), config, DecQNConfig())
            rates = [learner_rate(c, obs_dim, [3] * n, half, device) for c in order]
            updates, default = (rates[0] + rates[2]) / 2, (rates[1] + rates[3]) / 2
            versus = f"{updates / default:>11.2f}x"
        else:
            updates, versus = learner_rate(config, obs_dim, [3] * n, args.updates, device), ""
        cap = min(sim, updates / ratio)
        bound = f"learner ({sim / (updates / ratio):.1f}x slower than sim)" if updates / ratio < sim else "sim"
        print(f"{task:<16}{obs_dim:>5}{n:>4}{updates:>15,.0f}{versus}{sim:>13,.0f}{cap:>13,.0f}  {bound}")


if __name__ == "__main__":
    main()
