"""Flat-view load time of a 1M-transition cheetah-run dataset (goal: <= 2 s).

Usage: python benchmarks/dataset_load.py [--task cheetah-run] [--episodes 1000] [--repeats 3]

Writes a synthetic dataset of the real shapes and dtypes (float32 observations, int8 actions, float32 rewards,
1000-step episodes; random values: load time does not depend on them) through the same writer as
``spin-bench datasets build`` into a temporary Minari dir, then times:
  flat view    spin-bench's ``read_transitions`` (what ``load_dataset(...).transitions`` does)
  minari iter  stock ``MinariDataset.iterate_episodes()`` + numpy concatenation, for comparison
  digest       the sha256 check that downloads and ``verify`` run
The file is in the page cache (just written), as on a second load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import spin_bench
from spin_bench.datasets.digest import dataset_digest
from spin_bench.datasets.minari_io import minari_env, read_transitions, write_episodes
from spin_bench.datasets.rollout import Episode


def synthetic_episodes(obs_dim: int, nvec: np.ndarray, episodes: int, steps: int = 1000):
    rng = np.random.default_rng(0)
    truncations = np.zeros(steps, dtype=bool)
    truncations[-1] = True
    for k in range(episodes):
        yield Episode(
            seed=k,
            observations=rng.standard_normal((steps + 1, obs_dim), dtype=np.float32),
            actions=rng.integers(0, nvec, size=(steps, len(nvec))).astype(np.int8),
            rewards=rng.random(steps, dtype=np.float32),
            terminations=np.zeros(steps, dtype=bool),
            truncations=truncations,
            metadata={"policy": "expert", "epsilon": 0.05, "segment_seed": 0, "segment_index": k},
        )


def minari_iterate(dataset_id: str):
    import minari

    dataset = minari.load_dataset(dataset_id)
    obs, next_obs, actions, rewards = [], [], [], []
    for episode in dataset.iterate_episodes():
        obs.append(episode.observations[:-1])
        next_obs.append(episode.observations[1:])
        actions.append(episode.actions)
        rewards.append(episode.rewards)
    return np.concatenate(obs), np.concatenate(next_obs), np.concatenate(actions), np.concatenate(rewards)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cheetah-run")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import gymnasium as gym

    env = gym.make(spin_bench.env_id(args.task))
    dataset_id = f"bench/{args.task}/synthetic-v0"
    with tempfile.TemporaryDirectory() as tmp, minari_env(datasets_path=Path(tmp)):
        start = time.perf_counter()
        write_episodes(
            dataset_id,
            synthetic_episodes(env.observation_space.shape[0], env.action_space.nvec, args.episodes),
            env_spec=env.spec,
            observation_space=env.observation_space,
            action_space=env.action_space,
            metadata={"author": "benchmark", "description": "synthetic", "algorithm_name": "none"},
            extra_metadata={},
        )
        write_s = time.perf_counter() - start
        data_dir = Path(tmp) / dataset_id / "data"
        size_mb = (data_dir / "main_data.hdf5").stat().st_size / 1e6
        transitions = read_transitions(data_dir)
        flat_s = best_of(lambda: read_transitions(data_dir), args.repeats)
        minari_s = best_of(lambda: minari_iterate(dataset_id), args.repeats)
        digest_s = best_of(lambda: dataset_digest(data_dir), args.repeats)
    print(f"{args.task}: {len(transitions):,} transitions, obs dim {transitions.obs_dim}, file {size_mb:,.0f} MB")
    print(f"  write (create_dataset_from_buffers + appends) {write_s:6.2f} s")
    print(f"  flat view (read_transitions)                  {flat_s:6.2f} s  (goal <= 2 s)")
    print(f"  stock minari iterate_episodes + concatenate   {minari_s:6.2f} s")
    print(f"  sha256 digest                                 {digest_s:6.2f} s")


if __name__ == "__main__":
    main()
