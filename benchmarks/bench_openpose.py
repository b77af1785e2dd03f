"""OpenPose's Caffe models on pafpose's CPU path: network milliseconds per backend and precision.

    python benchmarks/bench_openpose.py [--prototxts DIR] [--nets body_25 coco]
                                        [--sizes 368x368 656x368] [--runs 10] [--work DIR]

OpenPose's weights cannot be downloaded everywhere (and may not be redistributed), and a random
caffemodel runs at the same speed: each deploy prototxt (default: ../shared/data/models/openpose)
gets seeded random weights, is converted to ONNX by pafpose (cached in --work), and its network
is timed on a blank input of each size: median of --runs after a warm-up, for every backend
installed and every precision it offers (INT8 calibrated on the default calibration set).
Prints the CPU, the multiply-accumulates of each size and the GFLOP/s achieved.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pafpose.bench import conv_macs
from pafpose.models.caffe import random_weights
from pafpose.models.caffeproto import read_prototxt, write_caffemodel
from pafpose.precision import cpu_features, supported_precisions
from pafpose.runtime import available_backends, load_network

#: Deploy prototxt of each net in OpenPose's models/pose folders (as the shared copies name them).
NETS = {"body_25": "body_25.prototxt", "coco": "coco.prototxt", "mpi": "mpi.prototxt",
        "mpi_4": "mpi_faster_4_stages.prototxt"}


def size(text: str) -> tuple[int, int]:
    """WxH -> (w, h)."""
    w, _, h = text.partition("x")
    return int(w), int(h)


def model_folder(net: str, prototxts: Path, work: Path) -> Path:
    """A folder holding the net's prototxt and a seeded random caffemodel (made once)."""
    folder = work / net
    caffemodel = folder / f"{net}.caffemodel"
    if not caffemodel.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(prototxts / NETS[net], folder / "pose_deploy.prototxt")
        deploy = read_prototxt(folder / "pose_deploy.prototxt")
        write_caffemodel(caffemodel, deploy, random_weights(deploy, seed=0))
    return folder


def network_ms(runtime, w: int, h: int, runs: int) -> float:
    """Median milliseconds of the network on a blank w x h input (after two warm-up runs)."""
    x = np.zeros((1, h, w, 3), np.float32)
    for _ in range(2):
        runtime.run(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        runtime.run(x)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    """Convert, load and time each net x size x backend x precision; print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prototxts", type=Path, default=Path("../shared/data/models/openpose"))
    ap.add_argument("--nets", nargs="+", choices=sorted(NETS), default=["body_25", "coco"])
    ap.add_argument("--sizes", nargs="+", type=size, default=[(368, 368), (656, 368)])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"],
                    help="those each backend offers among these (default: all)")
    ap.add_argument("--work", type=Path, default=None,
                    help="where the random-weight models and their ONNX go (default: a temp dir)")
    args = ap.parse_args(argv)
    if not all((args.prototxts / NETS[n]).is_file() for n in args.nets):
        ap.error(f"{args.prototxts}: needs {', '.join(NETS[n] for n in args.nets)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="pafpose-openpose-"))
    f = cpu_features()
    print(f"cpu {f.model}  ({os.cpu_count()} cpus)  avx512={'yes' if f.avx512 else 'no'}  "
          f"vnni={'yes' if f.vnni else 'no'}  avx512_bf16={'yes' if f.avx512_bf16 else 'no'}  "
          f"amx={'yes' if f.amx else 'no'}  load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'net':8s} {'input':>8s} {'GMAC':>7s} {'backend':12s} {'prec':5s} {'ms':>9s} "
          f"{'GFLOP/s':>8s}")
    for net in args.nets:
        folder = model_folder(net, args.prototxts, work)
        for backend in available_backends():
            for precision in [p for p in supported_precisions(backend) if p in args.precisions]:
                try:
                    path, runtime, _ = load_network(folder, backend=backend, precision=precision,
                                                    progress=False)
                except Exception as exc:  # noqa: BLE001 (one setting cannot run here: say so)
                    print(f"{net:8s} {backend} {precision}: skipped ({exc})", file=sys.stderr)
                    continue
                fp32 = next(folder.glob("*.onnx"))
                for w, h in args.sizes:
                    gmac = conv_macs(fp32, (1, 3, h, w)) / 1e9
                    ms = network_ms(runtime, w, h, args.runs)
                    print(f"{net:8s} {w:>4d}x{h:<3d} {gmac:7.1f} {backend:12s} {precision:5s} "
                          f"{ms:9.1f} {2 * gmac / ms * 1000:8.1f}", flush=True)
    print(f"(2 threads by default; medians of {args.runs} runs; load {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
