"""What built a dataset: library versions for Minari's ``requirements`` and the metadata."""

from __future__ import annotations

import importlib.metadata
import platform

# Distributions whose versions decide the simulated data (physics, task definitions, env API, this package).
_DATA_PACKAGES = ("mujoco", "dm_control", "gymnasium", "spin-bench")
_OTHER_PACKAGES = ("numpy", "torch", "minari", "h5py")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Versions of python, the platform and every package that touches the data."""
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in _DATA_PACKAGES + _OTHER_PACKAGES:
        out[dist] = _version(dist)
    return out


def requirements() -> list[str]:
    """Pip-style requirements stored in Minari metadata (``recover_environment()`` warns when they are not met).

    MuJoCo and dm_control are pinned exactly (they define the dynamics and rewards); gymnasium and spin-bench need
    at least the building version (the env ids and API); every exact version is also in the metadata.
    """
    v = {d: _version(d) for d in _DATA_PACKAGES}
    reqs = []
    for dist in ("mujoco", "dm_control"):
        if v[dist]:
            reqs.append(f"{dist}=={v[dist]}")
    if v["gymnasium"]:
        major = v["gymnasium"].split(".")[0]
        reqs.append(f"gymnasium>={v['gymnasium']},<{int(major) + 1}")
    if v["spin-bench"]:
        reqs.append(f"spin-bench>={v['spin-bench']}")
    return reqs
