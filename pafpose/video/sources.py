"""Video sources: files, folders of images, streams and cameras, as Frames.

Files and folders lose no frame (unless `every` asks); live sources (cameras, streams) keep
only their newest frame, so latency stays bounded when the network is slower than the source.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageError, VideoError
from ..images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, check_pixels, read_image

#: Frame rate assumed when a source does not tell its own (image folders, some streams).
DEFAULT_FPS = 10.0
_URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://",
                "srt://", "rtp://")


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's and FFmpeg's own console messages while opening captures and writers."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


@dataclass(frozen=True)
class Frame:
    """One frame: its index in the source, its time in seconds, the BGR image, a file name,
    and for live sources the time.monotonic() at which it was captured."""

    index: int
    time: float
    image: np.ndarray
    name: str | None = None
    captured_at: float | None = None


class Source:
    """Frames from somewhere; iterate it once. `live` sources drop stale frames."""

    name: str = ""
    fps: float = DEFAULT_FPS
    size: tuple[int, int] = (0, 0)
    live: bool = False
    #: Only every n-th frame is yielded (the output video's rate is fps / every).
    every: int = 1
    #: How many frames the iteration will yield (None when unknown or live).
    count: int | None = None
    #: Frames a live source captured but skipped because newer ones came.
    dropped: int = 0
    #: A note on how iteration ended early (a truncated file), or None.
    warning: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _frame_range(start: int, end: int | None, every: int) -> None:
    if start < 0:
        raise VideoError(f"start must be >= 0, got {start}")
    if end is not None and end <= start:
        raise VideoError(f"end ({end}) must be after start ({start})")
    if every < 1:
        raise VideoError(f"every must be >= 1, got {every}")


def _open_capture(spec: str | int) -> cv2.VideoCapture:
    with quiet_opencv():
        return cv2.VideoCapture(spec)


def _capture_size(cap: cv2.VideoCapture) -> tuple[int, int]:
    return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))


def _capture_fps(cap: cv2.VideoCapture) -> float | None:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if np.isfinite(fps) and 0 < fps <= 1000 else None


class VideoFileSource(Source):
    """A video file (or a URL with a known length): every frame in order, none dropped."""

    def __init__(self, path: str | Path, start: int = 0, end: int | None = None, every: int = 1,
                 fps: float | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        _frame_range(start, end, every)
        self.name = str(path)
        self.cap = _open_capture(self.name)
        if not self.cap.isOpened():
            raise VideoError(f"{path}: cannot open as a video (not a video, damaged, or a "
                             "format this OpenCV build cannot read)")
        self.size = _capture_size(self.cap)
        try:
            check_pixels(self.size, max_pixels)
        except ImageError as exc:
            self.close()
            raise VideoError(f"{path}: {exc}") from None
        self.fps = fps or _capture_fps(self.cap) or DEFAULT_FPS
        total = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.total = total if total > 0 else None
        if self.total is not None and start >= self.total:
            self.close()
            raise VideoError(f"{path}: start frame {start} is beyond its {self.total} frames")
        self.start, self.every = start, every
        self.end = min(end, self.total) if end and self.total else (end or self.total)
        self.count = len(range(start, self.end, every)) if self.end is not None else None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while self.end is None or index < self.end:
            wanted = index >= self.start and (index - self.start) % self.every == 0
            if wanted:
                ok, image = self.cap.read()
            else:
                ok, image = self.cap.grab(), None
            if not ok:
                if self.total is not None and index < self.end:
                    self.warning = (f"{self.name}: no frame could be read after frame "
                                    f"{index - 1} of {self.total} (truncated or damaged)")
                return
            if wanted:
                yield Frame(index, index / self.fps, image)
            index += 1

    def close(self) -> None:
        """Release the file."""
        self.cap.release()


class ImageFolderSource(Source):
    """The images of a folder, in name order, as frames at `fps`."""

    def __init__(self, folder: str | Path, start: int = 0, end: int | None = None,
                 every: int = 1, fps: float | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        _frame_range(start, end, every)
        folder = Path(folder)
        self.name = str(folder)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise VideoError(f"{folder}: no images in this folder")
        if start >= len(files):
            raise VideoError(f"{folder}: start frame {start} is beyond its {len(files)} images")
        self.indices = list(range(start, min(end or len(files), len(files)), every))
        self.every = every
        self.files = files
        self.fps = fps or DEFAULT_FPS
        self.max_pixels = max_pixels
        self.count = len(self.indices)
        try:
            first = read_image(files[self.indices[0]], max_pixels)
        except ImageError as exc:
            raise VideoError(f"{files[self.indices[0]]}: {exc}") from None
        self.size = (first.shape[1], first.shape[0])
        self._first = first

    def __iter__(self) -> Iterator[Frame]:
        for index in self.indices:
            path = self.files[index]
            if self._first is not None:
                image, self._first = self._first, None
            else:
                try:
                    image = read_image(path, self.max_pixels)
                except ImageError as exc:
                    raise VideoError(f"frame {index} ({path.name}): {exc}") from None
            yield Frame(index, index / self.fps, image, path.name)


class LiveSource(Source):
    """A camera or a live stream: a thread keeps grabbing, iteration gets the newest frame.

    A file opened as live is read at its own frame rate, as a camera would deliver it.
    """

    live = True

    def __init__(self, cap: cv2.VideoCapture, name: str, pace: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.cap, self.name, self.pace = cap, name, pace
        self.size = _capture_size(cap)
        try:
            check_pixels(self.size, max_pixels)
        except ImageError as exc:
            cap.release()
            raise VideoError(f"{name}: {exc}") from None
        self.fps = _capture_fps(cap) or 30.0
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._ended = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.captured = 0

    def _grab(self) -> None:
        t0 = time.monotonic()
        index = 0
        try:
            while not self._stop.is_set():
                if self.pace:
                    delay = t0 + index / self.fps - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                ok, image = self.cap.read()
                if not ok:
                    break
                now = time.monotonic()
                frame = Frame(index, now - t0, image, captured_at=now)
                with self._cond:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = frame
                    self.captured += 1
                    self._cond.notify_all()
                index += 1
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._grab, name="pafpose-capture",
                                            daemon=True)
            self._thread.start()
        while True:
            with self._cond:
                while self._latest is None and not self._ended:
                    self._cond.wait(0.5)
                frame, self._latest = self._latest, None
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        """Stop the capture thread and release the device."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.cap.release()


def open_source(
    spec: str | int | Path,
    *,
    start: int = 0,
    end: int | None = None,
    every: int = 1,
    live: bool | None = None,
    fps: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Source:
    """Open a video file, a folder of images, a stream URL or a camera (an int or '0').

    `live=None` decides by itself: cameras and streams of unknown length are live; `live=True`
    turns a file into a camera-like source (read at its frame rate, stale frames dropped).
    `start`, `end` (exclusive) and `every` select frames of files and folders.
    """
    text = str(spec)
    if isinstance(spec, int) or text.isdigit():
        cap = _open_capture(int(text))
        if not cap.isOpened():
            raise VideoError(f"cannot open camera {text}: no such device, or it is busy")
        return LiveSource(cap, f"camera {text}", max_pixels=max_pixels)
    is_url = text.lower().startswith(_URL_SCHEMES)
    path = Path(text)
    if not is_url:
        if path.is_dir():
            if live:
                raise VideoError(f"{path}: a folder of images cannot be a live source")
            return ImageFolderSource(path, start, end, every, fps, max_pixels)
        if not path.exists():
            raise VideoError(f"{path}: no such file or folder")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise VideoError(f"{path}: is an image; give a video, or a folder of images")
    if live or (live is None and is_url):
        cap = _open_capture(text)
        if not cap.isOpened():
            raise VideoError(f"{text}: cannot open (not a video or stream OpenCV can read)")
        known_length = cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0
        if live or not known_length:
            return LiveSource(cap, text, pace=not is_url, max_pixels=max_pixels)
        cap.release()
    return VideoFileSource(text, start, end, every, fps, max_pixels)

