"""Network time and COCO AP of each backend x precision (fp32, bf16, int8) on this CPU.

    python benchmarks/bench_precision.py [--size 432x368] [--runs 30] [--ap COCO_DIR]
                                         [--backends onnxruntime openvino]
                                         [--precisions fp32 bf16 int8]

For each pair the backend supports: the median and minimum of the network alone (the model
loaded as `PoseEstimator` loads it, run on real photos stretched to --size, after a warm-up)
and its median CPU time (all threads),
and with --ap the COCO keypoint AP of the default preset at that precision on the folder given
(person_keypoints.json + images/, as `pafpose eval`). The figures behind precision.MEASURED.
INT8 models are built on first use from the default calibration set (models/resolve.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from pafpose.bench import bench_images
from pafpose.estimator import PoseEstimator
from pafpose.evaluate import evaluate_coco
from pafpose.images import read_image
from pafpose.models.quantize import calibration_tensors
from pafpose.runtime import available_backends, load_network, supported_precisions


def network_ms(backend: str, precision: str, tensors: list[np.ndarray], runs: int,
               threads: int | None) -> tuple[float, float, float]:
    """(median, min, CPU) ms of the network alone on the tensors, cycled, after a warm-up.

    CPU: median CPU time of the process per run (all threads): on a machine shared with other
    jobs, wall times stretch with the load but this much less."""
    _, runtime, _ = load_network("mobilenet_thin", backend=backend, precision=precision,
                                 threads=threads, progress=False)
    for t in tensors[:3]:
        runtime.run(t)
    times, cpu = [], []
    for i in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        runtime.run(tensors[i % len(tensors)])
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return float(np.median(times)), float(np.min(times)), float(np.median(cpu))


def coco_ap(folder: Path, backend: str, precision: str) -> float:
    """COCO keypoint AP of the default preset at one backend and precision."""
    est = PoseEstimator(backend=backend, precision=precision, progress=False)
    result = evaluate_coco(est, folder / "person_keypoints.json", folder / "images",
                           progress=False)
    return result.stats["AP"]


def main(argv: list[str] | None = None) -> None:
    """Print one row per backend and precision."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="432x368", help="network input WxH")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--backends", nargs="+", default=available_backends())
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"])
    ap.add_argument("--ap", type=Path, default=None, metavar="COCO_DIR")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    tensors = calibration_tensors([read_image(p) for p in bench_images()], (w, h))
    print(f"network at {w}x{h}, {args.runs} runs per row; times in ms")
    print(f"{'backend':<12} {'precision':<9} {'net med':>8} {'net min':>8} {'cpu med':>8} "
          f"{'AP':>7}")
    for backend in args.backends:
        for precision in args.precisions:
            if precision not in supported_precisions(backend):
                print(f"{backend:<12} {precision:<9} {'(not offered)':>17}")
                continue
            med, low, cpu = network_ms(backend, precision, tensors, args.runs, args.threads)
            score = f"{coco_ap(args.ap, backend, precision):7.3f}" if args.ap else f"{'-':>7}"
            print(f"{backend:<12} {precision:<9} {med:8.1f} {low:8.1f} {cpu:8.1f} {score}",
                  flush=True)


if __name__ == "__main__":
    main()
