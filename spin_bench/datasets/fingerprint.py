"""Prefix fingerprints: a few episodes of a dataset that anyone can re-simulate in seconds.

A full dataset takes minutes to hours to rebuild, so the catalog also records a *prefix*: the first
``PREFIX_EPISODES`` episode(s) of every segment of the recipe (for a ``concat`` recipe, of every part's
segments), so every policy and seed stream of the dataset is exercised. Its fingerprint is each episode's return
and length, and the sha256 of their arrays. It is taken from the episodes of the real build (``--record``) and
checked by re-simulating the same episodes from the checkpoints (``spin-bench datasets check-prefix``; the slow
test suite does it for every recorded dataset), which catches a changed trainer checkpoint, simulator or recipe.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
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
