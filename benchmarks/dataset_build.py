"""Dataset build throughput vs raw simulation throughput, both on every core.

Usage: python benchmarks/dataset_build.py [--tasks dog-trot cheetah-run] [--episodes-per-core 6] [--workers N]

raw: one process per core steps the env (``gymnasium.make`` of the catalog env) with uniform random actions for
whole episodes; throughput = all steps / the slowest process's stepping time (process start-up excluded).
build: ``build_dataset`` of an expert-quality recipe (a DecQN 256-256 network, randomly initialised: the same
compute as a trained one; per-dimension epsilon 0.05) into a temporary Minari dir, end to end: process start-up,
rollouts, hdf5 writing, digest and install; "steady" is the rate between the first round of episodes (every
worker started) and the last episode (a 1M-step build runs for minutes, so start-up and the final digest are
amortised). Nothing touches your data dir or catalog.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

import spin_bench
from spin_bench.datasets import build as build_module
from spin_bench.datasets.rollout import available_cores


def _raw_worker(args) -> tuple[int, float]:
    task, episodes, seed = args
    import gymnasium as gym

    import spin_bench  # noqa: F401

    env = gym.make(spin_bench.env_id(task))
    nvec = env.action_space.nvec
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, nvec, size=(1000, len(nvec)))
    steps, start = 0, time.perf_counter()
    for k in range(episodes):
        env.reset(seed=seed * 1000 + k)
        for t in range(1000):
            _, _, terminated, truncated, _ = env.step(actions[t])
            steps += 1
            if terminated or truncated:
                break
    return steps, time.perf_counter() - start


def raw_throughput(task: str, episodes_per_core: int, cores: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(cores) as pool:
        results = pool.map(_raw_worker, [(task, episodes_per_core, i) for i in range(cores)])
    return sum(s for s, _ in results) / max(t for _, t in results)


def build_throughput(task: str, episodes: int, workers: int) -> tuple[float, float, float]:
    import torch

    from spin_bench.behaviour.network import DecoupledQNetwork
    from spin_bench.behaviour.policy import save_snapshot
    from spin_bench.datasets.build import build_dataset
    from spin_bench.datasets.catalog import CATALOG_FORMAT, Catalog, entry_json
    from spin_bench.datasets.minari_io import minari_env

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        entry = entry_json(
            task,
            3,
            env_id=spin_bench.env_id(task),
            env_kwargs={},
            max_episode_steps=1000,
            checkpoints={"medium": "medium.pt", "expert": "expert.pt"},
            paper_reference=None,
            sizes={"random": 1000, "medium": 1000, "expert": 1000 * episodes, "random-medium-expert": 3000},
            seeds={
                "random": 1,
                "medium": 2,
                "expert": 3_000_000,
                "random-medium-expert/random": 4,
                "random-medium-expert/medium": 5,
                "random-medium-expert/expert": 6,
            },
            epsilon=0.05,
            reference_seeds=(7, 8),
        )
        probe = Catalog({"format": CATALOG_FORMAT, "remotes": [], "entries": [entry]}, tmp / "catalog.json").task_entry(
            task
        )
        e = probe.make_env()
        obs_dim, nvec = e.observation_space.shape[0], list(e.action_space.nvec)
        e.close()
        torch.manual_seed(0)
        for name in ("medium", "expert"):
            entry["checkpoints"][name]["sha256"] = save_snapshot(tmp / f"{name}.pt", DecoupledQNetwork(obs_dim, nvec))
        entry["reference_scores"]["random"]["value"] = 0.0
        entry["reference_scores"]["expert"]["value"] = 1000.0
        catalog = Catalog({"format": CATALOG_FORMAT, "remotes": [], "entries": [entry]}, tmp / "catalog.json")
        catalog.save()
        arrivals: list[float] = []

        @contextlib.contextmanager
        def timed_progress(description, total, enabled=True):
            yield lambda episode: arrivals.append(time.perf_counter())

        with (
            minari_env(datasets_path=tmp / "minari"),
            mock.patch.object(build_module, "episode_progress", timed_progress),
        ):
            start = time.perf_counter()
            result = build_dataset(f"spin/{task}/expert-v0", workers=workers, catalog=catalog, progress=False)
            seconds = time.perf_counter() - start
    steps = result.stats["transitions"]
    # Steady state: once every worker has delivered its first episode, until the last episode arrives.
    first_round = arrivals[min(workers, len(arrivals)) - 1]
    steady = 1000 * (len(arrivals) - min(workers, len(arrivals))) / max(arrivals[-1] - first_round, 1e-9)
    return steps / seconds, steady, first_round - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["dog-trot", "cheetah-run"])
    parser.add_argument("--episodes-per-core", type=int, default=6)
    parser.add_argument("--workers", type=int, default=available_cores())
    args = parser.parse_args()
    cores = args.workers
    print(f"{cores} worker processes (cores available: {available_cores()}, load average {os.getloadavg()[0]:.2f})")
    print(f"{'task':<14} {'raw steps/s':>12} {'build steps/s':>14} {'steady':>10} {'1st round s':>12}  build/raw")
    for task in args.tasks:
        raw = raw_throughput(task, args.episodes_per_core, cores)
        build, steady, startup = build_throughput(task, args.episodes_per_core * cores, cores)
        print(
            f"{task:<14} {raw:>12,.0f} {build:>14,.0f} {steady:>10,.0f} {startup:>12.1f}  "
            f"{100 * build / raw:>6.0f}% / {100 * steady / raw:.0f}% steady"
        )


if __name__ == "__main__":
    main()
