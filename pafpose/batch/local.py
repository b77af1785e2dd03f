"""The local engine: units over a pool of worker processes on this machine, one estimator each.

A worker that dies (killed, or crashing on an input) breaks the pool: a new pool is started and
the units that were running are tried again, one at a time, so that a unit which kills its
worker every time is found and recorded as failed after MAX_ATTEMPTS, and the rest go on.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .units import Unit
from .work import BatchSettings, UnitOutcome, UnitRunner

#: Runs of a unit whose worker died before it is recorded as failed.
MAX_ATTEMPTS = 3
_runner: UnitRunner | None = None


def _start_worker(settings: BatchSettings, threads: int) -> None:
    """Worker process start: Ctrl-C is the parent's to handle; load the model once."""
    global _runner
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _runner = UnitRunner(settings, threads)


def _run_unit(text: str) -> UnitOutcome:
    assert _runner is not None
    return _runner.run(Unit.from_json(text))


def _stop(pool: ProcessPoolExecutor) -> None:
    """End a pool now: its workers are terminated (their unfinished files are temporaries)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def run_local(units: Iterable[Unit], settings: BatchSettings, workers: int, threads: int,
              note: Callable[[str], object] | None = None) -> Iterator[UnitOutcome]:
    """Run units on `workers` processes with `threads` inference threads each; yield each
    unit's outcome as it finishes (at most 2 x workers units are in flight). `note` hears
    of each worker lost."""
    context = multiprocessing.get_context("spawn")  # the parent's engine threads stay its own

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                   initargs=(settings, threads))

    pool = new_pool()
    todo = iter(units)
    retry: deque[tuple[Unit, int]] = deque()
    running: dict[Future, tuple[Unit, int]] = {}
    ended = False
    try:
        while True:
            # A unit tried again runs alone: if the pool breaks again, it is the cause.
            while not running and retry:
                unit, attempt = retry.popleft()
                running[pool.submit(_run_unit, unit.to_json())] = (unit, attempt)
            while not retry and not ended and len(running) < 2 * workers:
                unit = next(todo, None)
                if unit is None:
                    ended = True
                    break
                running[pool.submit(_run_unit, unit.to_json())] = (unit, 0)
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            if not any(isinstance(f.exception(), BrokenProcessPool) for f in finished):
                for future in finished:
                    running.pop(future)
                    yield future.result()
                continue
            # The pool broke: collect what finished before, try the rest again.
            alone = len(running) == 1
            wait(running, timeout=60)
            lost = sum(not f.done() or f.exception() is not None for f in running)
            if note is not None:
                note(f"a worker process died; {lost} unit{'s' * (lost != 1)} of work "
                     "tried again on a new one")
            for future, (unit, attempt) in list(running.items()):
                if future.done() and future.exception() is None:
                    yield future.result()
                elif alone and attempt + 1 >= MAX_ATTEMPTS:
                    yield UnitOutcome.lost(unit, f"its worker process died {MAX_ATTEMPTS} "
                                           "times (killed, or crashed on this input)")
                else:
                    retry.append((unit, attempt + 1 if alone else attempt))
            running.clear()
            _stop(pool)
            pool = new_pool()
    finally:
        _stop(pool)
