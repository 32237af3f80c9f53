"""Prefix fingerprints: a few episodes of a dataset that anyone can re-simulate in seconds.

A full dataset takes minutes to hours to rebuild, so the catalog also records a *prefix*: the first
``PREFIX_EPISODES`` episode(s) of every segment of the recipe (for a ``concat`` recipe, of every part's
segments), so every policy and seed stream of the dataset is exercised. Its fingerprint is each episode's return
and length, and the sha256 of their arrays. It is taken from the recorded build (``spin-bench-maintain record``)
and checked by re-simulating the same episodes from the checkpoints (``spin-bench-maintain check-prefix``; the slow
test suite does it for every recorded dataset), which catches a changed trainer checkpoint, simulator or recipe.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spin_bench.datasets.catalog import DatasetEntry, TaskEntry
from spin_bench.datasets.rollout import Episode, EpisodeJob, rollout_config, run_episodes

PREFIX_EPISODES = 1
"""Episodes taken from the start of every segment."""

FINGERPRINT_FORMAT = "spin-bench-prefix-v1"
_ARRAYS = ("observations", "actions", "rewards", "terminations", "truncations")


def prefix_positions(ds: DatasetEntry, per_segment: int = PREFIX_EPISODES) -> list[int]:
    """Positions, within the dataset, of the prefix episodes (the first ``per_segment`` of every segment)."""
    positions, start = [], 0
    for segment in ds.segments:
        positions.extend(range(start, start + min(per_segment, segment.episodes)))
        start += segment.episodes
    return positions


def prefix_jobs(ds: DatasetEntry, per_segment: int = PREFIX_EPISODES) -> list[EpisodeJob]:
    return [
        EpisodeJob(s.policy, s.epsilon, s.seed, j) for s in ds.segments for j in range(min(per_segment, s.episodes))
    ]


def fingerprint(episodes: Sequence[Episode], per_segment: int = PREFIX_EPISODES) -> dict:
    """Returns, lengths and one sha256 over the arrays (little-endian, fixed order) of ``episodes``."""
    h = hashlib.sha256(FINGERPRINT_FORMAT.encode() + b"\n")
    for episode in episodes:
        h.update(f"seed={episode.seed}\n".encode())
        for key in _ARRAYS:
            a = np.ascontiguousarray(getattr(episode, key))
            a = a.astype(a.dtype.newbyteorder("<"), copy=False)
            h.update(f"{key}:{a.dtype.str}:{a.shape}\n".encode())
            h.update(a.tobytes())
    return {
        "format": FINGERPRINT_FORMAT,
        "episodes_per_segment": per_segment,
        "returns": [round(e.episode_return, 4) for e in episodes],
        "lengths": [len(e) for e in episodes],
        "sha256": h.hexdigest(),
    }


def prefix_from_stream(ds: DatasetEntry, episodes: Iterable[Episode], per_segment: int = PREFIX_EPISODES) -> dict:
    """The fingerprint of a dataset's prefix, picked out of its full episode stream (as a build produces it)."""
    wanted = set(prefix_positions(ds, per_segment))
    # Stop at the last prefix episode: the rest of the dataset need not be read.
    chosen = [e for i, e in enumerate(itertools.islice(episodes, max(wanted) + 1)) if i in wanted]
    return fingerprint(chosen, per_segment)


def prefix_from_installed(ds: DatasetEntry, data_dir: Path, per_segment: int = PREFIX_EPISODES) -> dict:
    """The fingerprint of the prefix of an installed dataset (read back from its hdf5 file)."""
    from spin_bench.datasets.minari_io import read_episodes

    return prefix_from_stream(ds, read_episodes(data_dir), per_segment)


def simulate_prefix(
    entry: TaskEntry, ds: DatasetEntry, *, per_segment: int = PREFIX_EPISODES, workers: int = 1
) -> dict:
    """Re-simulate the prefix episodes from the checkpoints and fingerprint them."""
    episodes = run_episodes(rollout_config(entry, ds), prefix_jobs(ds, per_segment), workers=workers)
    return fingerprint(list(episodes), per_segment)


def compare_prefix(recorded: dict, measured: dict) -> list[str]:
    """Human-readable differences between a recorded and a re-simulated fingerprint (empty: they match)."""
    problems = []
    if recorded.get("format") != measured["format"]:
        return [f"fingerprint format {recorded.get('format')!r} != {measured['format']!r}"]
    if recorded["lengths"] != measured["lengths"]:
        problems.append(f"episode lengths {measured['lengths']} != recorded {recorded['lengths']}")
    for i, (r, m) in enumerate(zip(recorded["returns"], measured["returns"], strict=False)):
        if abs(r - m) > 1e-3:
            problems.append(f"prefix episode {i}: return {m:.4f} != recorded {r:.4f}")
    if not problems and recorded["sha256"] != measured["sha256"]:
        problems.append(
            f"arrays sha256 {measured['sha256'][:16]}... != recorded {recorded['sha256'][:16]}... "
            "(same returns: a platform difference in the last bits)"
        )
    return problems


ROUNDING_TIE_FACTOR = 4.0
"""How many times this machine's own float32 error (against float64) another CPU's float32 error may reach."""


@dataclass(frozen=True)
class RoundingTie:
    """A greedy decision whose two best bins are closer than float32 rounding can tell apart."""

    step: int
    """Step of the episode."""
    dimension: int
    """Action dimension."""
    margin: float
    """float32 utility of the best bin minus the second best's."""
    rounding: float
    """How far float32 rounding on another CPU could move that difference."""


class _TieWatch:
    """Acts exactly as the rollout policy it wraps, noting each greedy decision that float32 rounding could flip."""

    def __init__(self, policy):
        self.policy, self.nvec = policy, policy.nvec
        self.fast = policy.greedy
        self.exact = self.fast.astype(np.float64)
        self.ties: list[RoundingTie] = []
        self.step = 0
        self.last_exact: np.ndarray | None = None
        """The float64 utilities (dimensions x bins) of the last greedy decision."""

    def act(self, observations: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        u32 = self.fast.utilities(observations)[0].astype(np.float64)
        self.last_exact = self.exact.utilities(observations)[0]
        error = np.abs(u32 - self.last_exact)
        order = np.argsort(-u32, axis=-1, kind="stable")
        for d in range(u32.shape[0]):
            best, second = order[d, 0], order[d, 1]
            if not np.isfinite(u32[d, second]):
                continue  # a dimension with a single bin
            margin = u32[d, best] - u32[d, second]
            scale = max(abs(u32[d, best]), abs(u32[d, second]))
            rounding = ROUNDING_TIE_FACTOR * (error[d, best] + error[d, second]) + 2 * np.finfo(np.float32).eps * scale
            if margin <= rounding:
                self.ties.append(RoundingTie(self.step, d, float(margin), float(rounding)))
        self.step += 1
        return self.policy.act(observations, epsilon, rng)


def rounding_ties(entry: TaskEntry, ds: DatasetEntry, position: int, per_segment: int = PREFIX_EPISODES):
    """Re-simulate prefix episode ``position`` and list the greedy decisions float32 rounding could flip.

    The greedy action is the argmax of float32 utilities, whose last bits depend on the CPU's matrix kernels. Where
    two bins tie that closely, another CPU can pick the other bin and the episode goes its own way from there: a
    prefix recorded on one machine then differs on another without any change to checkpoints, simulator or
    recipe. An episode with no such decision cannot differ that way. Returns [] for the random policy.
    """
    from spin_bench.datasets.rollout import _Worker, rollout_episode

    job = prefix_jobs(ds, per_segment)[position]
    config = rollout_config(entry, ds)
    worker = _Worker(config)
    try:
        policy = worker.policies.get(job.policy)
        if policy is None:
            return []  # uniform random actions: nothing to explain
        watch = _TieWatch(policy)
        rollout_episode(worker.env, watch, job, config.max_episode_steps)
        return watch.ties
    finally:
        worker.close()


def check_prefix(entry: TaskEntry, ds: DatasetEntry) -> tuple[list[str], list[str]]:
    """Re-simulate the recorded prefix; returns (problems, notes).

    A return that differs in an episode where float32 rounding could flip a greedy decision is a note, not a
    problem: the CPU differs from the recording one (see :func:`rounding_ties`). Every other difference is a problem.
    """
    recorded = ds.raw["prefix"]
    per_segment = recorded["episodes_per_segment"]
    measured = simulate_prefix(entry, ds, per_segment=per_segment)
    problems = compare_prefix(recorded, measured)
    if recorded["lengths"] != measured["lengths"] or recorded.get("format") != measured["format"]:
        return problems, []
    notes = []
    for i, (r, m) in enumerate(zip(recorded["returns"], measured["returns"], strict=True)):
        if abs(r - m) <= 1e-3:
            continue
        ties = rounding_ties(entry, ds, i, per_segment)
        if ties:
            first = ties[0]
            problems.remove(f"prefix episode {i}: return {m:.4f} != recorded {r:.4f}")
            notes.append(
                f"prefix episode {i}: return {m:.4f} != recorded {r:.4f}, where {len(ties)} greedy decision(s) tie "
                f"within float32 rounding (first at step {first.step}, dimension {first.dimension}: margin "
                f"{first.margin:.2g}, rounding {first.rounding:.2g}): another CPU's last bits, not a changed recipe"
            )
    if notes:  # the arrays cannot hash alike once an episode went another way
        problems = [p for p in problems if not p.startswith("arrays sha256")]
    return problems, notes
