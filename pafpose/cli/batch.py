"""`pafpose batch`: poses over image and video corpora into a folder of records, resumable, on
this machine (a process pool) or on a Ray cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import options, stop


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The batch command."""
    from ..batch.units import DEFAULT_BATCH_SIZE

    p = sub.add_parser("batch", help="poses over many images and videos, resumable, locally or "
                       "on a Ray cluster")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image or video files, folders (searched recursively), glob patterns "
                   "('photos/**/*.jpg'), or manifests (.txt, .lst: one path or URL a line)")
    p.add_argument("--output", type=Path, required=True, metavar="DIR",
                   help="output folder: records/, errors.jsonl, done.sqlite (a rerun skips "
                   "what is done)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine (default); ray: a Ray cluster")
    p.add_argument("--address", metavar="ADDR",
                   help="Ray cluster: auto, HOST:PORT or ray://HOST:10001 (default: a local "
                   "cluster started for the run)")
    p.add_argument("--workers", type=options.WORKERS, metavar="N",
                   help="processes (local) or actors (Ray), each with its own model and "
                   "--threads inference threads (default: local one per 2 CPUs, Ray one per "
                   "CPU)")
    p.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl",
                   help="records as JSON lines (default) or Parquet (needs pyarrow)")
    p.add_argument("--every", type=options.FRAMES, default=1, metavar="N",
                   help="videos: every N-th frame (default 1: all)")
    p.add_argument("--track", action="store_true", help="videos: ids that persist across frames")
    p.add_argument("--batch-size", type=options.int_in(1, 100_000, "an image count"),
                   default=DEFAULT_BATCH_SIZE, metavar="N",
                   help=f"images per unit of work (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--chunk-frames", type=options.FRAMES, metavar="N",
                   help="split videos longer than N frames into units of N frames (tracking "
                   "restarts in each)")
    p.add_argument("--retry-failed", action="store_true",
                   help="try the inputs of errors.jsonl again")
    options.add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the batch; exit 1 when an input failed, 128 + N when stopped by signal N."""
    from tqdm import tqdm

    from ..batch import run_batch

    summary = run_batch(
        args.inputs, args.output, options.estimator_options(args), engine=args.engine,
        address=args.address, workers=args.workers, threads=args.threads, fmt=args.format,
        every=args.every, track=args.track, batch_size=args.batch_size,
        chunk_frames=args.chunk_frames, retry_failed=args.retry_failed,
        note=lambda text: tqdm.write(f"pafpose: {text}", file=sys.stderr))
    if summary.interrupted:
        print(f"pafpose: interrupted; {summary.describe()}", file=sys.stderr)
        return stop.interrupted_status()
    print(summary.describe())
    return 1 if summary.failed else 0
