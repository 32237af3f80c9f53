"""How often the behaviour network's greedy decisions tie within float32 rounding, and how close they come in float64.

Usage: python benchmarks/rounding_ties.py spin/cheetah-run/medium-expert-v0 [more ids] [--episodes 10]

For each dataset, rolls out the first N episodes of every policy segment of its recipe as a build does (same reset
seeds, epsilon, random streams and env) and, at every greedy decision of every action dimension, measures:

- float32: whether another CPU's float32 rounding could pick the other bin (the rule of ``check-prefix``,
  ``spin_bench.pipeline.fingerprint``). Left to each CPU's numpy, an episode with such a decision can differ on
  another CPU from that step on; builds decide them with the entry's recording kernels instead
  (``benchmarks/recording_kernels.py`` measures what that costs).
- float64: the margin between the two best bins' float64 utilities over their magnitude, the smallest seen, and
  how many float64 epsilons (2.2e-16) it spans: how far a float64 forward pass stays from any tie.

The last column scales the share of episodes with a float32 tie to the whole dataset: about how many of its
episodes another CPU can change. Uniform-random segments make no greedy decisions and are skipped.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import spin_bench  # noqa: F401  (registers the env ids)
from spin_bench.datasets.catalog import RANDOM_POLICY, load_catalog
from spin_bench.datasets.rollout import EpisodeJob, _Worker, rollout_config, rollout_episode
from spin_bench.pipeline.fingerprint import _TieWatch


class _MarginWatch(_TieWatch):
    """``_TieWatch`` that also keeps the smallest relative float64 margin between the two best bins."""

    def __init__(self, policy):
        super().__init__(policy)
        self.decisions = 0
        self.min_relative_margin64 = np.inf

    def act(self, observations, epsilon, rng):
        action = super().act(observations, epsilon, rng)
        top = np.sort(self.last_exact, axis=-1)[:, ::-1][:, :2]
        finite = np.isfinite(top[:, 1])
        margin = (top[finite, 0] - top[finite, 1]) / np.maximum(np.abs(top[finite]).max(axis=-1), 1e-300)
        if margin.size:
            self.min_relative_margin64 = min(self.min_relative_margin64, float(margin.min()))
        self.decisions += int(finite.sum())
        return action


def measure(dataset_id: str, episodes: int) -> dict:
    entry, ds = load_catalog().lookup(dataset_id)
    config = rollout_config(entry, ds)
    worker = _Worker(config)
    decisions = ties = tied_episodes = rolled = 0
    min_margin = np.inf
    try:
        for segment in ds.segments:
            if segment.policy == RANDOM_POLICY:
                continue
            for j in range(min(episodes, segment.episodes)):
                watch = _MarginWatch(worker.policies[segment.policy])
                rollout_episode(
                    worker.env,
                    watch,
                    EpisodeJob(segment.policy, segment.epsilon, segment.seed, j),
                    config.max_episode_steps,
                )
                decisions += watch.decisions
                ties += len(watch.ties)
                tied_episodes += bool(watch.ties)
                rolled += 1
                min_margin = min(min_margin, watch.min_relative_margin64)
    finally:
        worker.close()
    greedy_episodes = sum(s.episodes for s in ds.segments if s.policy != RANDOM_POLICY)
    return {
        "episodes": rolled,
        "decisions": decisions,
        "ties_per_million": 1e6 * ties / max(decisions, 1),
        "tied_share": tied_episodes / max(rolled, 1),
        "min_margin64": min_margin,
        "dataset_episodes_changed": greedy_episodes * tied_episodes / max(rolled, 1),
        "greedy_episodes": greedy_episodes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_ids", nargs="+")
    parser.add_argument("--episodes", type=int, default=10, help="Episodes per policy segment.")
    args = parser.parse_args()
    print(
        f"{'dataset':42} {'episodes':>8} {'decisions':>10} {'f32 ties/1M':>11} {'episodes w/ tie':>15} "
        f"{'min f64 margin':>14} {'= f64 eps x':>11} {'dataset episodes changeable':>28}"
    )
    for dataset_id in args.dataset_ids:
        start = time.perf_counter()
        m = measure(dataset_id, args.episodes)
        epsilons = m["min_margin64"] / np.finfo(np.float64).eps
        print(
            f"{dataset_id:42} {m['episodes']:>8} {m['decisions']:>10,} {m['ties_per_million']:>11.1f} "
            f"{m['tied_share']:>15.0%} {m['min_margin64']:>14.1e} {epsilons:>11.1e} "
            f"{m['dataset_episodes_changed']:>16.0f} of {m['greedy_episodes']:<6} ({time.perf_counter() - start:.0f} s)"
        )


if __name__ == "__main__":
    main()
