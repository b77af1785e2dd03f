"""The numba switch, in one place: numba is required; compiled functions are cached on disk in
the user's cache folder (<pafpose cache>/numba), never beside the sources.

numba caches compiled functions (`cache=True`) beside the sources by default; in site-packages
that leaves a `pafpose/__pycache__` behind after an uninstall, which then shadows a later
editable install. A NUMBA_CACHE_DIR set by the user wins. The package imports this module
before any other, so the folder is set before numba reads its configuration.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from .defaults import cache_dir

if not os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir() / "numba")
    if "numba" in sys.modules:  # imported already: its config read the environment before
        sys.modules["numba"].config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]

from numba import njit  # noqa: E402  (after the cache folder is set)


def jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Compile with numba: nopython, cached on disk, the GIL released while it runs."""
    return njit(cache=True, nogil=True)(fn)
