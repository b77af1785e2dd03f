"""A bounded worker pool: a few threads share one model; requests beyond the queue are refused."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import InputError

T = TypeVar("T")


class QueueFull(Exception):
    """The pool has as many requests as it may hold; `retry_after` is a hint in seconds."""

    def __init__(self, in_flight: int, retry_after: int) -> None:
        super().__init__(f"server busy: {in_flight} requests in progress, try again later")
        self.retry_after = retry_after


class WorkerPool:
    """Run jobs on `workers` threads with at most `queue` more jobs waiting; refuse the rest."""

    def __init__(self, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise InputError("workers must be >= 1 and queue >= 0")
        self.workers = workers
        self.queue = queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="pafpose-worker")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._service_s = 0.2  # moving average of a job's duration, for Retry-After
        self.completed = 0
        self.rejected = 0

    @property
    def capacity(self) -> int:
        """Jobs admitted at once: running plus waiting."""
        return self.workers + self.queue

    @property
    def in_flight(self) -> int:
        """Jobs admitted and not finished yet."""
        return self._in_flight

    def retry_after(self) -> int:
        """Seconds until a slot is likely free (at least 1)."""
        return max(1, math.ceil(self._service_s * self._in_flight / self.workers))

    def _admit(self) -> None:
        with self._lock:
            if self._in_flight >= self.capacity:
                self.rejected += 1
                raise QueueFull(self._in_flight, self.retry_after())
            self._in_flight += 1

    def _release(self, _: Future | None = None) -> None:
        with self._lock:
            self._in_flight -= 1

    def _timed(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self._service_s = 0.8 * self._service_s + 0.2 * elapsed
                self.completed += 1

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue fn(*args) on a worker thread; raise QueueFull when the pool is full."""
        self._admit()
        try:
            future = self._executor.submit(self._timed, fn, args)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)  # also when cancelled while waiting
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await fn(*args) run on a worker thread; raise QueueFull when the pool is full."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def shutdown(self) -> None:
        """Stop the threads: finish the running jobs, drop the waiting ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)
