"""pafpose.ros: image messages to BGR, the topic as a live source, the node's parameters and
people message; then the ROS 1 node end to end, with a real roscore on 127.0.0.1 and frames of
vtest.avi (tests/ros_client.py publishes them from its own process). Without ROS 1 (Debian's
python3-rospy and ros-core) those skip with a reason; where CI installs them (root, apt, the
shared data required) they fail instead."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from pafpose.errors import ImageTooLargeError, InputError
from pafpose.human import Human
from pafpose.ros import MessageError, NodeSettings, TopicSource, message_to_bgr, people_record
from pafpose.ros.core import STAMP_GAP, StampClock, StampedFrame
from pafpose.track import Person
from pafpose.video.pipeline import FrameResult

from .conftest import MEDIA, REQUIRE_SHARED, ROOT, need

FRAMES = 20


def image_msg(image: np.ndarray, encoding: str, step: int | None = None, bigendian: bool = False,
              k: int = 0) -> SimpleNamespace:
    """A sensor_msgs/Image's fields (the core reads messages by field names)."""
    h, w = image.shape[:2]
    row = image[0].nbytes
    step = step or row
    data = np.zeros((h, step), np.uint8)
    data[:, :row] = image.reshape(h, -1).view(np.uint8)
    data[:, row:] = 77  # row padding: must be ignored
    header = SimpleNamespace(stamp=SimpleNamespace(secs=100 + k, nsecs=5), frame_id=f"f{k}")
    return SimpleNamespace(header=header, encoding=encoding, width=w, height=h, step=step,
                           is_bigendian=int(bigendian), data=data.tobytes())


def stamp_of(msg: SimpleNamespace) -> tuple[int, int, str]:
    return msg.header.stamp.secs, msg.header.stamp.nsecs, msg.header.frame_id


@pytest.fixture(scope="module")
def bgr() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)


def test_every_encoding_gives_the_bgr_pixels(bgr):
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    gray3 = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    wide = gray.astype(np.uint16) * 257  # high byte = gray
    cases = {
        "bgr8": (bgr, bgr), "rgb8": (bgr[:, :, ::-1].copy(), bgr),
        "bgra8": (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), bgr),
        "rgba8": (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA), bgr), "mono8": (gray, gray3),
    }
    for encoding, (pixels, expected) in cases.items():
        for step in (None, pixels[0].nbytes + 3):
            out = message_to_bgr(image_msg(pixels, encoding, step))
            assert out.dtype == np.uint8 and out.shape == (6, 9, 3), encoding
            assert np.array_equal(out, expected), (encoding, step)
            out[0, 0] = 0  # writable, not the message's buffer
    little = message_to_bgr(image_msg(wide.astype("<u2"), "mono16"))
    big = message_to_bgr(image_msg(wide.astype(">u2"), "mono16", bigendian=True))
    assert np.array_equal(little, gray3) and np.array_equal(big, gray3)


@pytest.mark.parametrize("change, words", [
    ({"encoding": "yuv422"}, "unsupported image encoding 'yuv422'"),
    ({"encoding": "16UC1"}, "unsupported image encoding"),
    ({"data": b"\0" * 10}, "data holds 10 bytes, step 27 x height 6 = 162 expected"),
    ({"step": 20, "data": b"\0" * 120}, "step 20 is shorter than a row (27 bytes)"),
    ({"width": 0, "data": b""}, "empty bgr8 image (0x6)"),
])
def test_an_unusable_image_message_is_refused_in_one_line(bgr, change, words):
    msg = image_msg(bgr, "bgr8")
    vars(msg).update(change)
    with pytest.raises(MessageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        message_to_bgr(msg)


def test_a_huge_image_message_is_refused_before_reading_its_data():
    msg = SimpleNamespace(encoding="bgr8", width=100_000, height=100_000, step=300_000,
                          is_bigendian=0, data=b"")
    with pytest.raises(ImageTooLargeError, match="above the pixel limit"):
        message_to_bgr(msg)


def test_compressed_images_jpeg_and_png():
    frame = cv2.imread(str(need(MEDIA / "messi5.jpg")))
    for suffix, fmt in ((".jpg", "jpeg"), (".png", "bgr8; png compressed bgr8")):
        data = cv2.imencode(suffix, frame)[1].tobytes()
        out = message_to_bgr(SimpleNamespace(format=fmt, data=data))
        assert out.shape == frame.shape
        assert np.abs(out.astype(int) - frame).mean() < 3
    for fmt, data, words in (("jpeg", b"", "without data"), ("jpeg", b"nonsense", "not an image"),
                             ("16UC1; compressedDepth png", b"x", "depth map")):
        with pytest.raises(MessageError, match=words):
            message_to_bgr(SimpleNamespace(format=fmt, data=data))


def test_the_source_yields_the_newest_message_and_skips_bad_ones(bgr):
    bad: list[str] = []
    source = TopicSource("/cam", stamp_of, on_bad=lambda m, e: bad.append(str(e)))
    for k in range(3):
        source.put(image_msg(bgr, "bgr8", k=k))
    frames = iter(source)
    first = next(frames)
    assert (first.index, first.stamp, first.frame_id, first.time) == (2, (102, 5), "f2", 0.0)
    assert source.dropped == 2 and np.array_equal(first.image, bgr)
    source.put(image_msg(bgr, "yuv422", k=3))
    threading.Timer(0.3, source.put, [image_msg(bgr, "rgb8", k=5)]).start()
    second = next(frames)  # waits for the message after the bad one
    assert second.frame_id == "f5" and np.array_equal(second.image, bgr[:, :, ::-1])
    assert second.time == pytest.approx(3.0) and source.bad == 1
    assert len(bad) == 1 and "yuv422" in bad[0]
    threading.Timer(0.3, source.close).start()
    assert next(frames, None) is None  # close() ends a waiting iteration


def test_the_rate_drops_frames_that_come_too_soon(bgr):
    source = TopicSource("/cam", stamp_of, rate=4.0)
    frames = iter(source)
    source.put(image_msg(bgr, "bgr8", k=0))
    t0 = time.monotonic()
    assert next(frames).frame_id == "f0"
    source.put(image_msg(bgr, "bgr8", k=1))
    source.put(image_msg(bgr, "bgr8", k=2))
    assert next(frames).frame_id == "f2"  # f1 was replaced while the rate held it back
    assert time.monotonic() - t0 >= 0.24 and source.dropped == 1
    stopped = TopicSource("/cam", stamp_of, stopped=lambda: True)
    stopped.put(image_msg(bgr, "bgr8"))
    assert list(stopped) == []


def test_the_stamp_clock():
    clock = StampClock()
    assert [clock(s, 0.0) for s in (50.0, 50.1, 50.3)] == pytest.approx([0.0, 0.1, 0.3])
    assert clock(10.0, 0.0) == pytest.approx(0.3 + STAMP_GAP)  # a bag played again
    assert clock(10.5, 0.0) == pytest.approx(0.8 + STAMP_GAP)
    assert clock(0.0, 7.0) > 0.8 + STAMP_GAP  # no stamp: its arrival time, never backwards
    arrivals = StampClock()
    assert [arrivals(0.0, t) for t in (3.0, 3.5)] == [0.0, 0.5]


def test_node_settings_from_ros_parameters():
    params = {"image_topic": "/usb_cam/image_raw", "compressed": True, "rate": 5,
              "track": "false", "preset": "fast"}
    settings = NodeSettings().with_params(lambda key, default: params.get(key, default))
    assert settings.topic == "/usb_cam/image_raw/compressed"
    assert (settings.rate, settings.track, settings.preset, settings.model) == (
        5.0, False, "fast", "mobilenet_thin")
    assert NodeSettings(image_topic="image").topic == "image"
    for key, value, words in (("rate", "fast", "~rate: expected frames per second"),
                              ("rate", -1, "~rate"), ("compressed", "yes", "~compressed"),
                              ("backend", "cuda", "~backend: expected one of auto"),
                              ("image_topic", "", "~image_topic")):
        with pytest.raises(InputError, match=words):
            NodeSettings().with_params(lambda k, d, key=key, value=value:
                                       value if k == key else d)


def test_the_people_record():
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[1] = (10, 20, 0.9)
    frame = StampedFrame(4, 0.4, np.zeros((30, 40, 3), np.uint8), stamp=(7, 9), frame_id="cam")
    record = people_record(FrameResult(frame, [Person(3, Human(keypoints, 0.8, (40, 30)))]))
    assert list(record)[:6] == ["stamp", "frame_id", "frame", "time", "size", "people"]
    assert record["stamp"] == {"secs": 7, "nsecs": 9} and record["frame_id"] == "cam"
    assert record["size"] == [40, 30] and record["people"][0]["id"] == 3
    assert record["people"][0]["openpose18"][1] == [10.0, 20.0, 0.9]


# ---- the ROS 1 node with a real roscore -------------------------------------------------------

#: CI installs ROS with apt when it runs as root (.ci/run): there a missing ROS is a failure.
CI_INSTALLS_ROS = REQUIRE_SHARED and shutil.which("apt-get") is not None and os.geteuid() == 0


def _rospy_missing() -> str | None:
    """Why rospy cannot be imported, or None (checked in a subprocess: pytest's own sys.path
    stays as it is)."""
    check = subprocess.run(
        [sys.executable, "-c", "from pafpose.ros.ros1 import import_rospy; import_rospy()"],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    return None if check.returncode == 0 else (check.stderr.strip().splitlines() or ["?"])[-1]


def _ros_missing() -> str | None:
    """Why the node and a roscore cannot run here, or None."""
    if shutil.which("roscore") is None:
        return "roscore not found (Debian package ros-core)"
    return _rospy_missing()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 20) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.fixture(scope="module")
def ros_env(tmp_path_factory):
    """A real roscore on 127.0.0.1 (a free port); yields the environment that reaches it."""
    reason = _ros_missing()
    if reason is not None:
        if CI_INSTALLS_ROS:
            pytest.fail(f"ROS 1 is missing although CI installs it (root, apt): {reason}")
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("ros_home")
    port = _free_port()
    env = {**os.environ, "ROS_MASTER_URI": f"http://127.0.0.1:{port}", "ROS_IP": "127.0.0.1",
           "ROS_HOME": str(home), "PYTHONPATH": os.pathsep.join(
               [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("ROS_HOSTNAME", None)
    log = open(home / "roscore.log", "w")  # noqa: SIM115
    core = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert core.poll() is None, (home / "roscore.log").read_text()
            assert time.monotonic() < deadline, "roscore did not come up"
            time.sleep(0.2)
        yield env
    finally:
        _stop(core)
        log.close()


@pytest.fixture(scope="module")
def nodes(ros_env, tmp_path_factory):
    """Two nodes: /pose reads /cam/image (tracking on), /pose_jpeg /cam/image/compressed."""
    folder = tmp_path_factory.mktemp("nodes")
    started = {}
    for name, args in (("pose", ["_image_topic:=/cam/image"]),
                       ("pose_jpeg", ["--no-track", "_image_topic:=/cam/image",
                                      "_compressed:=true"])):
        out = open(folder / f"{name}.out", "w")  # noqa: SIM115
        err = open(folder / f"{name}.err", "w")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "pafpose.ros", f"__name:={name}", *args],
                                env=ros_env, stdout=out, stderr=err, cwd=ROOT)
        started[name] = SimpleNamespace(proc=proc, out=folder / f"{name}.out",
                                        err=folder / f"{name}.err", files=(out, err))
    yield started
    for node in started.values():
        _stop(node.proc, signal.SIGKILL)
        for f in node.files:
            f.close()


@pytest.fixture(scope="module")
def exchange(nodes, ros_env, tmp_path_factory):
    """What tests/ros_client.py sent and received (one JSON document)."""
    video = need(MEDIA / "vtest.avi")
    folder = tmp_path_factory.mktemp("client")
    with open(folder / "out", "w") as out, open(folder / "err", "w") as err:
        client = subprocess.Popen([sys.executable, str(ROOT / "tests" / "ros_client.py"),
                                   str(video), str(FRAMES)], env=ros_env, stdout=out,
                                  stderr=err, cwd=ROOT)
        deadline = time.monotonic() + 300
        try:  # a node that ends (a bad argument, a crash) fails the test at once, with its log
            while client.poll() is None and time.monotonic() < deadline and all(
                    node.proc.poll() is None for node in nodes.values()):
                time.sleep(0.2)
        finally:
            client.kill()
            client.wait()
    logs = {n: (node.out.read_text() + node.err.read_text()) for n, node in nodes.items()}
    assert client.returncode == 0, ((folder / "err").read_text()[-3000:], logs)
    return json.loads((folder / "out").read_text())


BASE = 1_700_000_000


def test_each_frame_is_answered_with_its_stamp_and_frame_id(exchange):
    replies = exchange["replies"]
    assert len(replies) == FRAMES and all(replies)
    for k, record in enumerate(replies):
        assert record["stamp"] == {"secs": BASE + k // 10, "nsecs": k % 10 * 10**8 + k}
        assert record["frame_id"] == f"cam{k}" and record["size"] == [768, 576]
        assert record["people"], f"no people in frame {k}"
        for person in record["people"]:
            assert len(person["openpose18"]) == 18 and len(person["coco17"]) == 17
    times = [r["time"] for r in replies]
    assert times == pytest.approx([k / 10 for k in range(FRAMES)], abs=1e-3)  # by the stamps
    ids = [p["id"] for r in replies[2:] for p in r["people"]]
    assert sum(i is not None for i in ids) >= len(ids) / 2  # tracking is on
    steady = max(set(ids) - {None}, key=ids.count)  # the man walking to the sign post
    assert ids.count(steady) >= FRAMES // 2


def test_the_annotated_image_carries_the_stamp_and_the_skeletons(exchange):
    drawn = {a["frame_id"]: a for a in exchange["annotated"]}
    for k, record in enumerate(exchange["replies"]):
        a = drawn[f"cam{k}"]
        assert a["stamp"] == [record["stamp"]["secs"], record["stamp"]["nsecs"]]
        assert (a["encoding"], a["size"]) == ("bgr8", [768, 576])
        assert a["drawn"] > 500  # pixels changed by the skeletons and ids


def test_bad_frames_get_a_log_line_and_the_node_keeps_running(exchange, nodes):
    yuv, short = exchange["bad"]
    assert yuv and "unsupported image encoding 'yuv422'" in yuv["msg"], exchange["bad"]
    assert short and "data holds" in short["msg"] and yuv["level"] == 4  # WARN
    after = exchange["after_bad"]
    assert after and after["frame_id"] == f"cam{FRAMES + 2}" and after["people"]
    assert nodes["pose"].proc.poll() is None


def test_a_compressed_jpeg_frame_is_answered(exchange):
    record = exchange["jpeg"]
    assert record and record["frame_id"] == f"cam{FRAMES + 3}" and record["people"]
    assert all(p["id"] is None for p in record["people"])  # that node runs with --no-track


def test_stale_frames_are_dropped_and_the_newest_is_answered(exchange):
    burst = exchange["burst"]
    sent, answered = [tuple(s) for s in burst["sent"]], [tuple(s) for s in burst["answered"]]
    assert burst["last"] and answered[-1] == sent[-1]
    assert len(answered) < len(sent) and answered == sorted(answered)


def test_the_node_stops_on_sigint_with_a_summary(exchange, nodes):
    node = nodes["pose"]
    assert _stop(node.proc) == 0
    log = node.out.read_text() + node.err.read_text()
    assert "pafpose: reading /cam/image (sensor_msgs/Image)" in log
    assert "frames answered of" in log and "Traceback" not in log


def test_a_bad_parameter_is_one_line_and_exit_2(ros_env):
    res = subprocess.run([sys.executable, "-m", "pafpose.ros", "__name:=bad", "_rate:=fast"],
                         env=ros_env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        "pafpose: error: ROS parameter ~rate: expected frames per second from 0 (no limit) "
        "to 1000, got 'fast'")


def test_without_a_master_the_node_says_so_in_one_line():
    uri = f"http://127.0.0.1:{_free_port()}"
    res = subprocess.run([sys.executable, "-m", "pafpose", "ros"], capture_output=True,
                         text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "ROS_MASTER_URI": uri})
    assert res.returncode == 2 and res.stdout == ""
    (line,) = res.stderr.strip().splitlines()
    if _rospy_missing() is None:
        assert line == f"pafpose: error: no ROS master at {uri}: start roscore, or set " \
                       "ROS_MASTER_URI"
    else:  # without rospy: how to install it
        assert line.startswith("pafpose: error: rospy")
