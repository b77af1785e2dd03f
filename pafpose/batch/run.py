"""A whole batch run: inputs -> units not done yet -> an engine (local or Ray) -> each unit's
outcome committed to the output folder, with a progress bar, errors kept, Ctrl-C kept clean."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..defaults import DEFAULT_MODEL, available_cpus
from ..errors import InputError
from ..predict import check_writable
from .inputs import iter_items
from .records import check_format
from .state import OutputFolder
from .units import DEFAULT_BATCH_SIZE, Unit, check_chunking, plan_units
from .work import BatchSettings, UnitOutcome

ENGINES = ("local", "ray")


@dataclass
class BatchSummary:
    """What a run did (this run's figures; `total` counts every run into the folder)."""

    output: Path
    engine: str
    workers: int = 0
    planned: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    records: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    total: dict[str, int] | None = None

    def describe(self) -> str:
        """One line for the user."""
        if self.planned == 0:
            return (f"{self.output}: nothing to do ({self.skipped} inputs done before, "
                    f"{self.total['records'] if self.total else 0} records)")
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        text = (f"{self.output}: {self.done} of {self.planned} inputs done in "
                f"{self.seconds:.1f} s ({rate:.2f} inputs/s, {self.engine} engine, "
                f"{self.workers} worker{'s' * (self.workers != 1)}), {self.records} records")
        if self.failed:
            text += f", {self.failed} failed (errors.jsonl)"
        if self.skipped:
            text += f", {self.skipped} skipped (done before)"
        return text


def default_workers(engine: str) -> int:
    """Workers when not given: one per 2 CPUs of this machine (local), one actor per CPU of
    the cluster (Ray: its own processes share the CPUs, and single-thread actors keep the
    pace better beside them; README, "Batch")."""
    if engine == "ray":
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    return max(1, available_cpus() // 2)


def _engine(engine: str, units: Iterable[Unit], settings: BatchSettings, workers: int,
            threads: int | None, note: Callable[[str], object]) -> Iterator[UnitOutcome]:
    if engine == "ray":
        from .ray_engine import run_ray

        return run_ray(units, settings, workers, threads)
    from .local import run_local

    return run_local(units, settings, workers, threads or max(1, available_cpus() // workers),
                     note)


def run_batch(
    inputs: Iterable[str | Path],
    output: str | Path,
    estimator: dict[str, Any] | None = None,
    *,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    fmt: str = "jsonl",
    every: int = 1,
    track: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    chunk_frames: int | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    note: Callable[[str], object] | None = None,
) -> BatchSummary:
    """Poses over images and videos into `output` (records/, errors.jsonl, done.sqlite).

    `estimator`: PoseEstimator arguments (model, preset, ...). `engine` "local" (a process
    pool) or "ray" (`address`: 'auto', 'HOST:PORT', 'ray://...', None = a local cluster for the
    run). `workers` processes or actors with `threads` inference threads each. Inputs done by
    an earlier run into `output` are skipped; failed ones too, unless `retry_failed`. Ctrl-C
    ends the run with the finished units kept (`interrupted` in the summary). `note` receives
    one-line notes (skipped files, each failed input).
    """
    from .. import __version__
    from ..estimator import PoseEstimator

    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}")
    check_format(fmt)
    check_chunking(chunk_frames, every)
    if every < 1 or batch_size < 1:
        raise InputError("--every and --batch-size must be >= 1")
    check_writable(Path(output), folder=True)  # before any work
    kwargs = dict(estimator or {})
    # Fails here, in one line, on a bad model or option; fetches or builds the model once.
    preset = PoseEstimator(**{**kwargs, "threads": 1, "progress": progress}).preset.name
    settings = BatchSettings(kwargs, "", fmt, every, track,
                             str(kwargs.get("model", DEFAULT_MODEL)), preset, __version__)
    tell = note or (lambda text: None)
    folder = OutputFolder(output, {**settings.results_key(), "chunk_frames": chunk_frames})
    settings = BatchSettings(**{**settings.__dict__, "records": str(folder.records.resolve())})
    summary = BatchSummary(folder.folder, engine)
    outcomes: Iterator[UnitOutcome] | None = None
    connected = False
    try:
        if retry_failed:
            folder.retry_failed()

        def plan(notes: bool) -> Iterator[Unit]:
            def is_done(key: str) -> bool:
                if folder.is_done(key):
                    summary.skipped += 1 if notes else 0
                    return True
                return folder.seen(key)

            folder.new_pass()
            items = iter_items(inputs, tell if notes else None)
            return plan_units(items, batch_size, chunk_frames, is_done)

        summary.planned = sum(len(unit.keys) for unit in plan(True))
        if summary.planned == 0:
            return summary
        if engine == "ray":
            from .ray_engine import connect

            connected = connect(address)
        summary.workers = workers or default_workers(engine)
        bar = tqdm(total=summary.planned, unit="input", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True)
        t0 = time.perf_counter()
        try:
            outcomes = _engine(engine, plan(False), settings, summary.workers, threads, tell)
            for outcome in outcomes:
                folder.commit(outcome.unit, outcome.file, outcome.records, outcome.inputs)
                summary.records += outcome.records
                for _, name, error in outcome.inputs:
                    summary.done += 1
                    if error is not None:
                        summary.failed += 1
                        tell(f"{name}: {error}")
                bar.update(len(outcome.inputs))
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            summary.seconds = time.perf_counter() - t0
            bar.close()
    finally:
        if outcomes is not None:
            outcomes.close()  # stops the workers
        if connected:
            import ray

            ray.shutdown()
        folder.remove_leftovers()
        if summary.done or retry_failed or not folder.errors_path.exists():
            folder.write_errors()
        summary.total = folder.counts()
        folder.close()
    return summary
