"""Decode time of each preset on the real maps of a COCO image set (the network runs once).

    python benchmarks/bench_preset_decode.py --images ../shared/data/coco-dev/images
                                             [--presets seed,balanced] [--repeat 7]

For every image the network runs once per preset (each preset resizes differently), then the
preset's decoder runs `--repeat` times on those maps; the fastest run of each image is kept
(a shared CPU preempts some runs), and the median, mean and p90 over the images are printed.
Single-view presets only (multi-view presets add the canvas fusion). Figures only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pafpose import PoseEstimator
from pafpose.decode import Decoder
from pafpose.images import IMAGE_SUFFIXES, read_image
from pafpose.preprocess import content_size, prepare


def decode_times(preset: str, paths: list[Path], repeat: int) -> np.ndarray:
    """Fastest decode time (ms) of each image under one preset."""
    est = PoseEstimator(preset=preset, progress=False)
    p = est.preset
    decoder = Decoder(est.decode_params)
    out = []
    for path in tqdm(paths, desc=preset, unit="img"):
        image = read_image(path)
        size = content_size((image.shape[1], image.shape[0]), p.resize, p.size)
        maps = est.network(prepare(image, size, p.interpolation))
        heat, paf = np.ascontiguousarray(maps[:19]), np.ascontiguousarray(maps[19:])
        decoder(heat, paf)  # operators for this size
        best = np.inf
        for _ in range(repeat):
            start = time.perf_counter()
            decoder(heat, paf)
            best = min(best, time.perf_counter() - start)
        out.append(best * 1000)
    return np.array(out)


def main() -> None:
    """Print the decode time per preset."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, required=True, help="folder of images")
    ap.add_argument("--presets", default="seed,balanced", help="comma-separated preset names")
    ap.add_argument("--repeat", type=int, default=7, help="decoder runs per image")
    args = ap.parse_args()
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    print(f"{len(paths)} images; decode ms per image (fastest of {args.repeat} runs each)")
    print(f"{'preset':10s} {'median':>7s} {'mean':>7s} {'p90':>7s} {'max':>7s}")
    for preset in args.presets.split(","):
        t = decode_times(preset, paths, args.repeat)
        print(f"{preset:10s} {np.median(t):7.2f} {t.mean():7.2f} {np.percentile(t, 90):7.2f} "
              f"{t.max():7.2f}")


if __name__ == "__main__":
    main()
