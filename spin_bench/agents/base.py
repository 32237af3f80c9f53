"""The interface every reference agent implements, and the batch it trains on."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from spin_bench.agents.config import TrainConfig
from spin_bench.agents.policies import Generators
from spin_bench.agents.precision import describe_precision

STATE_FORMAT = "spin-bench/agent-state-v1"


class Batch(NamedTuple):
    """A minibatch of transitions as tensors on the training device.

    There is no ``timeouts`` field on purpose: a truncated transition bootstraps like any other, only
    ``terminals`` stops the bootstrap.
    """

    observations: torch.Tensor
    """(B, obs_dim) float32."""
    actions: torch.Tensor
    """(B, N) int64 bin indices."""
    rewards: torch.Tensor
    """(B,) float32."""
    next_observations: torch.Tensor
    """(B, obs_dim) float32."""
    terminals: torch.Tensor
    """(B,) float32, 1.0 where s_{t+1} is terminal."""


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, leaving the caller's RNG state untouched."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def adam(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam over ``params`` (tensors or parameter groups): one fused kernel for every parameter on CPU and CUDA, 2-3x
    faster than the per-tensor loop on CPU; the same update within float32 rounding."""
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))


def maybe_compile(fn, enabled: bool, device: torch.device):
    """``torch.compile(fn)`` when asked, ``fn`` unchanged otherwise.

    On CPU, inductor calls eager's random ops (``fallback_random``): dropout draws the same masks from torch's
    global RNG as the eager run, so a compiled run computes what the eager one does within float32 rounding. On
    CUDA, inductor's own RNG draws the masks (a different random stream from eager's).
    """
    if not enabled:
        return fn
    return torch.compile(fn, options={"fallback_random": True} if device.type == "cpu" else None)


class Agent(ABC):
    """An offline agent over a MultiDiscrete action space ``nvec``.

    Life cycle: ``pretrain(transitions, cache_dir)`` once (a no-op except for SPIN), then ``update(batch)``
    per gradient step, ``act(obs)`` to evaluate. ``state_dict()`` holds everything needed to resume
    exactly: networks, optimizer moments, the step counter and the RNG states (the agent's own acting
    generator and torch's global RNG, which dropout draws from).
    """

    name: ClassVar[str]
    """Registry name (what the CLI accepts)."""
    config_class: ClassVar[type[TrainConfig]]
    """The frozen dataclass this agent is configured by."""

    def __init__(
        self,
        obs_dim: int,
        nvec: Sequence[int],
        config: TrainConfig | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ):
        self.obs_dim = int(obs_dim)
        self.nvec = tuple(int(m) for m in np.asarray(nvec).reshape(-1))
        if not self.nvec or min(self.nvec) < 2:
            raise ValueError(f"nvec must list >= 2 bins per dimension, got {self.nvec}")
        self.config = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            raise TypeError(f"{self.name} expects a {self.config_class.__name__}, got {type(self.config).__name__}")
        self.device = torch.device(device)
        self.seed = int(seed)
        self.step = 0
        """Gradient steps taken (``update`` calls)."""
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        """Draws sampled actions in ``act`` when no generator is passed."""

    # --- training -------------------------------------------------------------------------------
    def pretrain(self, transitions, cache_dir: str | Path | None = None) -> float:
        """Stage-1 pretraining before the first update; returns its wall-clock seconds (0 here)."""
        return 0.0

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step; returns plain-float metrics. An agent overrides this or ``gradient_step``; by default
        it is ``finish_update(gradient_step(batch))``."""
        return self.finish_update(self.gradient_step(batch))

    METRICS: ClassVar[tuple[str, ...]] = ()
    """Names of the values ``gradient_step`` returns, in order (agents that provide one)."""

    def gradient_step(self, batch: Batch) -> torch.Tensor:
        """The work of ``update`` without its host side: the step on ``batch`` and its ``METRICS`` as one 1-D tensor
        on the training device, with no synchronisation with the host and no Python state changed, so that one
        CUDA graph can capture it."""
        raise NotImplementedError(f"{type(self).__name__} provides no gradient_step; use update")

    def finish_update(self, metrics: torch.Tensor) -> dict[str, float]:
        """The host side of ``update`` after a ``gradient_step``: count the step, read the metrics in one transfer."""
        self.step += 1
        return dict(zip(self.METRICS, metrics.tolist(), strict=True))

    # --- acting ---------------------------------------------------------------------------------
    @abstractmethod
    def _sample(self, obs: torch.Tensor, deterministic: bool, generator: Generators) -> torch.Tensor:
        """(B, N) int64 actions for (B, obs_dim) observations, networks already in eval mode; ``generator``:
        one for the batch, or one per row."""

    @abstractmethod
    def _networks(self) -> dict[str, torch.nn.Module]:
        """Every module with parameters or buffers, by a stable name."""

    @abstractmethod
    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer, by a stable name."""

    @torch.no_grad()
    def act(
        self, observations: np.ndarray, deterministic: bool = False, generator: Generators | None = None
    ) -> np.ndarray:
        """Bin indices ``(B, N)`` int64 for observations ``(B, obs_dim)`` (or ``(N,)`` for one ``(obs_dim,)``).

        Sampled from the policy by default (the paper's protocol); ``deterministic`` takes each
        policy's most likely action. ``generator`` (on ``self.device``) draws the samples: one for the
        batch, or a sequence with one per row (each row's sample then depends on its own generator alone);
        without it the agent's own generator does.
        """
        obs = np.asarray(observations, dtype=np.float32)
        single = obs.ndim == 1
        obs_t = torch.as_tensor(obs.reshape(-1, self.obs_dim), device=self.device)
        networks = self._networks().values()
        modes = [net.training for net in networks]
        for net in networks:
            net.eval()
        try:
            actions = self._sample(obs_t, deterministic, self.generator if generator is None else generator)
        finally:
            for net, mode in zip(networks, modes, strict=True):
                net.train(mode)
        out = actions.to("cpu", torch.int64).numpy()
        return out[0] if single else out

    # --- precision ------------------------------------------------------------------------------
    def _autocast_passes(self) -> dict[str, torch.dtype | None]:
        """The forward passes that may run under autocast, by name, with their dtype (None: float32)."""
        return {}

    @property
    def precision(self) -> str:
        """What runs in which precision, in one line: ``"float32"``, or e.g. ``"bf16 autocast: actor and ASM
        forward passes; critics, values and losses float32"`` (SPIN on CUDA with ``bf16``)."""
        return describe_precision(self._autocast_passes())

    # --- checkpoints ----------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        """Agent-specific plain attributes to checkpoint (e.g. SPIN's pretraining seconds), by attribute name."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def state_dict(self) -> dict[str, Any]:
        """Everything to rebuild and resume this agent; ``torch.load(weights_only=True)``-safe."""
        rng = {"act": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": STATE_FORMAT,
            "agent": self.name,
            "obs_dim": self.obs_dim,
            "nvec": list(self.nvec),
            "seed": self.seed,
            "config": asdict(self.config),
            "step": self.step,
            "networks": {k: v.state_dict() for k, v in self._networks().items()},
            "optimizers": {k: v.state_dict() for k, v in self._optimizers().items()},
            "rng": rng,
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` of the same agent, shapes and config (torch's global RNG included)."""
        if state.get("format") != STATE_FORMAT or state.get("agent") != self.name:
            raise ValueError(
                f"not a {self.name} agent state (format={state.get('format')!r}, agent={state.get('agent')!r})"
            )
        if state["obs_dim"] != self.obs_dim or tuple(state["nvec"]) != self.nvec:
            raise ValueError(
                f"state is for obs_dim={state['obs_dim']} nvec={tuple(state['nvec'])}, "
                f"agent has obs_dim={self.obs_dim} nvec={self.nvec}"
            )
        for k, net in self._networks().items():
            net.load_state_dict(state["networks"][k])
        for k, opt in self._optimizers().items():
            opt.load_state_dict(state["optimizers"][k])
        self.step = int(state["step"])
        self.generator.set_state(state["rng"]["act"].cpu())
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self._load_extra_state(state["extra"])

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(
            p.numel()
            for net in self._networks().values()
            for p in net.parameters()
            if p.requires_grad or not trainable_only
        )
