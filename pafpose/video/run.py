"""The whole run: source -> poses -> files (and a window), with its summary.

Four stages overlap in threads joined by bounded queues, in frame order:

    source reader -> network + decode (worker threads) -> tracking (in order) -> draw + encode

(the first three are `pipeline.iter_poses`; drawing and encoding the previous frames run in
the encoder thread here). Outputs are written under a temporary name and renamed when the run
ends, also when it ends early (Ctrl-C, a damaged frame): the files then hold every frame done.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..draw import annotate
from ..errors import VideoError
from ..track import Tracker
from .pipeline import EstimatorPool, FrameResult, iter_poses
from .sources import Source, open_source
from .window import Window, open_window
from .writers import JsonLinesWriter, VideoWriter, frame_record

_END = object()


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the outputs were completed with the frames done (`.summary`)."""

    def __init__(self, summary: VideoSummary) -> None:
        super().__init__(f"interrupted after {summary.frames} frames")
        self.summary = summary



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
    done. `display` (True or a :class:`~pafpose.video.window.Window`) shows the frames with
    skeletons, ids and FPS (q or Esc stops); `max_frames` stops after that many frames.
    """
    src = source if isinstance(source, Source) else open_source(source)
    window = open_window() if display is True else (display or None)
    if display is True and window is None:
        src.close()
        raise VideoError("no window can be opened here (no display, or neither a GUI build of "
                         "OpenCV nor tkinter)")
    estimators = EstimatorPool(estimator, workers)
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
