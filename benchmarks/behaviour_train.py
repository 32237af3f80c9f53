"""Where the behaviour trainer's time goes: the DecQN learner against the simulator, per benchmark task shape.

Usage: python benchmarks/behaviour_train.py [--tasks cheetah-run quadruped-walk humanoid-stand dog-trot]
       [--updates 300] [--sim-steps 3000] [--threads 1] [--device cpu] [--bins 3] [--replay-rows 100000]
       [--base key=value ...]
       [--set matmul_precision=medium ...]

learner: the trainer's learning step (a batch drawn from a replay of ``--replay-rows`` random transitions of the
task's shapes, then ``DecQNLearner.update``'s double-Q n-step update, Adam, Polyak; with ``priority_exponent`` > 0 the
prioritized draw and the priority update too) at the default config (256-256, batch 256; ``--base`` and ``--set``
change it), after a warm-up; torch threads as given (the trainer gives the learner the cores its workers leave: 1
of 2 here).
sim: one env (``gymnasium.make`` of ``SPIN/<task>-disc-v0``) stepped with uniform random actions on one core, the
raw simulation a worker does between policy calls.
The trainer overlaps the two (workers collect while the learner updates), so at ``updates_per_step`` u its env steps/s
per worker are at most min(sim, learner / u): the "bound" column says which one limits it.
With ``--set key=value`` the learner runs with those hyperparameters, and the reference learner (the default config,
or ``--base key=value`` applied to it; ``--base`` also applies to the measured learner) is measured alongside,
interleaved ("vs ref": the speed ratio). ``--bins`` sets the bins per action dimension (the bins study: 10, 30).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

import spin_bench
from spin_bench.pipeline.behaviour.config import DecQNConfig, apply_overrides
from spin_bench.pipeline.behaviour.replay import NStepReplay
from spin_bench.pipeline.behaviour.trainer import DecQNLearner, learn_step, learner_matmul_precision, make_replay


def learner_rate(
    config: DecQNConfig, obs_dim: int, nvec: list[int], updates: int, device: torch.device, replay_rows: int
) -> float:
    """Learning steps/s of a DecQN learner drawing from a replay of random transitions of this shape, at the
    config's matmul precision."""
    learner = DecQNLearner(obs_dim, nvec, config, device)
    replay = _random_replay(config, obs_dim, nvec, replay_rows)
    rng = np.random.default_rng(0)
    with learner_matmul_precision(config):  # as run_training sets it for its learner
        for _ in range(max(10, updates // 10)):  # warm-up: allocator, kernels
            learn_step(learner, replay, rng, config.learning_rate)
        start = time.perf_counter()
        for _ in range(updates):
            learn_step(learner, replay, rng, config.learning_rate)  # .item() inside syncs: CUDA timings are honest
        return updates / (time.perf_counter() - start)


def _random_replay(config: DecQNConfig, obs_dim: int, nvec: list[int], rows: int) -> NStepReplay:
    replay = make_replay(replace(config, replay_size=rows), obs_dim, len(nvec))
    rng = np.random.default_rng(1)
    for start in range(0, rows, 10_000):
        count = min(10_000, rows - start)
        replay.add(
            {
                "observations": rng.standard_normal((count, obs_dim), dtype=np.float32),
                "actions": rng.integers(0, min(nvec), (count, len(nvec))).astype(np.int8),
                "returns": rng.standard_normal(count, dtype=np.float32),
                "next_observations": rng.standard_normal((count, obs_dim), dtype=np.float32),
                "discounts": np.full(count, config.gamma**config.n_step, dtype=np.float32),
            }
        )
    return replay


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
    parser.add_argument("--bins", type=int, default=3)
    parser.add_argument("--replay-rows", type=int, default=100_000, help="random transitions the learner draws from")
    parser.add_argument("--base", action="append", default=[], help="key=value for both learners, repeatable")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key=value, repeatable")
    args = parser.parse_args()
    base = apply_overrides(DecQNConfig(), args.base)
    config = apply_overrides(base, args.overrides)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ratio = config.updates_per_step
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {device}, updates_per_step {ratio}")
    print(f"{args.bins} bins per action dimension" + "".join(f", {item}" for item in args.base))
    if args.overrides:
        print("learner with " + ", ".join(args.overrides) + " against the same learner without")
    reference = f"{'vs ref':>12}" if args.overrides else ""
    header = f"{'task':<16}{'obs':>5}{'N':>4}{'learner upd/s':>15}{reference}{'sim steps/s':>13}{'cap steps/s':>13}"
    header += "  bound"
    print(header)
    for task in args.tasks:
        sim, obs_dim, n = sim_rate(task, args.sim_steps)
        if args.overrides:
            # Interleaved halves, so a load change on the machine hits both learners alike.
            half = max(1, args.updates // 2)
            order = (config, base, config, base)
            rates = [learner_rate(c, obs_dim, [args.bins] * n, half, device, args.replay_rows) for c in order]
            updates, reference_rate = (rates[0] + rates[2]) / 2, (rates[1] + rates[3]) / 2
            versus = f"{updates / reference_rate:>11.2f}x"
        else:
            updates = learner_rate(config, obs_dim, [args.bins] * n, args.updates, device, args.replay_rows)
            versus = ""
        cap = min(sim, updates / ratio)
        bound = f"learner ({sim / (updates / ratio):.1f}x slower than sim)" if updates / ratio < sim else "sim"
        print(f"{task:<16}{obs_dim:>5}{n:>4}{updates:>15,.0f}{versus}{sim:>13,.0f}{cap:>13,.0f}  {bound}")


if __name__ == "__main__":
    main()
