"""Dataset build throughput vs raw simulation throughput, both on every core.

Usage: python benchmarks/dataset_build.py [--tasks dog-trot cheetah-run] [--episodes-per-core 6] [--workers N]

build: ``build_dataset`` of an expert-quality recipe (a DecQN 256-256 network, randomly initialised: the same
compute as a trained one; per-dimension epsilon 0.05) into a temporary Minari dir, end to end: process start-up,
rollouts, hdf5 writing, digest and install. "steady" is the rate from the first round of episodes (every worker
started) to the last episode; a 1M-step build runs for minutes, so start-up and the final digest are amortised.
raw: one process per core replays the built episodes' stored actions from their stored seeds in the same env
(``gymnasium.make`` of the catalog env): the same physics work without policy, storage or process plumbing.
(MuJoCo's cost per step depends on the actions, so random actions would not be a fair baseline.)

Wall-clock rates depend on whatever else runs on the machine, and build and raw run one after the other. The CPU
columns do not: CPU seconds per step of the build (every process, worker start-up excluded) and of the raw
replay; their ratio estimates build/raw on an otherwise idle machine. Nothing touches your data dir or catalog.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path
from unittest import mock

import spin_bench
from spin_bench.datasets import build as build_module
from spin_bench.datasets import rollout
from spin_bench.datasets.minari_io import iter_episode_arrays


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _raw_worker(args) -> tuple[int, float, float]:
    task, episodes = args
    import gymnasium as gym

    import spin_bench  # noqa: F401

    env = gym.make(spin_bench.env_id(task))
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    for seed, actions in episodes:
        env.reset(seed=seed)
        for action in actions:
            env.step(action)
        steps += len(actions)
    return steps, time.perf_counter() - start, time.process_time() - cpu


def raw_throughput(task: str, episodes: list, cores: int) -> tuple[float, float]:
    """(steps/s on ``cores`` processes, CPU seconds per step)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(cores) as pool:
        results = pool.map(_raw_worker, [(task, episodes[i::cores]) for i in range(cores)])
    steps = sum(r[0] for r in results)
    return steps / max(r[1] for r in results), sum(r[2] for r in results) / steps


def startup_cpu(config: rollout.RolloutConfig, workers: int) -> float:
    """CPU seconds the build's worker processes spend starting (imports, env, checkpoint)."""
    before = _cpu_children()
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(workers, initializer=rollout._init_process, initargs=(config,))
    pool.map(abs, range(workers))
    pool.close()
    pool.join()
    return _cpu_children() - before


def build_throughput(task: str, episodes: int, workers: int) -> dict:
    import torch

    from spin_bench.datasets.build import build_dataset
    from spin_bench.datasets.catalog import CATALOG_FORMAT, Catalog
    from spin_bench.datasets.minari_io import minari_env
    from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
    from spin_bench.pipeline.behaviour.policy import save_snapshot
    from spin_bench.pipeline.catalog_edit import EditableCatalog, entry_json

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
        env = Catalog({"format": CATALOG_FORMAT, "entries": [entry]}, tmp / "catalog.json").task_entry(task).make_env()
        obs_dim, nvec = env.observation_space.shape[0], list(env.action_space.nvec)
        env.close()
        torch.manual_seed(0)
        for name in ("medium", "expert"):
            entry["checkpoints"][name]["sha256"] = save_snapshot(tmp / f"{name}.pt", DecoupledQNetwork(obs_dim, nvec))
        entry["reference_scores"]["random"]["value"] = 0.0
        entry["reference_scores"]["expert"]["value"] = 1000.0
        catalog = EditableCatalog({"format": CATALOG_FORMAT, "remotes": [], "entries": [entry]}, tmp / "catalog.json")
        catalog.save()
        config = rollout.RolloutConfig(spin_bench.env_id(task), {}, {"expert": str(tmp / "expert.pt")}, 1000)
        start_cpu = startup_cpu(config, workers) if workers > 1 else 0.0
        arrivals: list[float] = []

        @contextlib.contextmanager
        def timed_progress(description, total, enabled=True):
            yield lambda episode: arrivals.append(time.perf_counter())

        with minari_env(datasets_path=tmp / "minari"):
            with mock.patch.object(build_module, "episode_progress", timed_progress):
                cpu_main, cpu_children = time.process_time(), _cpu_children()
                start = time.perf_counter()
                result = build_dataset(f"spin/{task}/expert-v0", workers=workers, catalog=catalog, progress=False)
                seconds = time.perf_counter() - start
                cpu = time.process_time() - cpu_main + _cpu_children() - cpu_children
            replay = [(seed, arrays["actions"]) for seed, _, arrays in iter_episode_arrays(result.path / "data")]
    steps = result.stats["transitions"]
    done_first_round = min(workers, len(arrivals))
    first_round = arrivals[done_first_round - 1]
    return {
        "wall": steps / seconds,
        "steady": 1000 * (len(arrivals) - done_first_round) / max(arrivals[-1] - first_round, 1e-9),
        "first_round_s": first_round - start,
        "cpu_per_step": (cpu - start_cpu) / steps,
        "replay": replay,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["dog-trot", "cheetah-run"])
    parser.add_argument("--episodes-per-core", type=int, default=6)
    parser.add_argument("--workers", type=int, default=rollout.available_cores())
    args = parser.parse_args()
    cores = args.workers
    print(f"{cores} worker processes, {rollout.available_cores()} cores, load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'task':<12} {'raw/s':>8} {'build/s':>8} {'steady/s':>9} {'1st round':>9} | "
        f"{'raw us/step':>11} {'build us/step':>13} {'raw/build (CPU)':>15}"
    )
    for task in args.tasks:
        b = build_throughput(task, args.episodes_per_core * cores, cores)
        raw, raw_cpu = raw_throughput(task, b["replay"], cores)
        print(
            f"{task:<12} {raw:>8,.0f} {b['wall']:>8,.0f} {b['steady']:>9,.0f} {b['first_round_s']:>8.1f}s | "
            f"{1e6 * raw_cpu:>11,.0f} {1e6 * b['cpu_per_step']:>13,.0f} {100 * raw_cpu / b['cpu_per_step']:>14.0f}%"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
