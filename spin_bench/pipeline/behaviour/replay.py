"""Flat numpy ring buffers of n-step transitions: uniform, or prioritized by TD error (a sum tree)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spin_bench._io import atomic_target

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

    def add(self, chunk: dict[str, np.ndarray]) -> np.ndarray:
        """Write ``chunk``'s rows at the cursor (overwriting the oldest when full); returns the row indices."""
        count = len(chunk["returns"])
        idx = (self.cursor + np.arange(count)) % self.capacity
        for name in FIELDS:
            getattr(self, name)[idx] = chunk[name]
        self.cursor = int((self.cursor + count) % self.capacity)
        self.size = int(min(self.capacity, self.size + count))
        return idx

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, size=batch_size)
        return {name: getattr(self, name)[idx] for name in FIELDS}

    def save(self, path: Path) -> None:
        """Write the filled part atomically (np.savez, uncompressed: speed over size)."""
        n = self.size
        with atomic_target(path) as tmp:
            arrays = {name: getattr(self, name)[:n] for name in FIELDS}
            np.savez(tmp, cursor=self.cursor, **arrays, **self._extra_arrays())

    def load(self, path: Path) -> None:
        with np.load(path) as data:
            n = len(data["returns"])
            if n > self.capacity:
                raise ValueError(f"{path}: {n} transitions do not fit a replay of capacity {self.capacity}")
            for name in FIELDS:
                getattr(self, name)[:n] = data[name]
            self.size = n
            self.cursor = int(data["cursor"]) % self.capacity
            self._load_extra_arrays(data)

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        """What a subclass saves beside the transitions."""
        return {}

    def _load_extra_arrays(self, data) -> None:
        """Restore what :meth:`_extra_arrays` saved (``data``: the open npz)."""


class PrioritizedReplay(NStepReplay):
    """Proportional prioritized replay (Schaul et al., 2016), as DecQN's own agent used it.

    Row i is drawn with probability P(i) = p_i / sum_j p_j, p_i = (|TD error_i| + PRIORITY_FLOOR) ** alpha; a row
    enters with the largest priority seen so far, so it is replayed at least once soon. Each draw carries the
    importance weight (size * P(i)) ** -beta, divided by the batch's largest. A sum tree over the capacity keeps a
    draw and a priority update O(log capacity), vectorized over the batch.
    """

    PRIORITY_FLOOR = 1e-6
    """Added to |TD error| so that no row's probability becomes zero."""

    def __init__(self, capacity: int, obs_dim: int, num_dims: int, alpha: float, beta: float):
        super().__init__(capacity, obs_dim, num_dims)
        self.alpha, self.beta = float(alpha), float(beta)
        self.leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self.depth = self.leaves.bit_length() - 1
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)  # node k's children: 2k, 2k + 1; root 1
        self.max_priority = 1.0
        """Largest |TD error| + floor seen so far (before the exponent): new rows enter with it."""

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def add(self, chunk: dict[str, np.ndarray]) -> np.ndarray:
        idx = super().add(chunk)
        self._set(idx, np.full(len(idx), self.max_priority**self.alpha))
        return idx

    def sample_prioritized(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """Row indices and a batch drawn by priority (one draw per equal slice of the total), with ``weights``."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay")
        total = self.total
        targets = np.minimum(
            (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size), total * (1 - 1e-12)
        )
        node = np.ones(batch_size, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * node
            left_sum = self.tree[left]
            right = targets >= left_sum
            targets = np.where(right, targets - left_sum, targets)
            node = np.where(right, left + 1, left)
        idx = np.minimum(node - self.leaves, self.size - 1)  # float rounding at the edge stays on filled rows
        probabilities = self.tree[idx + self.leaves] / total
        weights = (self.size * probabilities) ** -self.beta
        batch = {name: getattr(self, name)[idx] for name in FIELDS}
        batch["weights"] = (weights / weights.max()).astype(np.float32)
        return idx, batch

    def update_priorities(self, idx: np.ndarray, td_errors: np.ndarray) -> None:
        """Set rows ``idx`` to priority (|td_errors| + floor) ** alpha."""
        raw = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.PRIORITY_FLOOR
        self.max_priority = max(self.max_priority, float(raw.max()))
        self._set(np.asarray(idx, dtype=np.int64), raw**self.alpha)

    def _set(self, idx: np.ndarray, priorities: np.ndarray) -> None:
        node = idx + self.leaves
        self.tree[node] = priorities
        for _ in range(self.depth):
            node = np.unique(node // 2)
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        priorities = self.tree[self.leaves : self.leaves + self.size]  # a view: np.savez writes it at once
        return {"priorities": priorities, "max_priority": np.float64(self.max_priority)}

    def _load_extra_arrays(self, data) -> None:
        self.tree[:] = 0.0
        if "priorities" in data:
            self.max_priority = float(data["max_priority"])
            priorities = data["priorities"]
        else:  # a uniform run's replay: every row starts equal, as if just added
            priorities = np.full(self.size, self.max_priority**self.alpha)
        self._set(np.arange(self.size), priorities)
