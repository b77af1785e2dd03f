"""OpenCV 4's Caffe importer as the oracle of the Caffe converter, run in its own environment.

OpenCV 5 (the project's) dropped `cv2.dnn.readNetFromCaffe`, so the tests create once, and keep
in the user's cache, a virtual environment with `opencv-python-headless<5` and numpy (from the
package index pip is configured for), and run the oracle there in a subprocess.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

from .conftest import REQUIRE_SHARED

#: The oracle's environment (kept between runs; delete it to rebuild).
ORACLE_ENV = (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
              / "pafpose-test" / "opencv4-caffe")
REQUIREMENTS = ["opencv-python-headless<5", "numpy"]

_SCRIPT = r"""
import json, sys
import cv2, numpy as np
job = json.load(sys.stdin)
net = cv2.dnn.readNetFromCaffe(job["prototxt"], job["caffemodel"])
if hasattr(net, "enableWinograd"):
    net.enableWinograd(False)  # exact convolutions, as the reference
for src, dst in job["pairs"]:
    net.setInput(np.load(src))
    np.save(dst, net.forward())
print(cv2.__version__)
"""


def _python(env: Path) -> Path:
    return env / "bin" / "python"


def _create(env: Path) -> str | None:
    """Build the environment (a file `ready` marks it complete); None, or why not."""
    shutil.rmtree(env, ignore_errors=True)
    try:
        venv.EnvBuilder(with_pip=True).create(env)
        done = subprocess.run(
            [str(_python(env)), "-m", "pip", "install", "-q", *REQUIREMENTS],
            capture_output=True, text=True, timeout=900, check=False)
        if done.returncode:
            return f"pip install {' '.join(REQUIREMENTS)} failed: {done.stderr.strip()[-300:]}"
        check = subprocess.run([str(_python(env)), "-c",
                                "import cv2; cv2.dnn.readNetFromCaffe; print(cv2.__version__)"],
                               capture_output=True, text=True, timeout=120, check=False)
        if check.returncode:
            return f"its OpenCV has no Caffe importer: {check.stderr.strip()[-300:]}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot create {env}: {exc}"
    (env / "ready").write_text(check.stdout)
    return None


def oracle_python() -> Path:
    """The oracle environment's python (created on first use); skips, or fails under
    PAFPOSE_REQUIRE_SHARED_DATA=1, when it cannot be created."""
    if not (ORACLE_ENV / "ready").exists():
        ORACLE_ENV.parent.mkdir(parents=True, exist_ok=True)
        with open(ORACLE_ENV.parent / ".opencv4-caffe.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one creator at a time
            ready = (ORACLE_ENV / "ready").exists()
            problem = None if ready else _create(ORACLE_ENV)
        if problem:
            message = f"OpenCV 4 oracle unavailable: {problem}"
            if REQUIRE_SHARED:
                pytest.fail(message + " (PAFPOSE_REQUIRE_SHARED_DATA=1)")
            pytest.skip(message)
    return _python(ORACLE_ENV)


def opencv_forward(prototxt: Path, caffemodel: Path, inputs: list[np.ndarray],
                   work: Path) -> tuple[list[np.ndarray], str]:
    """OpenCV 4's outputs of a Caffe net for NCHW float32 inputs, and OpenCV's version."""
    pairs = []
    for i, x in enumerate(inputs):
        src, dst = work / f"oracle_in{i}.npy", work / f"oracle_out{i}.npy"
        np.save(src, x.astype(np.float32))
        pairs.append([str(src), str(dst)])
    job = {"prototxt": str(prototxt), "caffemodel": str(caffemodel), "pairs": pairs}
    done = subprocess.run([str(oracle_python()), "-c", _SCRIPT], input=json.dumps(job),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return [np.load(dst) for _, dst in pairs], done.stdout.strip()


if __name__ == "__main__":  # python -m tests.caffe_oracle: build the environment now
    print(oracle_python(), file=sys.stderr)
