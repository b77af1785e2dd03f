"""The pipelined runner: frames -> network + decode (worker threads) -> tracking, in order.

Reading and decoding the next frames and the network run at the same time (the inference
engines, OpenCV and the compiled decoder release the GIL). With `workers` > 1, that many frames
are in the network at once, each worker on its own estimator with a share of the CPUs: that
pays when single-thread runs side by side do more than one run over all cores (ONNX Runtime on
a busy machine), not when the engine already scales over the cores (see the README, "Video").
A live source is asked for its newest frame only when a worker is free.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..defaults import available_cpus
from ..errors import ImageError, VideoError
from ..human import Human
from ..track import Person, Tracker
from .sources import Frame, Source, open_source

_END = object()


class FrameResult(NamedTuple):
    """One processed frame: the frame and its people (ids set when tracking)."""

    frame: Frame
    people: list[Person]


def threads_per_worker(workers: int) -> int:
    """Inference threads for each of `workers` frames in the network at once: the CPUs shared
    out (one network run per core scales better than one run over all cores)."""
    return max(1, available_cpus() // max(1, workers))


class EstimatorPool:
    """The estimators the workers share: each call borrows a free one (a single estimator given
    alone is lent to every worker at once, so it must be thread-safe, as PoseEstimator is)."""

    def __init__(self, estimator: Any, workers: int) -> None:
        if estimator is None:
            from ..estimator import PoseEstimator

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
    estimators = (estimator if isinstance(estimator, EstimatorPool)
                  else EstimatorPool(estimator, workers))
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

