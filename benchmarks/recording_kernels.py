"""What deciding near-ties with the recording kernels costs a rollout, and how often it changes a decision.

Usage: python benchmarks/recording_kernels.py spin/quadruped-walk/medium-expert-v0 [more ids] [--episodes 5]

For each behaviour policy of a dataset's recipe, rolls out the first N episodes of its first segment as a build
does (same reset seeds, epsilon and random streams), twice: with the catalog entry's recording kernels
(``spin_bench.datasets.kernels``) and with this CPU's numpy alone. Prints the steps per second of both and their
ratio, then (in a third, untimed pass) the share of greedy decisions the near-tie gate recomputed exactly and how
many came out differently from this CPU's own argmax: the decisions a build here would otherwise take the other way.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

import spin_bench  # noqa: F401  (registers the env ids)
from spin_bench.datasets.catalog import RANDOM_POLICY, load_catalog
from spin_bench.datasets.kernels import recording_norm
from spin_bench.datasets.rollout import EpisodeJob, _Worker, rollout_config, rollout_episode
from spin_bench.datasets.snapshot import epsilon_greedy


class _CountingPolicy:
    """Acts as the rollout policy, counting gated rows and the decisions that differ from numpy's own argmax."""

    def __init__(self, policy):
        self.policy, self.nvec, self.greedy = policy, policy.nvec, policy.greedy
        self.decisions = self.recomputed = self.changed = 0

    def act(self, observations: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        h, u = self.greedy._forward(observations, None)
        near = self.greedy._near_ties(h, u)
        chosen = self.greedy(observations)
        self.decisions += u.shape[0] * u.shape[1]
        self.recomputed += int(near.sum()) * u.shape[1]
        self.changed += int((chosen != u.argmax(-1)).sum())
        return epsilon_greedy(chosen, self.nvec, epsilon, rng)


def _rollouts(worker: _Worker, jobs: list[EpisodeJob], policy) -> tuple[int, float]:
    steps, start = 0, time.perf_counter()
    for job in jobs:
        with recording_norm(worker.config.kernels):
            steps += len(rollout_episode(worker.env, policy, job, worker.config.max_episode_steps))
    return steps, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_ids", nargs="+")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per policy (default 5)")
    args = parser.parse_args()
    catalog = load_catalog()
    print(f"{'dataset / policy':<48} {'kernels':>18} {'steps/s':>8} {'numpy':>8} {'ratio':>6} "
          f"{'recomputed':>11} {'changed':>8}")  # fmt: skip
    for dataset_id in args.dataset_ids:
        entry, ds = catalog.lookup(dataset_id)
        if entry.recording_kernels is None:
            print(f"{dataset_id}: its entry names no recording kernels (builds use this CPU's numpy)")
            continue
        config = rollout_config(entry, ds)
        with_kernels, plain = _Worker(config), _Worker(replace(config, kernels=None))
        seen = set()
        for segment in ds.segments:
            if segment.policy == RANDOM_POLICY or segment.policy in seen:
                continue
            seen.add(segment.policy)
            jobs = [EpisodeJob(segment.policy, segment.epsilon, segment.seed, j) for j in range(args.episodes)]
            steps_k, seconds_k = _rollouts(with_kernels, jobs, with_kernels.policies[segment.policy])
            steps_n, seconds_n = _rollouts(plain, jobs, plain.policies[segment.policy])
            counting = _CountingPolicy(with_kernels.policies[segment.policy])
            _rollouts(with_kernels, jobs, counting)  # untimed: counting evaluates the network twice
            rate_k, rate_n = steps_k / seconds_k, steps_n / seconds_n
            print(
                f"{dataset_id + ' / ' + segment.policy:<48} {entry.recording_kernels:>18} {rate_k:>8,.0f} "
                f"{rate_n:>8,.0f} {rate_k / rate_n:>6.2f} {counting.recomputed / counting.decisions:>10.2%} "
                f"{counting.changed:>8}"
            )
        with_kernels.close()
        plain.close()


if __name__ == "__main__":
    main()
