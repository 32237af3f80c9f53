"""A trained behaviour agent as a policy: load a snapshot, act greedily with per-dimension epsilon."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spin_bench._io import atomic_torch_save
from spin_bench.behaviour.network import DecoupledQNetwork

SNAPSHOT_FORMAT = "spin-bench/decqn-snapshot-v1"


def epsilon_greedy(greedy: np.ndarray, nvec: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Replace each sub-action of ``greedy`` (B, N) by a uniform bin with probability ``epsilon``.

    Exactly two draws of shape (B, N) from ``rng`` happen per call, whatever epsilon is, so the
    random stream (and a dataset built from it) does not depend on which branch was taken.
    """
    explore = rng.random(greedy.shape) < epsilon
    random_bins = np.floor(rng.random(greedy.shape) * nvec).astype(greedy.dtype)
    return np.where(explore, random_bins, greedy)


@dataclass
class BehaviourPolicy:
    """A DecQN network in evaluation mode, acting on numpy observations."""

    network: DecoupledQNetwork
    metadata: dict

    @property
    def nvec(self) -> np.ndarray:
        return np.asarray(self.network.nvec, dtype=np.int64)

    @torch.no_grad()
    def greedy(self, observations: np.ndarray) -> np.ndarray:
        """Greedy bin indices ``(B, N)`` int64 for float32 observations ``(B, obs_dim)``."""
        obs = torch.as_tensor(np.asarray(observations, dtype=np.float32))
        return self.network(obs).argmax(dim=-1).numpy()

    def act(self, observations: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        """Epsilon-greedy bin indices ``(B, N)`` int64 (``epsilon=0`` is greedy but still draws from rng)."""
        return epsilon_greedy(self.greedy(observations), self.nvec, epsilon, rng)


def save_snapshot(path: Path, network: DecoupledQNetwork, **metadata) -> str:
    """Write a weights-only snapshot atomically; returns its sha256. ``metadata``: JSON-safe values."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": SNAPSHOT_FORMAT,
        "architecture": network.architecture(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
        "metadata": metadata,
    }
    atomic_torch_save(path, payload)
    return sha256_file(path)


def load_behaviour_policy(path: str | Path) -> BehaviourPolicy:
    """Load a snapshot written by :func:`save_snapshot` (``torch.load(weights_only=True)``)."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if payload.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{path}: not a spin-bench behaviour snapshot (format={payload.get('format')!r})")
    network = DecoupledQNetwork(**payload["architecture"])
    network.load_state_dict(payload["state_dict"])
    network.eval()
    return BehaviourPolicy(network=network, metadata=dict(payload["metadata"]))


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
