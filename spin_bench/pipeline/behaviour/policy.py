"""A trained behaviour agent as a torch policy: write and load snapshots, act greedily with per-dimension epsilon.

The file format and the torch-free reader are the user side's (:mod:`spin_bench.datasets.snapshot`); this module
adds what training, export and diagnosis need: the torch network itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spin_bench._io import atomic_torch_save
from spin_bench.datasets.snapshot import (
    SNAPSHOT_FORMAT,
    epsilon_greedy,
    load_snapshot_policy,
    read_snapshot,
    sha256_file,
)
from spin_bench.pipeline.behaviour.network import DecoupledQNetwork


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
    """Load a snapshot written by :func:`save_snapshot` as a torch network (read by :func:`read_snapshot`)."""
    payload = read_snapshot(path)
    network = DecoupledQNetwork(**payload["architecture"])
    network.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in payload["state_dict"].items()})
    network.eval()
    return BehaviourPolicy(network=network, metadata=dict(payload["metadata"]))


def check_numpy_forward(path: str | Path, policy: BehaviourPolicy) -> None:
    """Check that the torch-free rollout forward pass (:func:`load_snapshot_policy`) computes this network's
    utilities, on 64 probe observations; ValueError naming the snapshot if not (it cannot make datasets)."""
    numpy_policy = load_snapshot_policy(path)
    probe = np.random.default_rng(0).standard_normal((64, policy.network.obs_dim)).astype(np.float32) * 5
    with torch.no_grad():
        expected = policy.network(torch.from_numpy(probe)).numpy()
    got = np.concatenate([numpy_policy.greedy.utilities(row[None]) for row in probe])
    finite = np.isfinite(expected)
    same = np.array_equal(finite, np.isfinite(got)) and np.allclose(got[finite], expected[finite], 1e-4, 1e-4)
    if not same:
        raise ValueError(f"{path}: the numpy forward pass that builds datasets does not reproduce this network")
