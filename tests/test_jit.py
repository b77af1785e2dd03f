"""jit: numba required, its cache in the user cache folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_numba_cache_goes_under_pafpose_home(tmp_path):
    """numba's cache files land in $PAFPOSE_HOME/numba, none beside the package's sources."""
    import os

    import pafpose

    package = Path(pafpose.__file__).parent
    before = set(package.rglob("*.nbi")) | set(package.rglob("*.nbc"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PAFPOSE_HOME"] = str(tmp_path)
    code = ("import importlib; import numpy as np\n"
            "sorting = importlib.import_module(\"pafpose.decode.sorting\")\n"
            "order = sorting.argsort_desc(np.array([0.2, 0.9, 0.5]), 3)\n"
            "assert list(order) == [1, 2, 0], order\n"
            "import numba; print(numba.config.CACHE_DIR)")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(tmp_path / "numba")
    assert {p.suffix for p in (tmp_path / "numba").rglob("*")} >= {".nbi", ".nbc"}
    assert set(package.rglob("*.nbi")) | set(package.rglob("*.nbc")) == before
