"""`pafpose predict`: poses on images, folders of images and http(s) URLs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import options, stop


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="estimate poses on images")
    p.add_argument("inputs", nargs="+", help="image files or folders of images")
    options.add_model_args(p)
    p.add_argument("--json-output", metavar="PATH|-", help="write JSON results ('-' = stdout)")
    p.add_argument("--format", choices=("coco", "openpose"), default="openpose",
                   help="JSON layout (default openpose)")
    p.add_argument("--image-output", type=Path, metavar="DIR", help="write annotated images here")
    p.add_argument("--show-maps", type=Path, metavar="DIR",
                   help="write the 2x2 figure (result, heatmap, PAF-x, PAF-y) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Estimate poses on images and folders of images; exit 1 when an input failed."""
    from ..predict import prepare_inputs, run_predict

    paths = prepare_inputs(args.inputs, args.json_output, args.image_output, args.show_maps,
                           note=lambda text: print(f"pafpose: {text}", file=sys.stderr))
    done = run_predict(options.estimator(args), paths, args.json_output, args.format,
                       args.image_output, args.show_maps)
    return stop.interrupted_status() if done.interrupted else 1 if done.failed else 0
