"""Throughput of `pafpose batch`: images per second on the local engine and on Ray (1 and 2
actors), and Ray's overhead per image.

    python benchmarks/bench_batch.py [--images DIR] [--preset balanced] [--backend auto]

Each setting runs twice, over the first half of the images and over all of them, each time
into a fresh output folder (`run_batch` in this process; Ray: a local cluster with this
machine's CPUs, started once). The wall time t = a + b * n of the two runs gives the start-up
cost a (processes or actors, models loaded) and the cost per image b; images/s is n / t over
all images, and 1 / b is the steady rate. Ray's overhead per image is b(Ray, k actors) -
b(local, k workers). Prints the CPU model and the load average before and after; figures
only, nothing asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from pafpose.batch import run_batch
from pafpose.defaults import available_cpus
from pafpose.precision import cpu_features

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "coco-dev" / "images"
#: (engine, workers): each worker gets CPUs / workers inference threads.
SETTINGS = (("local", 1), ("local", 2), ("ray", 1), ("ray", 2))


def load() -> str:
    """The load average (1, 5, 15 minutes)."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def timed(images: list[Path], engine: str, workers: int, estimator: dict) -> float:
    """Seconds of one run over `images` into a fresh folder."""
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        summary = run_batch([str(p) for p in images], Path(folder) / "out", estimator,
                            engine=engine, workers=workers, batch_size=4, progress=False)
        seconds = time.perf_counter() - t0
    assert summary.done == len(images) and not summary.failed, summary.describe()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--limit", type=int, default=0, help="use the first N images only")
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    images = images[: args.limit or None]
    half = images[: len(images) // 2]
    estimator = {"preset": args.preset, "backend": args.backend}
    cpus = available_cpus()
    print(f"cpu {cpu_features().model}, {cpus} CPUs; load average {load()} (before)")
    print(f"{len(images)} images from {args.images.name}, preset {args.preset}, backend "
          f"{args.backend}; runs over {len(half)} and {len(images)} images, t = a + b n")

    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)
    rows = {}
    try:
        for engine, workers in SETTINGS:
            if workers > cpus:
                continue
            t_half = timed(half, engine, workers, estimator)
            t_all = timed(images, engine, workers, estimator)
            per_image = (t_all - t_half) / (len(images) - len(half))
            rows[engine, workers] = (t_all, per_image, t_all - per_image * len(images))
    finally:
        ray.shutdown()
    header = (f"{'engine':<7} {'workers':>7} {'threads':>7} {'images/s':>9} {'steady/s':>9} "
              f"{'start-up s':>10} {'ms/image':>9}")
    print(header)
    print("-" * len(header))
    for (engine, workers), (t_all, per_image, startup) in rows.items():
        print(f"{engine:<7} {workers:>7} {cpus // workers:>7} {len(images) / t_all:>9.2f} "
              f"{1 / per_image:>9.2f} {startup:>10.1f} {1000 * per_image:>9.1f}")
    for workers in (1, 2):
        if ("ray", workers) in rows and ("local", workers) in rows:
            extra = rows["ray", workers][1] - rows["local", workers][1]
            start = rows["ray", workers][2] - rows["local", workers][2]
            print(f"Ray overhead, {workers} actor{'s' * (workers > 1)}: {1000 * extra:+.1f} "
                  f"ms per image, {start:+.1f} s start-up")
    print(f"load average {load()} (after)")


if __name__ == "__main__":
    main()
