"""`pafpose video` and `pafpose webcam`: poses over a video, a folder of images, a stream or a
camera, with ids; an annotated video and JSON lines out."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from . import options, stop


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The video and webcam commands."""
    p = sub.add_parser("video", help="estimate poses over a video, a folder of images or a stream")
    p.add_argument("input", help="video file, folder of images (name order), or stream URL")
    options.add_model_args(p)
    p.add_argument("--output", type=Path, metavar="PATH",
                   help="write the annotated video (.mp4, .avi, .mkv, .mov, .m4v)")
    p.add_argument("--json-output", metavar="PATH|-",
                   help="write JSON lines, one per frame ('-' = stdout)")
    p.add_argument("--track", action="store_true", help="ids that persist across frames")
    p.add_argument("--smooth", action="store_true",
                   help="smooth keypoints over time (One-Euro filter; implies --track)")
    p.add_argument("--every", type=options.FRAMES, default=1, metavar="N",
                   help="process every N-th frame (default 1: all)")
    p.add_argument("--start", type=options.FRAME_INDEX, default=0, metavar="FRAME",
                   help="first frame (default 0)")
    p.add_argument("--end", type=options.FRAME_INDEX, metavar="FRAME",
                   help="stop before this frame")
    p.add_argument("--fps", type=options.positive,
                   help="frame rate of a folder of images (default 10)")
    p.add_argument("--workers", type=options.WORKERS, default=1,
                   help="frames in the network at once, each on its own model with CPUs / "
                   "workers inference threads unless --threads says (default 1)")
    p.add_argument("--show", action="store_true",
                   help="also show the frames in a window while running (q or Esc stops)")
    p.set_defaults(func=run)

    p = sub.add_parser("webcam", help="live pose estimation from a camera, with ids and FPS")
    p.add_argument("--camera", default="0",
                   help="camera index, stream URL, or a video file read as a camera (default 0)")
    options.add_model_args(p)
    p.add_argument("--output", type=Path, metavar="PATH", help="also write the annotated video")
    p.add_argument("--json-output", metavar="PATH|-",
                   help="also write JSON lines, one per processed frame ('-' = stdout)")
    p.add_argument("--no-track", action="store_true", help="no ids")
    p.add_argument("--smooth", action="store_true", help="smooth keypoints (One-Euro filter)")
    p.add_argument("--no-window", action="store_true", help="never open a window (headless)")
    p.add_argument("--max-frames", type=options.FRAMES, metavar="N",
                   help="stop after N processed frames")
    p.add_argument("--workers", type=options.WORKERS, default=1,
                   help="frames in the network at once, as for video (default 1)")
    p.set_defaults(func=run_webcam)


def _check_outputs(args: argparse.Namespace) -> None:
    """The video and JSON-lines files of video / webcam can be written (before any work)."""
    from ..predict import check_writable

    for path in (args.output, args.json_output):
        if path is not None and str(path) != "-":
            check_writable(Path(path))


def run(args: argparse.Namespace) -> int:
    """Estimate poses over a video, a folder of images or a stream; write a video / JSON lines."""
    from .. import video as pipeline
    from ..track import Tracker

    _check_outputs(args)
    source = pipeline.open_source(args.input, start=args.start, end=args.end,
                                  every=args.every, fps=args.fps, max_pixels=args.max_pixels)
    args.threads = args.threads or pipeline.threads_per_worker(args.workers)
    tracker = Tracker(smooth=args.smooth) if args.track or args.smooth else None
    report = sys.stderr if args.json_output == "-" else sys.stdout
    try:
        estimators = [options.estimator(args) for _ in range(max(1, args.workers))]
        window = pipeline.open_window() if args.show else None
        if args.show and window is None:
            print("pafpose: no window can be opened here (no display); going on without",
                  file=sys.stderr)
        summary = pipeline.process_video(source, estimators, output=args.output,
                                         json_output=args.json_output, tracker=tracker,
                                         workers=args.workers, display=window or False)
    except pipeline.VideoInterrupted as exc:
        print(f"pafpose: interrupted; {exc.summary.describe()}", file=sys.stderr)
        return stop.interrupted_status()
    if summary.warning:
        print(f"pafpose: warning: {summary.warning}", file=sys.stderr)
    print(summary.describe(), file=report)
    return 0


def run_webcam(args: argparse.Namespace) -> int:
    """Live pose estimation from a camera: a window when a display exists, else headless."""
    from .. import video as pipeline
    from ..track import Tracker

    _check_outputs(args)
    source = pipeline.open_source(args.camera, live=True, max_pixels=args.max_pixels)
    args.threads = args.threads or pipeline.threads_per_worker(args.workers)
    tracker = None if args.no_track else Tracker(smooth=args.smooth)
    report = sys.stderr if args.json_output == "-" else sys.stdout
    estimators = [options.estimator(args) for _ in range(max(1, args.workers))]
    window = None if args.no_window else pipeline.open_window()
    if window is None and not args.no_window:
        print("pafpose: no window can be opened here (no display); running headless, "
              "Ctrl-C stops", file=sys.stderr)
    try:
        summary = pipeline.process_video(source, estimators, output=args.output,
                                         json_output=args.json_output, tracker=tracker,
                                         workers=args.workers, display=window or False,
                                         max_frames=args.max_frames)
    except pipeline.VideoInterrupted as exc:  # Ctrl-C is the way to stop a camera: exit 0
        summary = exc.summary
    print(summary.describe(), file=report)
    return 0 if stop.stopped_by() == signal.SIGINT else stop.interrupted_status()
