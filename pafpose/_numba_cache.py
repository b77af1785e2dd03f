"""Imported first by the package: numba's on-disk cache goes to <pafpose cache>/numba.

numba caches compiled functions (`cache=True`) beside the sources by default; in site-packages
that leaves a `pafpose/__pycache__` behind after an uninstall, which then shadows a later
editable install. A NUMBA_CACHE_DIR set by the user wins.
"""

from __future__ import annotations

import os
import sys

from .models.fetch import cache_dir

if not os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir() / "numba")
    if "numba" in sys.modules:  # imported already: its config read the environment before
        sys.modules["numba"].config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
