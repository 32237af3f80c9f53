"""The machine a run trains on, as its config.json records it (reports name it beside timings)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux: /proc/cpuinfo's ``model name``), else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:  # not Linux, or no procfs: platform's answer below
        pass
    return platform.processor() or platform.machine() or "unknown"


_VECTOR_FLAGS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sve", "SVE"), ("asimd", "NEON"))
"""/proc/cpuinfo flags, widest first, and the name a report gives them."""


def cpu_vector_extension(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The widest vector extension the CPU reports (Linux: /proc/cpuinfo's ``flags`` or ``Features``), e.g.
    ``AVX-512``, ``AVX2`` or ``NEON``; None when unknown. Two CPUs of one model name can differ here (an AMD EPYC
    with and without AVX-512), and with it torch's speed and the last bits of float32 kernels."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return next((name for flag, name in _VECTOR_FLAGS if flag in flags), None)


def host_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, logical CPUs this process may use, torch's intra-op threads (as set for the run) and, for a CUDA
    ``device``, the GPU's name."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS, Windows)
        usable = os.cpu_count() or 1
    info = {"cpu_model": cpu_model(), "logical_cpus": usable, "torch_threads": torch.get_num_threads()}
    vector = cpu_vector_extension()
    if vector is not None:
        info["cpu_vector_extension"] = vector
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu_model"] = torch.cuda.get_device_name(torch.device(device))
    return info
