"""A flat numpy ring buffer of n-step transitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIELDS = ("observations", "actions", "returns", "next_observations", "discounts")


class NStepReplay:
    """Stores (s_t, a_t, R_t^(n), s_{t+k}, gamma^k or 0) rows; sampling is one fancy-index per field."""

    def __init__(self, capacity: int, obs_dim: int, num_dims: int):
        self.capacity = int(capacity)
        self.observations = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, num_dims), dtype=np.int8)
        self.returns = np.zeros(capacity, dtype=np.float32)
        self.next_observations = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.size = 0
        self.cursor = 0

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        count = len(chunk["returns"])
        idx = (self.cursor + np.arange(count)) % self.capacity
        for name in FIELDS:
            getattr(self, name)[idx] = chunk[name]
        self.cursor = int((self.cursor + count) % self.capacity)
        self.size = int(min(self.capacity, self.size + count))

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, size=batch_size)
        return {name: getattr(self, name)[idx] for name in FIELDS}

    def save(self, path: Path) -> None:
        """Write the filled part atomically (np.savez, uncompressed: speed over size)."""
        tmp = path.with_name(path.name + ".tmp.npz")
        n = self.size
        np.savez(tmp, cursor=self.cursor, **{name: getattr(self, name)[:n] for name in FIELDS})
        tmp.replace(path)

    def load(self, path: Path) -> None:
        with np.load(path) as data:
            n = len(data["returns"])
            if n > self.capacity:
                raise ValueError(f"{path}: {n} transitions do not fit a replay of capacity {self.capacity}")
            for name in FIELDS:
                getattr(self, name)[:n] = data[name]
            self.size = n
            self.cursor = int(data["cursor"]) % self.capacity
