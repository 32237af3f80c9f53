"""The flat transition view that offline agents train on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Transitions:
    """All transitions of a dataset as aligned numpy arrays (row t is one transition).

    ``terminals`` marks true terminations (the bootstrap stops); ``timeouts`` marks time-limit
    truncations (the bootstrap continues through ``next_observations``). On DM Control tasks
    ``terminals`` is all False.
    """

    observations: np.ndarray
    """(T, obs_dim) float32 states s_t."""
    actions: np.ndarray
    """(T, N) integer bin indices a_t (int8 on disk)."""
    rewards: np.ndarray
    """(T,) float32 rewards r_t."""
    next_observations: np.ndarray
    """(T, obs_dim) float32 states s_{t+1}."""
    terminals: np.ndarray
    """(T,) bool: s_{t+1} is terminal."""
    timeouts: np.ndarray
    """(T,) bool: the episode was truncated after this transition."""
    nvec: np.ndarray
    """(N,) int64 bins per action dimension."""

    def __post_init__(self) -> None:
        n = len(self.observations)
        for name in ("actions", "rewards", "next_observations", "terminals", "timeouts"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Transitions.{name} has {len(getattr(self, name))} rows, observations has {n}")

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def num_dims(self) -> int:
        return int(self.actions.shape[1])
