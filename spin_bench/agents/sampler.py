"""The whole dataset as tensors on the training device, sampled by index with a seeded generator."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from spin_bench.agents.base import Batch


class TransitionSampler:
    """Uniform minibatches of a ``Transitions`` dataset, drawn with replacement by one ``randint``.

    Actions stay in their compact integer dtype on the device and become int64 per batch only.
    """

    def __init__(self, transitions, device: str | torch.device = "cpu", seed: int = 0):
        self.device = torch.device(device)
        self.size = len(transitions)
        if self.size == 0:
            raise ValueError("cannot sample from an empty dataset")

        def put(array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(array), device=self.device, dtype=dtype)

        self.observations = put(transitions.observations, torch.float32)
        self.actions = put(transitions.actions)
        self.rewards = put(transitions.rewards, torch.float32)
        self.next_observations = put(transitions.next_observations, torch.float32)
        self.terminals = put(transitions.terminals, torch.float32)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))

    def sample(self, batch_size: int) -> Batch:
        index = torch.randint(self.size, (batch_size,), generator=self.generator, device=self.device)
        return Batch(
            observations=self.observations[index],
            actions=self.actions[index].long(),
            rewards=self.rewards[index],
            next_observations=self.next_observations[index],
            terminals=self.terminals[index],
        )

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
