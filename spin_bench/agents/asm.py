"""SPIN stage 1: the Action Structure Model (ASM) and its masked action modelling, with a cache.

The ASM reads [state token, a_1 .. a_N] where a_i comes from dimension i's own embedding table of m_i + 1
rows (row m_i is [MASK]), and predicts the selected sub-actions (BERT-style: select each token with
probability 0.15; of those, 80% become [MASK], 10% a random bin, 10% stay). No rewards are used.

Pretraining is deterministic given the seed, so a finished ASM is cached under a key of (dataset content,
nvec, seed, ASM config, forward-pass precision) together with the seconds it took, which time-to-target
figures include. The forward pass runs under bf16 autocast on CUDA when ``cfg.bf16``; the masked-modelling
loss is float32 always.
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

import numpy as np
import torch
from torch import nn

from spin_bench.agents.base import adam, maybe_compile, seeded
from spin_bench.agents.config import SAINTConfig, SPINConfig
from spin_bench.agents.layers import short_log_softmax
from spin_bench.agents.precision import AutocastForward, autocast_dtype
from spin_bench.agents.transformer import PerDimHeads, TokenTrunk

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

    def __init__(self, obs_dim: int, nvec: Sequence[int], cfg: SAINTConfig):
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
