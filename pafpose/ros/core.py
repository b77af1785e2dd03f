"""The ROS-independent part of the ROS node: image messages to BGR, a topic as a live video
Source (newest frame only), the node's parameters and its people message. No rospy here.

sensor_msgs/Image and CompressedImage have the same fields in ROS 1 and ROS 2 (`encoding`,
`width`, `height`, `step`, `is_bigendian`, `data`; `format`, `data`), so they are read by
name; only the header's stamp differs, and the adapter passes a function that reads it.
Frames go through the video pipeline (`pafpose.video.iter_poses`): the same estimator,
tracker and drawing as `pafpose webcam`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..defaults import DEFAULT_MODEL
from ..errors import ImageError, InputError
from ..images import DEFAULT_MAX_PIXELS, check_pixels, decode_image
from ..precision import DEFAULT_PRECISION, PRECISION_CHOICES
from ..presets import DEFAULT_PRESET
from ..video.pipeline import FrameResult
from ..video.sources import DEFAULT_FPS, Frame, Source
from ..video.writers import frame_record

#: Raw image encodings understood: name -> (channels, little-endian dtype, OpenCV conversion
#: to BGR or None). 16-bit images keep their high byte, as 16-bit files do (images.to_bgr8).
ENCODINGS: dict[str, tuple[int, str, int | None]] = {
    "bgr8": (3, "<u1", None),
    "rgb8": (3, "<u1", cv2.COLOR_RGB2BGR),
    "bgra8": (4, "<u1", cv2.COLOR_BGRA2BGR),
    "rgba8": (4, "<u1", cv2.COLOR_RGBA2BGR),
    "mono8": (1, "<u1", cv2.COLOR_GRAY2BGR),
    "mono16": (1, "<u2", cv2.COLOR_GRAY2BGR),
}

#: Seconds counted between two frames whose stamps do not increase (a bag played again).
STAMP_GAP = 1.0 / DEFAULT_FPS

#: (secs, nsecs, frame_id) of a message's header.
Stamp = tuple[int, int, str]


class MessageError(ImageError):
    """An image message that cannot be used: unknown encoding, sizes that disagree, bad data."""


def raw_to_bgr(encoding: str, width: int, height: int, step: int, data: bytes,
               is_bigendian: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/Image's pixels as BGR uint8; MessageError when the fields disagree."""
    if encoding not in ENCODINGS:
        raise MessageError(f"unsupported image encoding {encoding!r} (pafpose reads "
                           f"{', '.join(ENCODINGS)} and CompressedImage)")
    channels, dtype, conversion = ENCODINGS[encoding]
    if width <= 0 or height <= 0:
        raise MessageError(f"empty {encoding} image ({width}x{height})")
    check_pixels((width, height), max_pixels)
    row = width * channels * np.dtype(dtype).itemsize
    if step < row:
        raise MessageError(f"{encoding} image {width}x{height}: step {step} is shorter than "
                           f"a row ({row} bytes)")
    if len(data) != step * height:
        raise MessageError(f"{encoding} image {width}x{height}: data holds {len(data)} bytes, "
                           f"step {step} x height {height} = {step * height} expected")
    rows = np.frombuffer(data, np.uint8).reshape(height, step)[:, :row]
    pixels = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(
        ">" if is_bigendian else "<")).reshape(height, width, channels)
    if pixels.dtype.itemsize == 2:
        pixels = (pixels >> 8).astype(np.uint8)
    if conversion is None:
        return pixels.copy()  # writable, and free of the message's buffer
    return cv2.cvtColor(pixels, conversion)


def compressed_to_bgr(fmt: str, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/CompressedImage (JPEG, PNG, ...) as BGR uint8; MessageError if unusable."""
    if "compresseddepth" in fmt.lower():
        raise MessageError(f"CompressedImage format {fmt!r} is a depth map, not a camera image")
    if not data:
        raise MessageError("CompressedImage without data")
    try:
        return decode_image(bytes(data), max_pixels, orient=False)
    except ImageError as exc:
        raise MessageError(f"CompressedImage ({fmt or 'no format'}): {exc}") from None


def message_to_bgr(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An Image or CompressedImage message (ROS 1 or 2, read by field names) as BGR uint8."""
    if hasattr(msg, "format"):
        return compressed_to_bgr(msg.format, msg.data, max_pixels)
    return raw_to_bgr(msg.encoding, msg.width, msg.height, msg.step, msg.data,
                      bool(msg.is_bigendian), max_pixels)


@dataclass(frozen=True)
class StampedFrame(Frame):
    """A frame from a topic, with its message's header stamp (secs, nsecs) and frame id."""

    stamp: tuple[int, int] = (0, 0)
    frame_id: str = ""


class StampClock:
    """Frame times in seconds since the first frame, from header stamps (the arrival time when
    a stamp is zero); never decreasing: a stamp that goes back continues STAMP_GAP later."""

    def __init__(self) -> None:
        self.base: float | None = None
        self.last = 0.0

    def __call__(self, stamp: float, arrived: float) -> float:
        """The frame time of a message stamped `stamp` (seconds) that arrived at `arrived`."""
        t = stamp if stamp > 0 else arrived
        if self.base is None:
            self.base = t
            return 0.0
        now = t - self.base
        if now <= self.last:
            now = self.last + STAMP_GAP
            self.base = t - now
        self.last = now
        return now


class TopicSource(Source):
    """An image topic as a live Source: the subscriber callback `put`s messages, iteration
    converts and yields the newest only (older ones are counted in `dropped`), at most `rate`
    frames per second (0: as fast as they are taken). A message that cannot be converted is
    handed to `on_bad(message, error)` and skipped; iteration ends when `stopped()` is true."""

    live = True

    def __init__(self, name: str, stamp_of: Callable[[Any], Stamp], *,
                 on_bad: Callable[[Any, MessageError], None] | None = None,
                 stopped: Callable[[], bool] = lambda: False, rate: float = 0.0,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.name, self.stamp_of, self.on_bad, self.stopped = name, stamp_of, on_bad, stopped
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.max_pixels = max_pixels
        self.received = 0
        self.bad = 0
        self._clock = StampClock()
        self._cond = threading.Condition()
        self._latest: tuple[int, Any, float] | None = None
        self._closed = False

    def put(self, msg: Any) -> None:
        """Keep `msg` as the newest message (called from the subscriber's thread)."""
        with self._cond:
            if self._latest is not None:
                self.dropped += 1
            self._latest = (self.received, msg, time.monotonic())
            self.received += 1
            self._cond.notify_all()

    def _take(self, not_before: float) -> tuple[int, Any, float] | None:
        """The newest message once one is there and `not_before` has passed; None at the end."""
        with self._cond:
            while not self._closed and not self.stopped():
                wait = not_before - time.monotonic()
                if self._latest is not None and wait <= 0:
                    taken, self._latest = self._latest, None
                    return taken
                self._cond.wait(min(0.2, wait) if wait > 0 else 0.2)
        return None

    def __iter__(self) -> Iterator[StampedFrame]:
        not_before = 0.0
        while (taken := self._take(not_before)) is not None:
            index, msg, arrived = taken
            secs, nsecs, frame_id = self.stamp_of(msg)
            try:
                image = message_to_bgr(msg, self.max_pixels)
            except ImageError as exc:
                self.bad += 1
                if self.on_bad is not None:
                    self.on_bad(msg, exc if isinstance(exc, MessageError)
                                else MessageError(str(exc)))
                continue
            not_before = time.monotonic() + self.interval
            self.size = (image.shape[1], image.shape[0])
            yield StampedFrame(index, self._clock(secs + nsecs * 1e-9, arrived), image,
                               captured_at=arrived, stamp=(secs, nsecs), frame_id=frame_id)

    def close(self) -> None:
        """End the iteration (also wakes a reader waiting for a message)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def people_record(result: FrameResult) -> dict[str, Any]:
    """The people message of a frame: its header stamp and frame id, then the video JSON-lines
    record (frame index among the messages received, time, size, people)."""
    frame = result.frame
    secs, nsecs = frame.stamp if isinstance(frame, StampedFrame) else (0, 0)
    frame_id = frame.frame_id if isinstance(frame, StampedFrame) else ""
    return {"stamp": {"secs": secs, "nsecs": nsecs}, "frame_id": frame_id,
            **frame_record(result)}


def people_json(result: FrameResult) -> str:
    """The people message of a frame as compact JSON (the data of a std_msgs/String)."""
    return json.dumps(people_record(result), separators=(",", ":"))


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("expected true or false")


def _rate(value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if isinstance(value, bool) or not 0 <= rate <= 1000:
        raise ValueError("expected frames per second from 0 (no limit) to 1000")
    return rate


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value
    return parse


@dataclass(frozen=True)
class NodeSettings:
    """The node's ROS parameters (private: ~image_topic, ~compressed, ...) and their defaults."""

    #: The camera topic; with `compressed`, its "/compressed" sub-topic (CompressedImage) is read.
    image_topic: str = "image"
    compressed: bool = False
    preset: str = DEFAULT_PRESET
    model: str = DEFAULT_MODEL
    backend: str = "auto"
    precision: str = DEFAULT_PRECISION
    track: bool = True
    smooth: bool = False
    #: Most frames per second processed (0: as many as the CPU allows); the others are dropped.
    rate: float = 0.0

    def with_params(self, get: Callable[[str, Any], Any]) -> NodeSettings:
        """These settings with each field replaced by `get(name, current value)` (the ROS
        parameter ~name), checked; InputError names a parameter that cannot be used."""
        parsers: dict[str, Callable[[Any], Any]] = {
            "image_topic": _name, "compressed": _boolean, "preset": _name, "model": _name,
            "backend": _choice("auto", "onnxruntime", "openvino"),
            "precision": _choice(*PRECISION_CHOICES), "track": _boolean, "smooth": _boolean,
            "rate": _rate}
        values = {}
        for field in dataclasses.fields(self):
            value = get(field.name, getattr(self, field.name))
            try:
                values[field.name] = parsers[field.name](value)
            except (TypeError, ValueError) as exc:
                raise InputError(f"ROS parameter ~{field.name}: {exc}, got {value!r}") from None
        return dataclasses.replace(self, **values)

    @property
    def topic(self) -> str:
        """The topic subscribed to: image_topic, or its /compressed sub-topic."""
        return f"{self.image_topic.rstrip('/')}/compressed" if self.compressed else self.image_topic
