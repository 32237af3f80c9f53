"""Discretize any Gymnasium environment with a bounded Box action space."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from spin_bench.envs.bins import ActionBins, BinsArg


class DiscretizeAction(gym.ActionWrapper):
    """Turn a ``Box`` action space into ``MultiDiscrete`` with endpoint-inclusive bins.

    Dimension ``d`` (of the flattened box) gets ``np.linspace(low[d], high[d], m_d)``: 3 bins on
    [-1, 1] are {-1, 0, 1}. This differs on purpose from ``gymnasium.wrappers.DiscretizeAction``,
    which uses bin centres ({-2/3, 0, 2/3}); spin-bench's environments use this convention.

    Args:
        env: environment whose action space is a ``Box`` with finite bounds.
        bins: bins per dimension: one int >= 2, or one int per (flattened) dimension.
    """

    def __init__(self, env: gym.Env, bins: BinsArg = 3):
        if not isinstance(env.action_space, spaces.Box):
            raise ValueError(f"DiscretizeAction needs a Box action space, got {env.action_space}")
        super().__init__(env)
        box = env.action_space
        self._box_shape = box.shape
        self._box_dtype = box.dtype
        self.action_bins = ActionBins(box.low, box.high, bins)
        self.action_space = spaces.MultiDiscrete(self.action_bins.nvec)

    def action(self, action: Any) -> np.ndarray:
        continuous = self.action_bins.to_continuous(action)
        return continuous.reshape(self._box_shape).astype(self._box_dtype, copy=False)

    def indices_to_action(self, indices: Any) -> np.ndarray:
        """Bin indices -> continuous action of the wrapped env."""
        return self.action(indices)

    def action_to_indices(self, action: Any) -> np.ndarray:
        """Continuous action of the wrapped env -> nearest bin indices."""
        return self.action_bins.to_indices(np.ravel(action))
