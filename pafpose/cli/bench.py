"""`pafpose bench`: the time of each stage of the pipeline on real images."""

from __future__ import annotations

import argparse

from . import options, stop


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time each stage of the pipeline on real images")
    options.add_model_args(p)
    p.add_argument("--images", nargs="+", metavar="PATH",
                   help="image files or folders (default: the shared sample images, if present)")
    p.add_argument("--runs", type=options.count, default=20, metavar="N",
                   help="timed inferences (default 20)")
    p.add_argument("--warmup", type=options.int_in(0, 10**6, "a run count"), default=None,
                   metavar="N", help="untimed inferences first (default: each image once, at "
                   "least 2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Time each stage of the pipeline (read, preprocess, network, decode) on real images."""
    from ..bench import bench_images, run_bench

    images = bench_images(args.images)
    result = run_bench(args.model, estimator=options.estimator(args), images=images,
                       runs=args.runs, warmup=args.warmup)
    print(result.format())
    return stop.interrupted_status() if result.interrupted else 0
