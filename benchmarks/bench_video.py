"""Video figures: pipelined vs sequential throughput, and tracking statistics.

    python benchmarks/bench_video.py speed VIDEO [--frames N] [--mode both|sequential|pipelined]
    python benchmarks/bench_video.py tracking RESULTS.jsonl [--max-lost S] [--min-oks X]
                                              [--min-hits N]

`speed` runs the same work two ways, alternating them `--repeat` times: the plain loop a user
writes, frame by frame in one thread (read -> inference -> draw -> encode -> JSON line) with
the default estimator (all CPUs), and `process_video` (the same stages pipelined in threads,
as `pafpose video` runs them: `--workers` estimators with CPUs / workers threads each), with
the same writers; it prints the frames per second of each (model loads not counted) and the
median of the paired ratios. `--mode sequential` or `--mode pipelined` runs one of them once,
for timing whole processes.

`tracking` re-runs the tracker on the people of a JSON-lines file written by
`pafpose video --json-output` (the detections are kept, the ids recomputed) and prints ids
created, track lengths and the people left without an id; the file's own ids, when present,
are summarised too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from pafpose.draw import annotate
from pafpose.estimator import PoseEstimator
from pafpose.human import Human
from pafpose.track import Person, Tracker, track_stats
from pafpose.video import (
    Frame,
    FrameResult,
    JsonLinesWriter,
    VideoWriter,
    frame_record,
    open_source,
    process_video,
    threads_per_worker,
)


def run_sequential(estimator: PoseEstimator, video: str, frames: int,
                   out: Path) -> tuple[float, float]:
    """The plain loop; returns frames per second and CPU milliseconds per frame (all threads)."""
    cap = cv2.VideoCapture(video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = VideoWriter(out / "sequential.mp4", fps, size)
    lines = JsonLinesWriter(out / "sequential.jsonl")
    t0, c0 = time.perf_counter(), time.process_time()
    done = 0
    for index in range(frames):
        ok, image = cap.read()
        if not ok:
            break
        humans = estimator.inference(image)
        result = FrameResult(Frame(index, index / fps, image), [Person(None, h) for h in humans])
        writer.write(annotate(image, result.people))
        lines.write(frame_record(result))
        done += 1
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    writer.close()
    lines.close()
    cap.release()
    return done / seconds, 1000 * cpu / max(1, done)


def run_pipelined(estimators: list[PoseEstimator], video: str, frames: int, out: Path,
                  workers: int) -> tuple[float, float]:
    """The pipelined runner on the same work; returns frames per second and CPU ms per frame."""
    c0 = time.process_time()
    summary = process_video(open_source(video, end=frames), estimators,
                            output=out / "pipelined.mp4", json_output=out / "pipelined.jsonl",
                            workers=workers, progress=False)
    return summary.fps, 1000 * (time.process_time() - c0) / max(1, summary.frames)


def speed(args: argparse.Namespace) -> None:
    def load(threads: int | None) -> PoseEstimator:
        return PoseEstimator(args.model, threads=threads, backend=args.backend,
                             preset=args.preset, progress=False)

    pipe_threads = args.pipe_threads or threads_per_worker(args.workers)
    sequential = load(args.threads) if args.mode != "pipelined" else None
    piped = [load(pipe_threads) for _ in range(args.workers)] if args.mode != "sequential" else []
    cap = cv2.VideoCapture(args.video)
    ok, first = cap.read()
    cap.release()
    if not ok:
        sys.exit(f"cannot read {args.video}")
    for estimator in [sequential, *piped]:  # warm up: compiled code, allocations
        for _ in range(2):
            if estimator is not None:
                estimator.inference(first)
    backend = (sequential or piped[0]).backend
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if sequential is None:
            fps, _ = run_pipelined(piped, args.video, args.frames, out, args.workers)
            print(f"pipelined ({backend}, {args.workers} workers x {pipe_threads} threads): "
                  f"{fps:.3f} frames/s")
            return
        if not piped:
            fps, _ = run_sequential(sequential, args.video, args.frames, out)
            print(f"sequential ({backend}, {args.threads or 'all'} threads): {fps:.3f} frames/s")
            return
        seq, pipe, seq_cpu, pipe_cpu = [], [], [], []
        for r in range(args.repeat):
            fps, cpu = run_sequential(sequential, args.video, args.frames, out)
            seq.append(fps)
            seq_cpu.append(cpu)
            fps, cpu = run_pipelined(piped, args.video, args.frames, out, args.workers)
            pipe.append(fps)
            pipe_cpu.append(cpu)
            print(f"round {r + 1}: sequential {seq[-1]:.3f} frames/s, pipelined {pipe[-1]:.3f} "
                  f"frames/s, ratio {pipe[-1] / seq[-1]:.2f}", flush=True)
        ratios = [p / s for p, s in zip(pipe, seq, strict=True)]
        print(f"{args.frames} frames of {Path(args.video).name}, model {args.model}, backend "
              f"{backend}; sequential: {args.threads or 'all'} threads; pipelined: "
              f"{args.workers} workers x {pipe_threads} threads; {args.repeat} rounds")
        print(f"sequential: median {statistics.median(seq):.3f} frames/s")
        print(f"pipelined:  median {statistics.median(pipe):.3f} frames/s")
        print(f"ratio pipelined/sequential: median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
        # Overlapping stages cannot make a frame cost less CPU: with every CPU busy all the
        # time, a run reaches at most CPUs / (CPU seconds per frame) frames per second.
        cpus = threads_per_worker(1)
        work = statistics.median(seq_cpu)
        ceiling = cpus * 1000 / work
        print(f"CPU time per frame: sequential {work:.1f} ms, pipelined "
              f"{statistics.median(pipe_cpu):.1f} ms; with {cpus} CPUs all busy the ceiling is "
              f"{ceiling:.3f} frames/s = {ceiling / statistics.median(seq):.2f}x sequential")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def tracking(args: argparse.Namespace) -> None:
    records = read_jsonl(args.results)
    overrides = {k: v for k, v in (("max_lost", args.max_lost), ("min_oks", args.min_oks),
                                   ("min_hits", args.min_hits)) if v is not None}
    tracker = Tracker(**overrides)
    recomputed, stored = [], []
    for rec in records:
        size = tuple(rec.get("size", (0, 0)))
        humans = [Human(np.asarray(p["openpose18"], np.float32), p["score"], size)
                  for p in rec["people"]]
        recomputed.append(tracker.update(humans, rec["time"]))
        stored.append([Person(p.get("id"), h) for p, h in zip(rec["people"], humans,
                                                               strict=True)])
    print(f"{args.results.name}: {len(records)} frames, tracker {tracker.params}")
    print("recomputed:", json.dumps(track_stats(recomputed).to_dict()))
    if any(p.id is not None for people in stored for p in people):
        print("in file:   ", json.dumps(track_stats(stored).to_dict()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed")
    p.add_argument("video")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--mode", choices=("both", "sequential", "pipelined"), default="both")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--model", default="mobilenet_thin")
    p.add_argument("--backend", default="auto", help="inference backend (default auto)")
    p.add_argument("--preset", default="balanced", help="estimator preset (default balanced)")
    p.add_argument("--threads", type=int, help="sequential inference threads (default: all)")
    p.add_argument("--pipe-threads", type=int,
                   help="inference threads per pipelined worker (default: CPUs / workers)")
    p.set_defaults(func=speed)
    p = sub.add_parser("tracking")
    p.add_argument("results", type=Path)
    p.add_argument("--max-lost", type=float)
    p.add_argument("--min-oks", type=float)
    p.add_argument("--min-hits", type=int)
    p.set_defaults(func=tracking)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
