"""The live window of `pafpose webcam`, on a real X server (Xvfb) driven by real key presses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from pafpose.video.window import open_window, x_display_reachable

from .conftest import MEDIA, need


@pytest.fixture(scope="module", autouse=True)
def _model(thin_pb):
    """Fetch the model before the first subprocess, so no download bar mixes into outputs."""


@pytest.fixture(scope="module")
def xserver(tmp_path_factory):
    """A virtual X display (Xvfb) whose screen is readable as a file; yields (DISPLAY, screen)."""
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: apt-get install xvfb xdotool)")
    try:
        import tkinter  # noqa: F401
    except ImportError:
        gui = [line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
               if line.strip().startswith("GUI:")]
        if not gui or gui[0] == "NONE":
            pytest.skip("this Python has no tkinter and this OpenCV no GUI: no window possible")
    fbdir = tmp_path_factory.mktemp("xvfb")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24",
                               "-fbdir", str(fbdir), "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        server.kill()
        pytest.skip("Xvfb did not start")
    try:
        yield f":{number}", fbdir / "Xvfb_screen0"
    finally:
        server.terminate()
        server.wait(timeout=30)


def read_xwd(path: Path) -> np.ndarray:
    """The screen of an Xvfb frame buffer file (XWD, 32 bits per pixel) as BGR uint8."""
    data = path.read_bytes()
    header = np.frombuffer(data[:100], ">u4")
    size, width, height, bits, stride, colors = (int(header[i]) for i in (0, 4, 5, 11, 12, 19))
    assert bits == 32
    start = size + 12 * colors
    pixels = np.frombuffer(data[start:start + stride * height], np.uint8).reshape(height, stride)
    return pixels[:, :width * 4].reshape(height, width, 4)[:, :, :3].copy()


def xdotool(display: str, *args: str) -> str:
    env = {**os.environ, "DISPLAY": display}
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def test_no_display_means_no_window(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("DISPLAY decides only on Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")  # no X display: neither window can draw
    assert open_window() is None


def run_with_window(display: str, screen: Path, args: list[str], lines: Path,
                    key: str) -> tuple[str, np.ndarray, subprocess.CompletedProcess]:
    """Run a pafpose command that opens a window; once it has written 10 JSON lines, take a
    screenshot and press `key` in the window. Returns the window's geometry, the shot, the run."""
    cmd = [sys.executable, "-m", "pafpose", *args, "--json-output", str(lines)]
    proc = subprocess.Popen(cmd, env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        window, deadline = "", time.monotonic() + 300
        while not window and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            window = xdotool(display, "search", "--name", "^pafpose$").split("\n")[0]
            time.sleep(0.2)
        assert window, "no window named pafpose appeared"
        while time.monotonic() < deadline:  # let some frames be shown
            partial = list(lines.parent.glob(f".{lines.stem}.*.part.jsonl"))
            if partial and partial[0].read_text().count("\n") >= 10:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        geometry = xdotool(display, "getwindowgeometry", window)
        shot = read_xwd(screen)
        xdotool(display, "key", "--window", window, key)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return geometry, shot, subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def test_display_named_but_not_there_means_no_window(monkeypatch):
    """DISPLAY left over from a closed session: no window, and no abort (a GUI build of
    OpenCV aborts the process when its X server is missing)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("X11 displays checked on Linux")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    number = next(n for n in range(900, 1000) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not x_display_reachable(f":{n}"))
    monkeypatch.setenv("DISPLAY", f":{number}")
    assert open_window() is None
    assert not x_display_reachable("nonsense")


def test_running_x_server_is_reachable(xserver):
    display, _ = xserver
    assert x_display_reachable(display)
    assert x_display_reachable(display + ".0")


@pytest.mark.parametrize("key", ["q", "Escape"])
def test_webcam_window_shows_skeletons_and_key_quits(xserver, tmp_path, key):
    display, screen = xserver
    video = need(MEDIA / "vtest.avi")
    lines = tmp_path / "live.jsonl"
    geometry, shot, res = run_with_window(display, screen, ["webcam", "--camera", str(video)],
                                          lines, key)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "no window can be opened" not in res.stderr
    # The window has the video's size and shows its frames, annotated.
    assert "Geometry: 768x576" in geometry
    x, y = (int(v) for v in geometry.split("Position: ")[1].split()[0].split(","))
    shown = shot[y:y + 576, x:x + 768].astype(np.int16)
    cap = cv2.VideoCapture(str(video))
    ok, first = cap.read()
    cap.release()
    assert ok
    # The scene (a static camera): most pixels match the video's first frame closely.
    close = np.abs(shown - first.astype(np.int16)).max(axis=2) < 40
    assert close.mean() > 0.8
    # The FPS counter, pure green in the top-left corner, which the raw frame does not contain.
    green = np.all(shown[:40, :160] == (0, 255, 0), axis=2).sum()
    assert green > 20 and np.all(first[:40, :160] == (0, 255, 0), axis=2).sum() == 0
    # Skeleton limbs: saturated pixels that are not in the raw frame.
    hsv = cv2.cvtColor(shown.astype(np.uint8), cv2.COLOR_BGR2HSV)
    drawn = (hsv[:, :, 1] > 200) & (hsv[:, :, 2] > 200) & ~close
    drawn[:40, :160] = False
    assert drawn.sum() > 300
    # The key stopped a run that would otherwise last the video's 79 s; what ran is on disk.
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert 10 <= len(records) < 795
    assert f"{len(records)} frames in" in res.stdout
    assert any(p["id"] is not None for r in records for p in r["people"])


def test_video_show_window_q_stops_and_keeps_complete_files(xserver, tmp_path):
    display, screen = xserver
    video = need(MEDIA / "vtest.avi")
    out, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    geometry, _, res = run_with_window(
        display, screen, ["video", str(video), "--show", "--track", "--output", str(out)],
        lines, "q")
    assert res.returncode == 0, res.stderr
    assert "Geometry: 768x576" in geometry
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert 10 <= len(records) < 795
    assert [r["frame"] for r in records] == list(range(len(records)))
    cap = cv2.VideoCapture(str(out))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == len(records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.mp4"]


@pytest.mark.parametrize("kind", ["tk", "opencv"])
def test_window_fits_large_frames_on_the_screen(xserver, monkeypatch, kind):
    display, _ = xserver
    tkinter = pytest.importorskip("tkinter")  # Tk also tells the OpenCV window the screen size
    from pafpose.video.window import OpenCVWindow, TkWindow

    monkeypatch.setenv("DISPLAY", display)
    title = f"pafpose-fit-{kind}"
    try:
        window = TkWindow(title) if kind == "tk" else OpenCVWindow(title)
    except tkinter.TclError as exc:
        pytest.skip(f"Tk cannot open the display: {exc}")
    except cv2.error:
        pytest.skip("this OpenCV has no GUI support")
    try:
        frame = np.zeros((1080, 1920, 3), np.uint8)
        cv2.circle(frame, (960, 540), 300, (0, 0, 255), -1)
        ids = []
        for _ in range(20):  # the window may take a few events to be mapped
            assert window.show(frame)
            ids = xdotool(display, "search", "--name", f"^{title}$").split()
            if ids:
                break
            time.sleep(0.1)
        assert ids
        geometry = xdotool(display, "getwindowgeometry", ids[0])
        w, h = (int(v) for v in geometry.split("Geometry: ")[1].split("x"))
        assert w <= 1024 * 0.9 and h <= 768 * 0.9  # the Xvfb screen is 1024x768
        assert w == int(1920 * min(921 / 1920, 691 / 1080))
        assert abs(w / h - 16 / 9) < 0.01
    finally:
        window.close()
        window.close()  # twice is fine
