"""The Ray engine: units through Ray Data, `map_batches` with a callable class on an actor pool
(one estimator per actor, as many inference threads as the actor has CPUs).

Ray restarts an actor that dies and runs its unit again (up to MAX_TASK_RETRIES times); a unit
still unfinished after that is recorded as failed and the run goes on. Units are sent in
windows of WINDOW, so the driver never holds the whole corpus. Workers read the inputs and
write the records files themselves: on a cluster of several machines, inputs and --output must
be on storage every node sees.
"""

from __future__ import annotations

import inspect
import logging
import signal
import socket
import threading
import warnings
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np

from ..errors import InputError, MissingDependencyError
from .units import Unit
from .work import BatchSettings, UnitOutcome, UnitRunner

#: Units per Ray Data execution (the actors are started once per window).
WINDOW = 512
#: Retries of a unit whose actor died (Ray's own retry), before it is recorded as failed.
MAX_TASK_RETRIES = 3


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingDependencyError("--engine ray needs Ray: pip install '.[ray]' in the "
                                     "checkout") from None
    return ray


class RayUnits:
    """The Ray Data UDF: an actor holding one UnitRunner; a batch of units in, outcomes out."""

    def __init__(self, settings: BatchSettings) -> None:
        ray = _ray()
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        self.runner = UnitRunner(settings, threads=max(1, int(cpus)))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outcomes = [self.runner.run(Unit.from_json(str(text))) for text in batch["unit"]]
        return {"outcome": np.array([o.to_json() for o in outcomes])}


def _retries(ray) -> dict[str, int]:
    """map_batches' max_task_retries, where it still takes extra remote arguments."""
    parameters = inspect.signature(ray.data.Dataset.map_batches).parameters.values()
    takes = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    return {"max_task_retries": MAX_TASK_RETRIES} if takes else {}


def _check_reachable(address: str | None) -> None:
    """A HOST:PORT address must answer now (Ray itself would retry for minutes)."""
    host, _, port = (address or "").rpartition(":")
    if "://" in (address or "") or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError(f"--address {address}: no Ray cluster answers there "
                         f"({exc.strerror or exc})") from None


def connect(address: str | None) -> bool:
    """Connect to the Ray cluster at `address` ('auto', 'HOST:PORT', 'ray://...'), or start a
    local one when None; quiet. Returns whether this call connected (and should disconnect)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    _check_reachable(address)
    # Ray's core worker installs its own SIGTERM handler (it ends the process at once); the
    # Python handlers set before (the CLI's: stop cleanly, keep the units done) are put back.
    signals = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    handlers = {s: signal.getsignal(s) for s in signals}
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        raise InputError(f"--address {address}: cannot connect to a Ray cluster ({exc})") \
            from None
    if threading.current_thread() is threading.main_thread():
        for signum, handler in handlers.items():
            if callable(handler):
                signal.signal(signum, handler)
    return True


def cpus_per_actor(workers: int) -> int:
    """CPUs for each of `workers` actors: the cluster's CPUs shared out, within one node's."""
    ray = _ray()
    nodes = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    total = sum(nodes)
    return max(1, min(int(max(nodes, default=1)), int(total // max(1, workers))))


def run_ray(units: Iterable[Unit], settings: BatchSettings, workers: int,
            cpus: int | None = None) -> Iterator[UnitOutcome]:
    """Run units on `workers` Ray actors of `cpus` CPUs each (default: shared out); yield each
    unit's outcome as it arrives. Needs a connection (`connect`)."""
    ray = _ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.max_errored_blocks = -1  # a unit lost after its retries is reported, not fatal
    # Our own bar and summary show the progress; Ray Data would warn once that its bars are
    # off, and log each execution's end.
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    logging.getLogger("ray.data._internal.execution.streaming_executor").setLevel(logging.WARNING)
    cpus = cpus or cpus_per_actor(workers)
    todo = iter(units)
    while window := list(islice(todo, WINDOW)):
        pending: dict[str, Unit] = {unit.id: unit for unit in window}
        rows: list[dict[str, Any]] = [{"unit": unit.to_json()} for unit in window]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        with warnings.catch_warnings():
            # Ray 2.60 deprecates extra remote arguments (max_task_retries among them) and has
            # no named one for it yet; once they are gone, Ray's default retries forever.
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = dataset.map_batches(
                RayUnits, fn_constructor_kwargs={"settings": settings}, batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus,
                **_retries(ray))
        for row in dataset.iter_rows():
            outcome = UnitOutcome.from_json(row["outcome"])
            if pending.pop(outcome.unit, None) is not None:
                yield outcome
        for unit in pending.values():
            yield UnitOutcome.lost(unit, f"no Ray worker finished it in {MAX_TASK_RETRIES + 1} "
                                   "tries (killed, crashed, or an error: see Ray's logs)")
