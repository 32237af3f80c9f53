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


def host_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, logical CPUs this process may use, torch's intra-op threads (as set for the run) and, for a CUDA
    ``device``, the GPU's name."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS, Windows)
        usable = os.cpu_count() or 1
    info = {"cpu_model": cpu_model(), "logical_cpus": usable, "torch_threads": torch.get_num_threads()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu_model"] = torch.cuda.get_device_name(torch.device(device))
    return info
