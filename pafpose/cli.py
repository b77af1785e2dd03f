"""`pafpose <command>`: parse arguments, call the API, format the output. No logic of its own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from .images import DEFAULT_MAX_PIXELS


def _size(text: str) -> tuple[int, int] | None:
    """Parse WxH ('432x368'); '0x0' means the image's own size."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 432x368, got {text!r}") from None
    if w < 0 or h < 0 or (w == 0) != (h == 0):
        raise argparse.ArgumentTypeError(f"expected positive WxH or 0x0, got {text!r}")
    return (w, h) if w else None


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="mobilenet_thin",
                   help="model name or a local .pb / .onnx file (default: mobilenet_thin)")
    p.add_argument("--resize", type=_size, default=(432, 368), metavar="WxH",
                   help="network input size (default 432x368; 0x0 = the image's size)")
    p.add_argument("--resize-out-ratio", type=_positive, default=4.0, metavar="R",
                   help="upsampling of the maps before peak finding (default 4)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: all)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse larger images (default {DEFAULT_MAX_PIXELS})")


def _estimator(args: argparse.Namespace):
    from .estimator import PoseEstimator

    return PoseEstimator(args.model, target_size=args.resize, upsample=args.resize_out_ratio,
                         threads=args.threads, max_pixels=args.max_pixels)


def cmd_predict(args: argparse.Namespace) -> int:
    """Estimate poses on images and folders of images."""
    from .images import expand_inputs
    from .predict import predict_files, results_document, write_json

    paths = expand_inputs(args.inputs)
    if not paths:
        raise ValueError("no images found in the given inputs")
    estimator = _estimator(args)
    for folder in (args.image_output, args.show_maps):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    results, failed = [], 0
    bar = tqdm(total=len(paths), unit="img", disable=len(paths) < 2, file=sys.stderr)
    try:
        for result in predict_files(estimator, paths, args.image_output, args.show_maps):
            results.append(result)
            bar.update()
            if result.error:
                failed += 1
                tqdm.write(f"pafpose: {result.path}: {result.error}", file=sys.stderr)
            elif args.json_output is None:
                tqdm.write(f"{result.path}: {len(result.humans)} people", file=sys.stdout)
    except KeyboardInterrupt:
        tqdm.write(f"pafpose: interrupted after {len(results)} of {len(paths)} images",
                   file=sys.stderr)
        failed += 1
    finally:
        bar.close()
        if args.json_output is not None:
            write_json(results_document(results, args.format), args.json_output, sys.stdout)
    return 1 if failed else 0


def cmd_models(args: argparse.Namespace) -> int:
    """List the named models and their cache state, or fetch one."""
    from .models.fetch import cache_dir, cached_source_path, fetch_source
    from .models.registry import MODELS, get_spec

    if args.action == "fetch":
        for name in args.names or ["mobilenet_thin"]:
            path = fetch_source(get_spec(name))
            print(f"{name}: {path}")
        return 0
    print(f"cache: {cache_dir()}")
    for spec in MODELS.values():
        state = "cached" if cached_source_path(spec).is_file() else "not cached"
        print(f"{spec.name:16s} {state:11s} {spec.description} [{spec.license}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="pafpose", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="estimate poses on images")
    p.add_argument("inputs", nargs="+", help="image files or folders of images")
    _model_args(p)
    p.add_argument("--json-output", metavar="PATH|-", help="write JSON results ('-' = stdout)")
    p.add_argument("--format", choices=("coco", "openpose"), default="openpose",
                   help="JSON layout (default openpose)")
    p.add_argument("--image-output", type=Path, metavar="DIR", help="write annotated images here")
    p.add_argument("--show-maps", type=Path, metavar="DIR",
                   help="write the 2x2 figure (result, heatmap, PAF-x, PAF-y) here")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("models", help="list the models, or fetch one into the cache")
    p.add_argument("action", nargs="?", choices=("list", "fetch"), default="list")
    p.add_argument("names", nargs="*", help="model names to fetch (default mobilenet_thin)")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pafpose` command."""
    from .models.fetch import FetchError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FetchError, FileNotFoundError, KeyError, ValueError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"pafpose: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pafpose: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
