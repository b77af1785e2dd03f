"""Batch: poses over large image and video corpora, on this machine or on a Ray cluster.

    inputs.py      folders (recursive), globs, manifests (paths or URLs), images vs videos
    units.py       work units: image batches, videos whole or in chunks, stable ids
    records.py     the record of an image or frame; JSON lines or Parquet, written atomically
    work.py        a worker's side: one estimator, a unit in, its records file and outcome out
    local.py       the local engine: a process pool, a dead worker's units tried again
    ray_engine.py  the Ray engine: Ray Data map_batches on an actor pool (Ray's retries)
    state.py       the output folder: done units and inputs (resumption), errors, a lock
    run.py         run_batch: plan -> engine -> commit, progress, Ctrl-C

A rerun into the same folder skips what is done; every input ends in the output exactly once.
"""

from .records import parquet_schema, read_records
from .run import BatchSummary, run_batch

__all__ = ["BatchSummary", "parquet_schema", "read_records", "run_batch"]
