"""Mixed precision: which forward passes may run under autocast, and the one-line record of it.

Only the transformer forward passes (the SAINT/SPIN actor's trunk and heads, SPIN's ASM) run in bf16 when a
config asks for it on CUDA: they are most of the compute, and their logits go to a float32 softmax. Critics,
values, TD targets, advantages, AWR weights, log-probabilities and losses stay float32 always: near Q = V = 70,
bf16 keeps 8 significant bits (a step of 0.25-0.5), and exp(beta * (Q - V)) would turn that rounding into AWR
weights off by tens of percent.
"""

from __future__ import annotations

import contextlib

import torch

FLOAT32 = "float32"
"""The record of an agent none of whose forward passes is autocast."""
_SHORT_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16"}


def autocast_dtype(device: torch.device, bf16: bool) -> torch.dtype | None:
    """``torch.bfloat16`` when ``bf16`` is asked for on CUDA; None (float32) otherwise, CPU included."""
    return torch.bfloat16 if bf16 and device.type == "cuda" else None


def autocast_forward(device_type: str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast a forward pass to ``dtype`` on ``device_type``; no autocast (float32) when ``dtype`` is None.

    Any device type works, so tests emulate the CUDA path on CPU with ``torch.bfloat16``.
    """
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


class AutocastForward:
    """Mixin for a module whose forward pass runs under ``autocast_dtype``, which its owner sets.

    The module's outputs are cast back to float32, so nothing downstream sees the low precision.
    """

    autocast_dtype: torch.dtype | None = None
    """Autocast dtype of the forward pass; None: float32."""

    def forward_autocast(self, like: torch.Tensor) -> contextlib.AbstractContextManager:
        """The autocast context for a forward pass on ``like``'s device."""
        return autocast_forward(like.device.type, self.autocast_dtype)


def describe_precision(autocast: dict[str, torch.dtype | None]) -> str:
    """``"float32"``, or e.g. ``"bf16 autocast: actor and ASM forward passes; critics, values and losses float32"``
    for forward passes by name with their autocast dtype (None: float32)."""
    by_dtype: dict[torch.dtype, list[str]] = {}
    for name, dtype in autocast.items():
        if dtype is not None:
            by_dtype.setdefault(dtype, []).append(name)
    if not by_dtype:
        return FLOAT32
    parts = [
        f"{_SHORT_NAMES.get(dtype, str(dtype).removeprefix('torch.'))} autocast: {' and '.join(names)} "
        f"forward pass{'es' if len(names) > 1 else ''}"
        for dtype, names in by_dtype.items()
    ]
    return "; ".join([*parts, "critics, values and losses float32"])
