"""The speed/accuracy dial: network stages K = 1..6 against latency (and COCO AP), per backend.

    python benchmarks/bench_stages.py [--preset seed] [--backends onnxruntime openvino]
                                      [--precisions fp32 int8] [--runs 20] [--ap COCO_DIR]

For each K, backend and precision: `pafpose.bench.run_bench` on real images (median and min of
the network and of the whole image-in-memory -> people time, GMAC, and the CPU time per image:
with --threads 1, the work itself, which a busy machine does not inflate). With --ap, also the COCO
keypoint AP of that setting on the COCO folder given (person_keypoints.json + images/).
INT8 models are calibrated on the benchmark images when not built yet. Figures only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pafpose.bench import run_bench
from pafpose.estimator import PoseEstimator
from pafpose.evaluate import evaluate_coco
from pafpose.presets import PRESETS


def coco_ap(args: argparse.Namespace, stages: int, backend: str, precision: str) -> float:
    """COCO keypoint AP of one setting on the --ap folder."""
    est = PoseEstimator(args.model, preset=args.preset, stages=stages, backend=backend,
                        precision=precision, progress=False)
    folder = Path(args.ap)
    result = evaluate_coco(est, folder / "person_keypoints.json", folder / "images",
                           progress=False)
    return result.stats["AP"]


def main(argv: list[str] | None = None) -> None:
    """Print one row per stage count, backend and precision."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_thin")
    ap.add_argument("--preset", default="seed", choices=sorted(PRESETS))
    ap.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    ap.add_argument("--backends", nargs="+", default=["onnxruntime"])
    ap.add_argument("--precisions", nargs="+", default=["fp32"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--images", nargs="+", help="image files or folders (default: shared data)")
    ap.add_argument("--ap", metavar="COCO_DIR", help="also measure COCO AP on this folder")
    args = ap.parse_args(argv)

    print(f"preset {args.preset}, {args.runs} runs per row; times in ms")
    header = (f"{'K':>2} {'backend':<12} {'prec':<5} {'GMAC':>6} {'net med':>8} {'net min':>8} "
              f"{'total med':>10} {'total min':>10} {'cpu med':>8}"
              + (f" {'AP':>7}" if args.ap else ""))
    print(header)
    print("-" * len(header))
    for k in args.stages:
        for backend in args.backends:
            for precision in args.precisions:
                r = run_bench(args.model, preset=args.preset, stages=k, backend=backend,
                              precision=precision, threads=args.threads, images=args.images,
                              runs=args.runs, progress=False)
                net, tot = r.times["network"], r.times["total"]
                row = (f"{k:>2} {r.backend:<12} {precision:<5} {r.gmac:>6.2f} "
                       f"{net.median_ms:>8.1f} {net.min_ms:>8.1f} {tot.median_ms:>10.1f} "
                       f"{tot.min_ms:>10.1f} {r.times['cpu'].median_ms:>8.1f}")
                if args.ap:
                    row += f" {coco_ap(args, k, backend, precision):>7.4f}"
                print(row, flush=True)


if __name__ == "__main__":
    main()
