"""`pafpose eval`: COCO keypoint AP over an annotated image set."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import options, stop


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="COCO keypoint AP over an annotated image set")
    p.add_argument("--coco-json", type=Path, required=True, metavar="FILE",
                   help="COCO person keypoints annotation file")
    p.add_argument("--images", type=Path, required=True, metavar="DIR",
                   help="folder of the images the file names")
    options.add_model_args(p)
    p.add_argument("--results-json", type=Path, metavar="OUT", help="write the COCO results here")
    p.add_argument("--limit", type=options.int_in(1, 10**9, "an image count"), metavar="N",
                   help="only the first N images (by id)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """COCO keypoint AP of the estimator over a COCO annotation file and its images."""
    from ..bench import precision_line
    from ..evaluate import check_ready, evaluate_coco, write_results

    check_ready(args.results_json)
    est = options.estimator(args)
    result = evaluate_coco(est, args.coco_json, args.images, limit=args.limit)
    if args.results_json is not None:
        write_results(result.results, args.results_json)
    print(f"preset {est.preset.name}  backend {est.backend}  "
          f"{precision_line(est.precision, est.precision_reason)}")
    print(result.summary())
    return stop.interrupted_status() if result.interrupted else 0
