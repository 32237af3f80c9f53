"""Pick a headless OpenGL backend for MuJoCo before dm_control is imported.

dm_control chooses its renderer when it is first imported. With no display and no
``MUJOCO_GL`` it tries GLFW first, which prints an X11 warning on every headless
machine. We choose for it instead: EGL where libEGL exists, otherwise rendering off.
An explicit ``MUJOCO_GL`` from the user always wins.
"""

from __future__ import annotations

import ctypes.util
import os
import sys


def configure_headless_rendering() -> None:
    """Set ``MUJOCO_GL`` for headless Linux machines unless the user already set it."""
    if "MUJOCO_GL" in os.environ or not sys.platform.startswith("linux"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    os.environ["MUJOCO_GL"] = "egl" if ctypes.util.find_library("EGL") else "disable"
