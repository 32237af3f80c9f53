"""Roll out behaviour policies into whole episodes, one process per core, in a deterministic episode order.

Episode ``j`` of a segment (policy, epsilon, seed) resets the env with ``seed + j`` and draws every random number
(epsilon-greedy noise, or the uniform random policy's actions) from ``np.random.default_rng([seed, j])``. Policies act
on one observation at a time (batch size 1), so an episode's arrays depend only on (seed, j) and the platform, not
on the number of worker processes nor on which worker ran it. Results come back in episode order. Checkpoint
policies act through :func:`spin_bench.datasets.snapshot.load_snapshot_policy` (numpy forward pass, no torch) with
the catalog entry's recording kernels, so the episodes do not depend on the CPU either.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from spin_bench.datasets.catalog import RANDOM_POLICY, Segment


@dataclass(frozen=True)
class EpisodeJob:
    """Episode ``index`` of a segment: reset seed ``seed + index``, noise from ``default_rng([seed, index])``."""

    policy: str
    epsilon: float
    seed: int
    index: int

    @property
    def reset_seed(self) -> int:
        return self.seed + self.index


@dataclass
class Episode:
    """One episode: ``observations`` has one row more than the other arrays (the final observation)."""

    seed: int
    """The ``env.reset(seed=...)`` seed."""
    observations: np.ndarray  # (T+1, obs_dim) float32
    actions: np.ndarray  # (T, N) int8
    rewards: np.ndarray  # (T,) float32
    terminations: np.ndarray  # (T,) bool
    truncations: np.ndarray  # (T,) bool
    metadata: dict = field(default_factory=dict)
    """Per-episode labels stored as HDF5 attributes: policy, epsilon, segment seed and index."""

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum(dtype=np.float64))


@dataclass(frozen=True)
class RolloutConfig:
    """What a worker needs: the env (id + kwargs, as in the catalog) and the checkpoint files by name."""

    env_id: str
    env_kwargs: dict
    checkpoints: dict[str, str]
    max_episode_steps: int
    kernels: str | None = None
    """The BLAS kernels the data was recorded with (:mod:`spin_bench.datasets.kernels`); None: this CPU's own."""


def rollout_config(entry, ds) -> RolloutConfig:
    """The worker config of a catalog dataset: its entry's env, recording kernels and the checkpoints it uses."""
    return RolloutConfig(
        env_id=entry.env_id,
        env_kwargs=dict(entry.env_kwargs),
        checkpoints={n: str(entry.checkpoints[n].path) for n in sorted(ds.policies() - {RANDOM_POLICY})},
        max_episode_steps=entry.max_episode_steps,
        kernels=entry.recording_kernels,
    )


def segment_jobs(segments: Sequence[Segment]) -> list[EpisodeJob]:
    return [EpisodeJob(s.policy, s.epsilon, s.seed, j) for s in segments for j in range(s.episodes)]


def rollout_episode(env, policy, job: EpisodeJob, max_steps: int) -> Episode:
    """Run one episode of ``policy`` (``.act(obs, epsilon, rng)`` as ``SnapshotPolicy``; None: uniform random)."""
    rng = np.random.default_rng([job.seed, job.index])
    nvec = np.asarray(env.action_space.nvec, dtype=np.int64)
    obs, _ = env.reset(seed=job.reset_seed)
    obs_buf = np.empty((max_steps + 1, obs.shape[0]), dtype=np.float32)
    act_buf = np.empty((max_steps, nvec.size), dtype=np.int8)
    rew_buf = np.empty(max_steps, dtype=np.float32)
    term_buf = np.zeros(max_steps, dtype=bool)
    trunc_buf = np.zeros(max_steps, dtype=bool)
    obs_buf[0] = obs
    length = 0
    for t in range(max_steps):
        if policy is None:
            action = rng.integers(0, nvec)
        else:
            action = policy.act(obs[None], job.epsilon, rng)[0]
        obs, reward, terminated, truncated, _ = env.step(action)
        obs_buf[t + 1] = obs
        act_buf[t] = action
        rew_buf[t] = reward
        term_buf[t] = terminated
        trunc_buf[t] = truncated
        length = t + 1
        if terminated or truncated:
            break
    else:
        raise RuntimeError(
            f"episode did not end within {max_steps} steps: the env's time limit differs from the catalog"
        )
    return Episode(
        seed=job.reset_seed,
        observations=obs_buf[: length + 1].copy() if length < max_steps else obs_buf,
        actions=act_buf[:length].copy() if length < max_steps else act_buf,
        rewards=rew_buf[:length].copy() if length < max_steps else rew_buf,
        terminations=term_buf[:length].copy() if length < max_steps else term_buf,
        truncations=trunc_buf[:length].copy() if length < max_steps else trunc_buf,
        metadata={
            "policy": job.policy,
            "epsilon": 0.0 if job.policy == RANDOM_POLICY else float(job.epsilon),
            "segment_seed": job.seed,
            "segment_index": job.index,
        },
    )


class _Worker:
    """Env + policies of one process (built once, reused for every episode the process runs)."""

    def __init__(self, config: RolloutConfig):
        import spin_bench  # noqa: F401  (registers the env ids)
        from spin_bench.datasets.snapshot import load_snapshot_policy

        self.config = config
        self.env = _make_env(config)
        self.policies = {name: load_snapshot_policy(p, config.kernels) for name, p in config.checkpoints.items()}

    def run(self, job: EpisodeJob) -> Episode:
        from spin_bench.datasets.kernels import recording_norm

        policy = None if job.policy == RANDOM_POLICY else self.policies[job.policy]
        # dm_control normalises random initial orientations with np.linalg.norm: its last bit is the kernels'.
        with recording_norm(self.config.kernels):
            return rollout_episode(self.env, policy, job, self.config.max_episode_steps)

    def close(self) -> None:
        self.env.close()


def _make_env(config: RolloutConfig):
    import gymnasium as gym

    return gym.make(config.env_id, **config.env_kwargs)


_PROCESS_WORKER: _Worker | None = None
_PROCESS_ERROR: BaseException | None = None


def _init_process(config: RolloutConfig) -> None:
    # A failing pool initializer makes multiprocessing respawn workers forever; keep the error for the first job.
    global _PROCESS_WORKER, _PROCESS_ERROR
    try:
        _PROCESS_WORKER = _Worker(config)
    except Exception as e:
        _PROCESS_ERROR = e


def _run_in_process(job: EpisodeJob) -> Episode:
    if _PROCESS_ERROR is not None:
        raise RuntimeError(f"a rollout worker could not start: {_PROCESS_ERROR}") from _PROCESS_ERROR
    assert _PROCESS_WORKER is not None
    return _PROCESS_WORKER.run(job)


MIN_EPISODES_PER_PROCESS = 8
"""With the default worker count, each process gets at least this many episodes (fewer run in this process)."""


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def run_episodes(
    config: RolloutConfig,
    jobs: Iterable[EpisodeJob],
    *,
    workers: int | None = None,
    on_episode: Callable[[Episode], None] | None = None,
) -> Iterator[Episode]:
    """Yield the episodes of ``jobs`` in order, simulated by ``workers`` processes.

    Default: one per core, but at least ``MIN_EPISODES_PER_PROCESS`` episodes per process.

    ``workers=1`` runs in this process (no start-up cost). Otherwise a ``spawn`` pool hands out episodes one at a
    time; the order of the results is the order of ``jobs`` whatever process ran each one.
    """
    jobs = list(jobs)
    if workers is None or workers <= 0:
        # Starting a process costs seconds (dm_control, MuJoCo): small jobs use fewer processes.
        workers = min(available_cores(), len(jobs) // MIN_EPISODES_PER_PROCESS)
    workers = max(1, min(workers, len(jobs)))
    if not jobs:
        return
    if workers == 1:
        worker = _Worker(config)
        try:
            for job in jobs:
                episode = worker.run(job)
                if on_episode is not None:
                    on_episode(episode)
                yield episode
        finally:
            worker.close()
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_process, initargs=(config,)) as pool:
        for episode in pool.imap(_run_in_process, jobs, chunksize=1):
            if on_episode is not None:
                on_episode(episode)
            yield episode
