"""SPIN (Landers et al., ICLR 2026): Structured Policy INitialization for large discrete action spaces.

Stage 1 (``pretrain``): an Action Structure Model (ASM) learns how sub-actions co-occur in the dataset by masked
action modelling, without rewards. The ASM reads [state token, a_1 .. a_N] where a_i comes from dimension i's own
embedding table of m_i + 1 rows (row m_i is [MASK]), and predicts the selected sub-actions (BERT-style: select each
token with probability 0.15; of those, 80% become [MASK], 10% a random bin, 10% stay). Pretraining is deterministic
given the seed, so a finished ASM is cached under a key of (dataset content, nvec, seed, ASM config, forward-pass
precision) together with the seconds it took, which time-to-target figures include.

Stage 2 (``update``): the SAINT actor gets a copy of the ASM's state encoder and self-attention blocks,
frozen; only its N slot vectors and per-dimension heads train, with IQL and a factorized critic
(``spin_bench.agents.iql``). SAINT (``baselines.saint``) is the same actor trained from scratch.

The transformer blocks both stages share are in ``spin_bench.agents.transformer``. Forward passes of the ASM and
the actor run under bf16 autocast on CUDA when ``cfg.bf16``; the masked-modelling loss and everything IQL computes
are float32 always.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spin_bench.agents.base import adam, maybe_compile, seeded
from spin_bench.agents.config import TransformerActorConfig, require
from spin_bench.agents.iql import IQLAgent
from spin_bench.agents.layers import short_log_softmax
from spin_bench.agents.policies import FactorizedActor
from spin_bench.agents.precision import AutocastForward, autocast_dtype
from spin_bench.agents.transformer import PerDimHeads, TokenTrunk

__all__ = ["SAINTActor", "SPINAgent", "SPINConfig"]


@dataclass(frozen=True)
class SPINConfig(TransformerActorConfig):
    """SPIN: pretrain an Action Structure Model (ASM) on the dataset's actions, then train the SAINT actor's
    slots and heads with IQL on top of the ASM's frozen state encoder and blocks.

    The ASM has the actor's shape (``d_model`` ... ``head_hidden``, ``dropout`` above) so that its trunk can be
    copied; the fields below configure its masked action modelling.
    """

    asm_epochs: float = 100.0
    """ASM pretraining length in epochs of ceil(|D| / asm_batch_size) steps (fractions allowed)."""
    asm_steps: int | None = None
    """ASM pretraining length in steps, overriding ``asm_epochs`` when set (budgets that ignore |D|)."""
    asm_batch_size: int = 1024
    """Transitions per ASM step."""
    asm_lr: float = 4e-4
    """Adam learning rate of the ASM (constant)."""
    asm_grad_clip: float = 1.0
    """Global gradient-norm clip of the ASM."""
    mask_prob: float = 0.15
    """Probability that a sub-action token is selected for prediction (at least one per batch)."""
    mask_token_frac: float = 0.8
    """Of the selected tokens, the fraction replaced by [MASK]."""
    random_token_frac: float = 0.1
    """Of the selected tokens, the fraction replaced by a uniform random bin (the rest stay unchanged)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.asm_epochs > 0, "asm_epochs", self.asm_epochs, "> 0")
        require(self.asm_steps is None or self.asm_steps >= 1, "asm_steps", self.asm_steps, ">= 1, or none")
        require(self.asm_batch_size >= 1, "asm_batch_size", self.asm_batch_size, ">= 1")
        require(self.asm_lr > 0, "asm_lr", self.asm_lr, "> 0")
        require(self.asm_grad_clip > 0, "asm_grad_clip", self.asm_grad_clip, "> 0")
        require(0 < self.mask_prob <= 1, "mask_prob", self.mask_prob, "in (0, 1]")
        require(0 <= self.mask_token_frac <= 1, "mask_token_frac", self.mask_token_frac, "in [0, 1]")
        require(0 <= self.random_token_frac <= 1, "random_token_frac", self.random_token_frac, "in [0, 1]")
        require(
            self.mask_token_frac + self.random_token_frac <= 1,
            "random_token_frac",
            self.random_token_frac,
            f"<= 1 - mask_token_frac = {1 - self.mask_token_frac:g}",
        )


# --- stage 1: the Action Structure Model, pretrained by masked action modelling ---------------------------------------

CACHE_FORMAT = "spin-bench/asm-v2"
# The SPINConfig fields the ASM depends on (its shape and its pretraining); nothing of stage 2.
ASM_FIELDS = (
    "d_model",
    "num_heads",
    "num_blocks",
    "ffn_mult",
    "dropout",
    "head_hidden",
    "asm_epochs",
    "asm_steps",
    "asm_batch_size",
    "asm_lr",
    "asm_grad_clip",
    "mask_prob",
    "mask_token_frac",
    "random_token_frac",
)


class ActionStructureModel(AutocastForward, nn.Module):
    """Predicts every sub-action from the state and the (partly masked) other sub-actions.

    The forward pass runs under ``autocast_dtype`` (set by whoever trains it); the logits come out float32.
    """

    def __init__(self, obs_dim: int, nvec: Sequence[int], cfg: TransformerActorConfig):
        super().__init__()
        self.nvec = tuple(int(m) for m in nvec)
        self.trunk = TokenTrunk(obs_dim, cfg)
        # N tables of m_i + 1 rows stored as one table; row offsets[i] + m_i is dimension i's [MASK].
        sizes = torch.tensor(self.nvec) + 1
        self.embedding = nn.Embedding(int(sizes.sum()), cfg.d_model)
        self.register_buffer("offsets", torch.cumsum(sizes, 0) - sizes, persistent=False)
        self.register_buffer("mask_ids", torch.tensor(self.nvec), persistent=False)
        self.heads = PerDimHeads(self.nvec, cfg.d_model, cfg.head_hidden, cfg.dropout)

    def forward(self, obs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, max_m) logits for (B, obs_dim) states and (B, N) token ids (bin index or m_i for [MASK])."""
        with self.forward_autocast(obs):
            return self.heads(self.trunk(obs, self.embedding(tokens + self.offsets)))


def mask_actions(
    actions: torch.Tensor, nvec: torch.Tensor, cfg: SPINConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style corruption of (B, N) actions: returns (input token ids, selected-for-loss mask).

    Vectorized and free of host syncs: "at least one selected" ORs in one random position only when the
    Bernoulli draw selected none.
    """
    batch, n = actions.shape
    device = actions.device
    selected = torch.rand(batch, n, generator=generator, device=device) < cfg.mask_prob
    fallback = torch.zeros(batch * n, dtype=torch.bool, device=device)
    fallback[torch.randint(batch * n, (1,), generator=generator, device=device)] = True
    selected |= fallback.view(batch, n) & ~selected.any()
    fate = torch.rand(batch, n, generator=generator, device=device)
    random_bins = (torch.rand(batch, n, generator=generator, device=device) * nvec).long()
    to_mask = selected & (fate < cfg.mask_token_frac)
    to_random = selected & (fate >= cfg.mask_token_frac) & (fate < cfg.mask_token_frac + cfg.random_token_frac)
    inputs = torch.where(to_mask, nvec.expand(batch, n), torch.where(to_random, random_bins, actions))
    return inputs, selected


def masked_modelling_loss(logits: torch.Tensor, actions: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the selected tokens."""
    ce = -short_log_softmax(logits).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return (ce * selected).sum() / selected.sum()


@torch.no_grad()
def masked_accuracy(
    model: ActionStructureModel, obs: torch.Tensor, actions: torch.Tensor, selected: torch.Tensor
) -> float:
    """Accuracy of the argmax prediction on ``selected`` tokens, all of them replaced by [MASK] (eval mode)."""
    training = model.training
    model.eval()
    try:
        inputs = torch.where(selected, model.mask_ids.expand_as(actions), actions)
        predicted = model(obs, inputs).argmax(-1)
    finally:
        model.train(training)
    return float((predicted == actions)[selected].float().mean())


def dataset_fingerprint(observations: np.ndarray, actions: np.ndarray) -> str:
    """sha256 of what the ASM sees (observations and actions, with shapes and dtypes)."""
    digest = hashlib.sha256()
    for array in (observations, actions):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def asm_cache_key(
    fingerprint: str, nvec: Sequence[int], seed: int, cfg: SPINConfig, forward_dtype: torch.dtype | None
) -> str:
    """sha256 of everything the ASM's weights depend on, the precision of its forward pass included."""
    fields = {name: getattr(cfg, name) for name in ASM_FIELDS}
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "data": fingerprint,
            "nvec": list(nvec),
            "seed": seed,
            "config": fields,
            "autocast": str(forward_dtype),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class PretrainRecord:
    """What one ASM pretraining did (also what the cache stores beside the weights)."""

    key: str
    """Cache key: sha256 of (dataset fingerprint, nvec, seed, ASM config, forward-pass autocast dtype)."""
    seconds: float
    """Wall-clock seconds of the pretraining itself (also when the weights came from the cache)."""
    steps: int
    """ASM gradient steps."""
    epoch_losses: tuple[float, ...]
    """Mean masked-modelling loss per (whole or partial) epoch."""
    cached: bool
    """Whether this call loaded the weights instead of training."""


def pretrain_asm(
    observations: torch.Tensor,
    actions: torch.Tensor,
    nvec: Sequence[int],
    cfg: SPINConfig,
    seed: int,
    after_step: Callable[[int, ActionStructureModel], None] | None = None,
) -> tuple[ActionStructureModel, float, int, list[float]]:
    """Train an ASM on device tensors; returns (model, seconds, steps, per-epoch mean losses).

    The forward pass runs under ``autocast_dtype(device, cfg.bf16)``; the loss is float32. ``after_step(done,
    model)`` is called after each step with the steps done so far (measurements such as held-out accuracy; it
    must leave the model's weights, mode and the global RNG as it found them).
    """
    device = observations.device
    size = observations.shape[0]
    steps_per_epoch = math.ceil(size / cfg.asm_batch_size)
    steps = cfg.asm_steps if cfg.asm_steps is not None else max(1, math.ceil(cfg.asm_epochs * steps_per_epoch))
    nvec_t = torch.tensor(list(nvec), device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    start = time.perf_counter()
    with seeded(seed, device):  # init and dropout: same seed, same ASM, whatever the caller's RNG
        model = ActionStructureModel(observations.shape[1], nvec, cfg).to(device)
        model.autocast_dtype = autocast_dtype(device, cfg.bf16)
        optimizer = adam(model.parameters(), cfg.asm_lr, device)
        forward = maybe_compile(model, cfg.compile, device)
        epoch_losses, running = [], torch.zeros((), device=device)
        for step in range(steps):
            index = torch.randint(size, (cfg.asm_batch_size,), generator=generator, device=device)
            obs, target = observations[index], actions[index].long()
            inputs, selected = mask_actions(target, nvec_t, cfg, generator)
            loss = masked_modelling_loss(forward(obs, inputs), target, selected)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.asm_grad_clip)
            optimizer.step()
            running += loss.detach()
            if after_step is not None:
                after_step(step + 1, model)
            if (step + 1) % steps_per_epoch == 0 or step + 1 == steps:  # one host sync per epoch
                epoch_losses.append(running.item() / ((step % steps_per_epoch) + 1))
                running.zero_()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return model, time.perf_counter() - start, steps, epoch_losses


def load_or_pretrain_asm(
    transitions,
    cfg: SPINConfig,
    seed: int,
    device: torch.device,
    cache_dir: str | Path | None = None,
) -> tuple[ActionStructureModel, PretrainRecord]:
    """The ASM for ``transitions``: from ``cache_dir`` (``~`` expanded) when this (data, nvec, seed, config,
    precision) was trained before."""
    nvec = tuple(int(m) for m in transitions.nvec)
    forward_dtype = autocast_dtype(device, cfg.bf16)
    fingerprint = dataset_fingerprint(transitions.observations, transitions.actions)
    key = asm_cache_key(fingerprint, nvec, seed, cfg, forward_dtype)
    path = Path(cache_dir).expanduser() / f"asm-{key[:24]}.pt" if cache_dir is not None else None
    if path is not None and path.exists():
        payload = torch.load(path, map_location=device, weights_only=True)
        if payload.get("format") == CACHE_FORMAT and payload.get("key") == key:
            with seeded(seed, device):  # a cache hit leaves the caller's RNG where a miss leaves it
                model = ActionStructureModel(transitions.obs_dim, nvec, cfg).to(device)
            model.autocast_dtype = forward_dtype
            model.load_state_dict(payload["state_dict"])
            record = PretrainRecord(key, payload["seconds"], payload["steps"], tuple(payload["epoch_losses"]), True)
            return model, record
    observations = torch.as_tensor(transitions.observations, dtype=torch.float32, device=device)
    actions = torch.as_tensor(transitions.actions, device=device)
    model, seconds, steps, epoch_losses = pretrain_asm(observations, actions, nvec, cfg, seed)
    record = PretrainRecord(key, seconds, steps, tuple(epoch_losses), False)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CACHE_FORMAT,
            "key": key,
            "config": {name: getattr(cfg, name) for name in ASM_FIELDS},
            "autocast": str(forward_dtype),
            "nvec": list(nvec),
            "seed": seed,
            "seconds": seconds,
            "steps": steps,
            "epoch_losses": list(epoch_losses),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        }
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        torch.save(payload, tmp)
        tmp.replace(path)  # atomic: a concurrent reader sees the whole file or none
    return model, record


# --- stage 2: the SAINT actor on the ASM's frozen trunk, trained with IQL ---------------------------------------------


class SAINTActor(AutocastForward, FactorizedActor):
    """pi(a | s) = prod_i pi_i(a_i | z_i): the state token and N learned slots through the trunk, then heads.

    SAINT trains everything; SPIN loads the trunk from its ASM and trains only ``slots`` and ``heads``.
    Trunk and heads run under ``autocast_dtype`` (set by the agent); the logits come out float32.
    """

    def __init__(self, obs_dim: int, nvec: Sequence[int], cfg: TransformerActorConfig):
        super().__init__(nvec)
        self.trunk = TokenTrunk(obs_dim, cfg)
        self.slots = nn.Parameter(torch.randn(len(self.nvec), cfg.d_model))
        self.heads = PerDimHeads(self.nvec, cfg.d_model, cfg.head_hidden, cfg.dropout)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        slots = self.slots.unsqueeze(0).expand(obs.shape[0], -1, -1)
        with self.forward_autocast(obs):
            return self.heads(self.trunk(obs, slots))


class SPINAgent(IQLAgent):
    name = "spin"
    config: SPINConfig
    config_class = SPINConfig

    def __init__(self, obs_dim, nvec, config=None, device="cpu", seed=0):
        super().__init__(obs_dim, nvec, config, device, seed)
        self.pretrain_seconds = 0.0
        """Wall-clock seconds of the ASM pretraining behind this agent (cached runs report the original)."""
        self.asm_key = ""
        """Cache key of the ASM whose trunk the actor holds; empty before ``pretrain``."""
        self.pretrain_record: PretrainRecord | None = None
        """What this process's ``pretrain`` did (steps, per-epoch losses, cache hit); not checkpointed."""

    def build_actor(self) -> SAINTActor:
        actor = SAINTActor(self.obs_dim, self.nvec, self.config)
        actor.trunk.requires_grad_(False)  # before the optimizer is built: it only ever sees slots and heads
        return actor

    @property
    def pretrained(self) -> bool:
        return bool(self.asm_key)

    def pretrain(self, transitions, cache_dir: str | Path | None = None) -> float:
        """Train (or load from ``cache_dir``, ``~`` expanded) the ASM and copy its trunk into the actor; returns
        its seconds.

        A no-op returning the recorded seconds when the actor already holds an ASM (e.g. after
        ``load_state_dict`` of a stage-2 checkpoint).
        """
        if self.pretrained:
            return self.pretrain_seconds
        if transitions.obs_dim != self.obs_dim or tuple(int(m) for m in transitions.nvec) != self.nvec:
            raise ValueError(
                f"dataset has obs_dim={transitions.obs_dim} nvec={tuple(transitions.nvec)}, "
                f"agent has obs_dim={self.obs_dim} nvec={self.nvec}"
            )
        asm, record = load_or_pretrain_asm(transitions, self.config, self.seed, self.device, cache_dir)
        self.actor.trunk.load_state_dict(asm.trunk.state_dict())
        self.pretrain_seconds, self.asm_key = record.seconds, record.key
        self.pretrain_record = record
        return record.seconds

    def update(self, batch):
        if not self.pretrained:
            raise RuntimeError("SPIN trains on a pretrained ASM: call agent.pretrain(transitions, cache_dir) first")
        return super().update(batch)

    def _autocast_passes(self) -> dict[str, torch.dtype | None]:
        # The ASM's pretraining follows the same rule as the actor (its cache key records the dtype).
        return {**super()._autocast_passes(), "ASM": autocast_dtype(self.device, self.config.bf16)}

    def _extra_state(self) -> dict[str, Any]:
        return {"pretrain_seconds": self.pretrain_seconds, "asm_key": self.asm_key}
