"""Video: sources (file, image folder, stream, camera), a pipelined runner, and writers.

The runner overlaps four stages in threads joined by bounded queues, in frame order:

    source reader -> network + decode (worker threads) -> tracking (in order) -> draw + encode

Reading and decoding the next frames, the network, and drawing + encoding the previous ones
run at the same time (the inference engines, OpenCV and the compiled decoder release the
GIL). With `workers` > 1, that many frames are in the network at once, each worker on its own
estimator with a share of the CPUs: that pays when single-thread runs side by side do more
than one run over all cores (ONNX Runtime on a busy machine), not when the engine already
scales over the cores (see the README, "Video"). Files lose no frame (unless `every` asks);
live sources (cameras, streams) keep only their newest frame, so latency stays bounded when the
network is slower than the source.

Outputs are written under a temporary name and renamed when the run ends, also when it ends
early (Ctrl-C, a damaged frame): the files then hold every frame done, and are complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from .defaults import available_cpus
from .draw import draw_humans
from .errors import VideoError
from .files import temp_name
from .human import Human
from .images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, ImageError, check_pixels, read_image
from .track import Person, Tracker
from .window import Window, open_window

#: Frame rate assumed when a source does not tell its own (image folders, some streams).
DEFAULT_FPS = 10.0
#: Video containers the writer knows, and the codec (FourCC) used for each.
FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v",
                    ".avi": "MJPG"}
_URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://",
                "srt://", "rtp://")
_END = object()


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the outputs were completed with the frames done (`.summary`)."""

    def __init__(self, summary: VideoSummary) -> None:
        super().__init__(f"interrupted after {summary.frames} frames")
        self.summary = summary


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's and FFmpeg's own console messages while opening captures and writers."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


# ------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------


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
    with _quiet_opencv():
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


# ------------------------------------------------------------------------------------------
# The pipelined iterator
# ------------------------------------------------------------------------------------------


class FrameResult(NamedTuple):
    """One processed frame: the frame and its people (ids set when tracking)."""

    frame: Frame
    people: list[Person]


def threads_per_worker(workers: int) -> int:
    """Inference threads for each of `workers` frames in the network at once: the CPUs shared
    out (one network run per core scales better than one run over all cores)."""
    return max(1, available_cpus() // max(1, workers))


class _Estimators:
    """The estimators the workers share: each call borrows a free one (a single estimator given
    alone is lent to every worker at once, so it must be thread-safe, as PoseEstimator is)."""

    def __init__(self, estimator: Any, workers: int) -> None:
        if estimator is None:
            from .estimator import PoseEstimator

            found = [PoseEstimator(threads=threads_per_worker(workers)) for _ in range(workers)]
        elif isinstance(estimator, (list, tuple)):
            if not estimator:
                raise VideoError("no estimator given")
            found = list(estimator)
        else:
            found = [estimator] * workers
        self.free: queue.Queue = queue.Queue()
        for e in found:
            self.free.put(e)

    def inference(self, image: np.ndarray) -> list[Human]:
        """Run a free estimator on the image."""
        estimator = self.free.get()
        try:
            return estimator.inference(image)
        finally:
            self.free.put(estimator)


def iter_poses(
    source: Source | str | int | Path,
    estimator: Any = None,
    *,
    tracker: Tracker | bool | None = None,
    workers: int = 1,
) -> Iterator[FrameResult]:
    """Yield (frame, people) for every frame of a source, in order, with the network pipelined.

    `source` is a Source or anything `open_source` takes. `estimator` is an object with
    `.inference(image) -> list[Human]` shared by the workers, or a list of them, one per
    worker (default: `workers` PoseEstimators with `threads_per_worker(workers)` threads each,
    so one estimator on all CPUs for one worker). `tracker=True` (or a Tracker) gives people
    persistent ids. Up to `workers` frames are in the network at once.
    """
    if workers < 1:
        raise VideoError(f"workers must be >= 1, got {workers}")
    src = source if isinstance(source, Source) else open_source(source)
    owned = src is not source
    estimators = estimator if isinstance(estimator, _Estimators) else _Estimators(estimator,
                                                                                workers)
    track = Tracker() if tracker is True else (tracker or None)
    # Frames in flight are bounded by slots; a live source is asked for its newest frame only
    # when a worker is free, so nothing stale waits in a queue.
    slots = threading.Semaphore(workers if src.live else 2 * workers)
    pending: queue.Queue = queue.Queue()
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pafpose-infer")

    def read() -> None:
        try:
            frames = iter(src)
            while True:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                frame = next(frames, None)
                if frame is None:
                    break
                pending.put((frame, pool.submit(estimators.inference, frame.image)))
        except BaseException as exc:  # handed to the consumer, raised there in frame order
            pending.put(exc)
            return
        pending.put(_END)

    reader = threading.Thread(target=read, name="pafpose-read", daemon=True)
    reader.start()
    try:
        while True:
            item = pending.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            frame, future = item
            humans = _result(future, frame)
            slots.release()
            people = (track.update(humans, frame.time) if track is not None
                      else [Person(None, h) for h in humans])
            yield FrameResult(frame, people)
    finally:
        stop.set()
        if src.live:
            src.close()  # wakes a reader waiting for the next frame
        reader.join(timeout=30)
        pool.shutdown(wait=True, cancel_futures=True)
        if owned and not src.live:
            src.close()


def _result(future: Future, frame: Frame) -> list[Human]:
    try:
        return future.result()
    except ImageError as exc:
        raise VideoError(f"frame {frame.index}: {exc}") from None


# ------------------------------------------------------------------------------------------
# Drawing and writers
# ------------------------------------------------------------------------------------------


def id_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for a track id."""
    hue = (track_id * 47) % 180
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def annotate(image: np.ndarray, people: list[Person], fps: float | None = None,
             copy: bool = True) -> np.ndarray:
    """Draw skeletons, each person's id above its head, and optionally an FPS counter."""
    out = draw_humans(image, [p.human for p in people], copy=copy)
    scale = max(0.5, out.shape[0] / 720)
    thick = max(1, round(2 * scale))
    for person in people:
        if person.id is None:
            continue
        x, y, w, _ = person.human.bbox()
        org = (int(x + w / 2) - int(10 * scale), max(int(y) - int(8 * scale), int(18 * scale)))
        text = str(person.id)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (0, 0, 0), thick + 2,
                    cv2.LINE_AA)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, id_color(person.id),
                    thick, cv2.LINE_AA)
    if fps is not None:
        org = (int(10 * scale), int(30 * scale))
        label = f"{fps:.1f} FPS"
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2,
                    cv2.LINE_AA)
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 0), thick,
                    cv2.LINE_AA)
    return out


def _temp_beside(path: Path) -> Path:
    """A hidden temporary name beside `path` that keeps its suffix (containers go by it)."""
    return temp_name(path, keep_suffix=True)


def _into_place(tmp: Path, path: Path, frames: int) -> Path | None:
    """Rename a finished temporary file to its name; drop it when it holds no frame."""
    if frames == 0:
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, path)
    return path


class VideoWriter:
    """An annotated video written under a temporary name; `close()` renames it into place.

    With `real_time` (live sources, which drop frames) each frame is repeated until the next
    one's timestamp, so the video plays at the pace it was filmed.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int],
                 real_time: bool = False) -> None:
        self.path = Path(path)
        self.real_time = real_time
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC_BY_SUFFIX:
            known = ", ".join(sorted(FOURCC_BY_SUFFIX))
            raise VideoError(f"{self.path}: unknown video type {suffix or '(none)'!r}; "
                             f"use one of {known}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size, self.fps, self.frames = tuple(size), fps, 0
        self.tmp = _temp_beside(self.path)
        fourcc = FOURCC_BY_SUFFIX[suffix]
        with _quiet_opencv():
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*fourcc),
                                          fps, self.size)
        if not self.writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            raise VideoError(f"{self.path}: this OpenCV build cannot write {suffix} video "
                             f"({fourcc})")

    def write(self, image: np.ndarray, timestamp: float | None = None) -> None:
        """Append one BGR frame (resized when it differs from the video's size)."""
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        repeats = 1
        if self.real_time and timestamp is not None:
            repeats = max(1, int(timestamp * self.fps) + 1 - self.frames)
        for _ in range(repeats):
            self.writer.write(image)
        self.frames += repeats

    def close(self) -> Path | None:
        """Finish the file and rename it into place; without frames, leave no file."""
        self.writer.release()
        return _into_place(self.tmp, self.path, self.frames)


def frame_record(result: FrameResult) -> dict[str, Any]:
    """The JSON-lines record of a frame: index, time, size, file name, people."""
    frame = result.frame
    record: dict[str, Any] = {"frame": frame.index, "time": round(frame.time, 4),
                              "size": [frame.image.shape[1], frame.image.shape[0]]}
    if frame.name is not None:
        record["image"] = frame.name
    record["people"] = [p.to_dict() for p in result.people]
    return record


class JsonLinesWriter:
    """One JSON object per frame, to a file (temporary name, renamed) or to stdout ('-')."""

    def __init__(self, path: str | Path, stdout: IO[str] | None = None) -> None:
        self.frames = 0
        if str(path) == "-":
            self.path, self.tmp = None, None
            self.file: IO[str] = stdout or sys.stdout
            return
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _temp_beside(self.path)
        self.file = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        """Write one record as a line and flush it."""
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.file.flush()
        self.frames += 1

    def close(self) -> Path | None:
        """Close the file and rename it into place; without frames, leave no file."""
        if self.tmp is None or self.path is None:
            return None
        self.file.close()
        return _into_place(self.tmp, self.path, self.frames)


# ------------------------------------------------------------------------------------------
# The whole run: source -> poses -> files (and a window)
# ------------------------------------------------------------------------------------------


@dataclass
class VideoSummary:
    """What a run did."""

    source: str
    frames: int = 0
    dropped: int = 0
    seconds: float = 0.0
    ids: int = 0
    outputs: list[Path] = field(default_factory=list)
    warning: str | None = None
    stopped: bool = False
    #: Live sources: median milliseconds from a frame's capture to its result (people found,
    #: tracked, drawn and shown when there is a window).
    latency_ms: float | None = None

    @property
    def fps(self) -> float:
        """Frames processed per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """One line for the user: frames, rate, drops, ids, files written."""
        parts = [f"{self.source}: {self.frames} frames in {self.seconds:.1f} s "
                 f"({self.fps:.2f} frames/s)"]
        if self.dropped:
            parts.append(f"{self.dropped} stale frames dropped")
        if self.latency_ms is not None:
            parts.append(f"latency {self.latency_ms:.0f} ms (median)")
        if self.ids:
            parts.append(f"{self.ids} ids")
        if self.outputs:
            parts.append("wrote " + ", ".join(map(str, self.outputs)))
        return ", ".join(parts)


class _Encoder:
    """The encoding stage: draws and writes results in a thread, behind a bounded queue."""

    def __init__(self, video: VideoWriter | None, jsonl: JsonLinesWriter | None) -> None:
        self.video, self.jsonl = video, jsonl
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="pafpose-encode", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if self.error is not None:
                continue
            result, drawn = item
            try:
                if self.video is not None:
                    image = drawn if drawn is not None else annotate(
                        result.frame.image, result.people)
                    self.video.write(image, result.frame.time)
                if self.jsonl is not None:
                    self.jsonl.write(frame_record(result))
            except BaseException as exc:  # reported by put() / finish()
                self.error = exc

    def put(self, result: FrameResult, drawn: np.ndarray | None) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((result, drawn))

    def finish(self) -> list[Path]:
        """Write what is queued, close the files (renaming them into place)."""
        self.queue.put(_END)
        while self.thread.is_alive():
            self.thread.join(timeout=0.2)
        outputs = [w.close() for w in (self.video, self.jsonl) if w is not None]
        if self.error is not None:
            raise self.error
        return [p for p in outputs if p is not None]


def process_video(
    source: Source | str | int | Path,
    estimator: Any = None,
    *,
    output: str | Path | None = None,
    json_output: str | Path | None = None,
    tracker: Tracker | bool | None = None,
    workers: int = 1,
    display: bool | Window = False,
    max_frames: int | None = None,
    progress: bool = True,
    on_frame: Callable[[FrameResult], None] | None = None,
) -> VideoSummary:
    """Run pose estimation over a source into an annotated video and/or JSON lines.

    Outputs go to temporary names and are renamed at the end, also after Ctrl-C
    (:class:`VideoInterrupted`) or a bad frame (:class:`VideoError`): they then hold the frames
    done. `display` (True or a :class:`~pafpose.window.Window`) shows the frames with skeletons,
    ids and FPS (q or Esc stops); `max_frames` stops after that many frames.
    """
    src = source if isinstance(source, Source) else open_source(source)
    window = open_window() if display is True else (display or None)
    if display is True and window is None:
        src.close()
        raise VideoError("no window can be opened here (no display, or neither a GUI build of "
                         "OpenCV nor tkinter)")
    estimators = _Estimators(estimator, workers)
    track = Tracker() if tracker is True else (tracker or None)
    video = jsonl = None
    try:
        if output is not None:
            fps = min(src.fps, 30.0) if src.live else src.fps / src.every
            video = VideoWriter(output, fps, src.size, real_time=src.live)
        if json_output is not None:
            jsonl = JsonLinesWriter(json_output)
    except BaseException:
        for w in (video, jsonl):
            if w is not None:
                w.close()
        src.close()
        raise
    encoder = _Encoder(video, jsonl)
    summary = VideoSummary(src.name)
    total = src.count if max_frames is None else min(src.count or max_frames, max_frames)
    bar = tqdm(total=total, unit="frame", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    t0 = time.perf_counter()
    fps = None
    last = t0
    failure: BaseException | None = None
    latencies: list[float] = []
    results = iter_poses(src, estimators, tracker=track, workers=workers)
    try:
        for result in results:
            now = time.perf_counter()
            rate = 1.0 / max(now - last, 1e-6)
            fps = rate if fps is None else 0.9 * fps + 0.1 * rate
            last = now
            drawn = None
            if window is not None:
                drawn = annotate(result.frame.image, result.people, fps)
                summary.stopped = not window.show(drawn)
            if result.frame.captured_at is not None:
                latencies.append(time.monotonic() - result.frame.captured_at)
            encoder.put(result, drawn)
            summary.frames += 1
            bar.update()
            if on_frame is not None:
                on_frame(result)
            if summary.stopped or (max_frames is not None and summary.frames >= max_frames):
                break
    except BaseException as exc:
        failure = exc
    finally:
        results.close()  # stops the reader and the workers before the source is released
        bar.close()
        summary.seconds = time.perf_counter() - t0
        src.close()
        if window is not None:
            window.close()
        summary.dropped = src.dropped
        summary.warning = src.warning
        summary.ids = track.ids_created if track is not None else 0
        if latencies:
            summary.latency_ms = 1000 * float(np.median(latencies))
        summary.outputs = encoder.finish()
    if isinstance(failure, KeyboardInterrupt):
        raise VideoInterrupted(summary) from None
    if failure is not None:
        if summary.frames == 0 and not isinstance(failure, VideoError):
            raise failure
        kept = (f"; the {summary.frames} frames before it are in "
                f"{', '.join(map(str, summary.outputs))}" if summary.outputs else "")
        raise VideoError(f"{failure}{kept}") from failure
    if summary.frames == 0:
        raise VideoError(f"{src.name}: no frame could be read")
    return summary
