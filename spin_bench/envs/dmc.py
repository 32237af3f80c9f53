"""DeepMind Control suite tasks as Gymnasium environments with MultiDiscrete actions."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle

from spin_bench._rendering import configure_headless_rendering
from spin_bench.envs.bins import ActionBins, BinsArg, bin_interval
from spin_bench.envs.tasks import EPISODE_STEPS, split_task


class _DropSuiteXmlDeprecation(logging.Filter):
    """dm_control's own cheetah.xml uses ``settotalmass``; MuJoCo warns on every load. Not actionable."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "'settotalmass' is deprecated" not in record.getMessage()


logging.getLogger("absl").addFilter(_DropSuiteXmlDeprecation())


# dm_control's lqr draws its model (each joint's stiffness) from the task's random state when the environment is
# built, and has no time limit. A seeded reset rebuilds it from the seed; the env itself truncates it.
_MODEL_DRAWN_AT_BUILD = frozenset({"lqr"})
_NO_TIME_LIMIT = frozenset({"lqr"})


def _observation_box(shape: tuple[int, ...]) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, shape=shape, dtype=np.float32)


def _legacy_seed(seed: int) -> int:
    """The numpy ``RandomState`` seed of a reset seed: itself below 2**32 (as dm_control's ``random=seed``)."""
    return seed if 0 <= seed < 2**32 else int(np.random.SeedSequence(seed).generate_state(1)[0])


@contextlib.contextmanager
def _no_new_rendering_context(physics) -> Iterator[None]:
    """While active, ``physics.contexts`` is the existing rendering context or None; it never makes one.

    quadruped-escape's reset re-uploads its new terrain to the GPU "if we have a rendering context", but
    asking ``physics.contexts`` creates one, which fails without an OpenGL backend (``MUJOCO_GL=disable``).
    A context that ``render()`` makes later uploads the terrain as it is then, so nothing is lost.
    """
    physics._make_rendering_contexts = lambda: None  # an instance attribute shadows the method
    try:
        yield
    finally:
        del physics._make_rendering_contexts


class DiscreteDMCEnv(gym.Env, EzPickle):
    """A DM Control suite task with each action dimension split into bins.

    Actions are ``MultiDiscrete(nvec)``: sub-action ``k`` of dimension ``d`` is the continuous
    value ``np.linspace(low[d], high[d], nvec[d])[k]``, using each actuator's own bounds (``bin_bounds="unit"``:
    [-1, 1] for every actuator, as the original benchmark's loader maps them; MuJoCo clamps to the actuator range).
    Observations are the dm_control observation dict concatenated in its key order as one
    float32 vector (``flatten=False`` returns the dict, each entry float32).

    Episodes: ``terminated`` is always False on the benchmark tasks (no DM Control task has
    terminal states, except ``lqr``, which ends when its state converges); ``truncated`` is True
    at the 1000-step time limit. Learners must bootstrap through truncations. ``step()`` before the
    first ``reset()`` or after an episode ended raises ``gymnasium.error.ResetNeeded``.

    ``reset(seed=s)`` reseeds the task's random state, so the same seed and the same actions give
    bit-identical observations and rewards, as ``dm_control.suite.load(..., task_kwargs={"random": s})``
    does. ``lqr`` draws its model from that state too: a seeded reset rebuilds it, so the seed fixes
    the model as well as the initial state (unseeded resets keep the model). Pickling and
    ``copy.deepcopy`` rebuild a fresh env from the constructor arguments (the simulator state is not
    carried over).

    Args:
        task: ``"domain-task"``, e.g. ``"dog-run"`` (any of ``spin_bench.envs.all_tasks()``).
        bins: bins per action dimension: one int >= 2, or one int per dimension.
        flatten: return one flat float32 vector (True) or the observation dict (False).
        render_mode: ``None`` or ``"rgb_array"``.
        width: rendered image width in pixels.
        height: rendered image height in pixels.
        camera_id: MuJoCo camera used by ``render()``.
        bin_bounds: ``"actuator"`` (bins span each actuator's control range) or ``"unit"`` (bins span [-1, 1]
            for every actuator, the original benchmark's mapping); see ``spin_bench.envs.bins.BIN_BOUNDS``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task: str,
        bins: BinsArg = 3,
        flatten: bool = True,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_id: int = 0,
        bin_bounds: str = "actuator",
    ):
        EzPickle.__init__(self, task, bins, flatten, render_mode, width, height, camera_id, bin_bounds)
        domain, name = split_task(task)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'")
        configure_headless_rendering()
        from dm_control import suite

        self.task_name = task
        self._domain, self._task = domain, name
        self._env = suite.load(domain, name)
        self._episode_steps = 0
        self._needs_reset = True
        """True before the first reset and once an episode has ended."""
        spec = self._env.action_spec()
        self.bin_bounds = bin_bounds
        low, high = bin_interval(spec.minimum * np.ones(spec.shape), spec.maximum * np.ones(spec.shape), bin_bounds)
        self.action_bins = ActionBins(low, high, bins)
        self.action_space = spaces.MultiDiscrete(self.action_bins.nvec)

        obs_spec = self._env.observation_spec()
        self._obs_keys = tuple(obs_spec)
        self.flatten = flatten
        if flatten:
            size = sum(int(np.prod(obs_spec[k].shape)) for k in self._obs_keys)
            self.observation_space = _observation_box((size,))
        else:
            self.observation_space = spaces.Dict({k: _observation_box(obs_spec[k].shape) for k in self._obs_keys})

        self.render_mode = render_mode
        self.width, self.height, self.camera_id = width, height, camera_id
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self._env.control_timestep()))}

    # -- discretization helpers -------------------------------------------------------------
    @property
    def bin_values(self) -> tuple[np.ndarray, ...]:
        """Per dimension, the continuous value of each bin (``np.linspace(low, high, m)``)."""
        return self.action_bins.values

    @property
    def bin_table(self) -> np.ndarray:
        """``(N, max_m)`` table of bin values (NaN-padded where a dimension has fewer bins)."""
        return self.action_bins.table

    def indices_to_action(self, indices: Any) -> np.ndarray:
        """Bin indices -> continuous action, after checking shape, dtype and range."""
        return self.action_bins.to_continuous(indices)

    def action_to_indices(self, action: Any) -> np.ndarray:
        """Continuous action -> index of the nearest bin in each dimension."""
        return self.action_bins.to_indices(action)

    @property
    def physics(self):
        """The dm_control ``Physics`` of the underlying task."""
        return self._env.physics

    # -- gymnasium API --------------------------------------------------------------------------
    def _observation(self, obs: dict[str, np.ndarray]):
        if self.flatten:
            return np.concatenate([np.ravel(obs[k]) for k in self._obs_keys], dtype=np.float32, casting="same_kind")
        return {k: np.asarray(obs[k], dtype=np.float32) for k in self._obs_keys}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None and self._domain in _MODEL_DRAWN_AT_BUILD:
            from dm_control import suite

            self._env.close()
            self._env = suite.load(self._domain, self._task, task_kwargs={"random": _legacy_seed(seed)})
        elif seed is not None:
            # The task draws its initial state from its own RandomState: reseed it for determinism.
            self._env.task._random = np.random.RandomState(_legacy_seed(seed))
        with _no_new_rendering_context(self._env.physics):
            timestep = self._env.reset()
        self._episode_steps, self._needs_reset = 0, False
        return self._observation(timestep.observation), {}

    def step(self, action):
        if self._needs_reset:
            # dm_control would silently start a new episode here instead.
            when = "after the episode ended" if self._episode_steps else "before the first reset()"
            raise gym.error.ResetNeeded(f"{self.task_name}: step() called {when}; call reset() first")
        timestep = self._env.step(self.action_bins.to_continuous(action))
        self._episode_steps += 1
        terminated = bool(timestep.last() and timestep.discount == 0.0)
        truncated = not terminated and (
            timestep.last() or (self._domain in _NO_TIME_LIMIT and self._episode_steps >= EPISODE_STEPS)
        )
        self._needs_reset = terminated or truncated
        return self._observation(timestep.observation), float(timestep.reward), terminated, truncated, {}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._env.physics.render(height=self.height, width=self.width, camera_id=self.camera_id)

    def close(self):
        self._env.close()
