"""How the cost grows: with the network input size (real images) and with the number of people.

    python benchmarks/bench_scaling.py [--preset seed] [--stages K] [--backend auto]
                                       [--runs 10] [--images DIR ...]

Part 1 runs `pafpose.bench.run_bench` at each input size from 320x240 to 1312x736 (images
stretched to the size, as the seed does) and prints the median per stage, GMAC and GFLOP/s.
Part 2 decodes synthetic maps at 432x368 with 1, 10 and 50 people (the decoder benchmark's own
map generator) with the decode settings of the presets. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_decode import crowd, render, timings  # noqa: E402

from pafpose.bench import run_bench  # noqa: E402
from pafpose.decode import Decoder  # noqa: E402
from pafpose.presets import PRESETS  # noqa: E402

SIZES: tuple[tuple[int, int], ...] = (
    (320, 240), (432, 368), (656, 368), (736, 480), (1008, 560), (1312, 736),
)


def by_size(args: argparse.Namespace) -> None:
    """Part 1: per-stage medians at each input size."""
    print(f"cost vs input size: preset {args.preset}, stages {args.stages or 'all'}, "
          f"{args.runs} runs per size")
    header = (f"{'input':>10} {'GMAC':>6} {'network':>9} {'decode':>8} {'total':>8} "
              f"{'GFLOP/s':>8} {'people':>7}")
    print(header)
    print("-" * len(header))
    for w, h in SIZES:
        r = run_bench(args.model, preset=args.preset, target_size=(w, h), stages=args.stages,
                      backend=args.backend, threads=args.threads, images=args.images,
                      runs=args.runs, progress=False)
        t = r.times
        print(f"{w:>5}x{h:<4} {r.gmac:>6.2f} {t['network'].median_ms:>9.1f} "
              f"{t['decode'].median_ms:>8.1f} {t['total'].median_ms:>8.1f} "
              f"{r.gflops:>8.1f} {r.people:>7.1f}", flush=True)
    print(f"(backend {r.backend}, {r.threads} threads; times in ms, medians)")


def by_people(args: argparse.Namespace) -> None:
    """Part 2: decode time on synthetic 432x368 maps with 1, 10, 50 people."""
    h, w = 368 // 8, 432 // 8
    rng = np.random.default_rng(0)
    print(f"\ndecode vs people: synthetic maps {w}x{h} (432x368 input), {args.repeat} runs")
    header = f"{'people':>6} " + " ".join(f"{name + ' ms':>13}" for name in PRESETS)
    print(header)
    print("-" * len(header))
    decoders = {name: Decoder(p.decode) for name, p in PRESETS.items()}
    for n in (1, 10, 50):
        heat, paf = render(crowd(n, h, w, rng), h, w, rng, 0.01)
        cells = []
        for dec in decoders.values():
            med = timings(lambda d=dec, a=heat, b=paf: d(a, b), args.repeat)[0]
            cells.append(f"{med:>13.2f}")
        print(f"{n:>6} " + " ".join(cells), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Print both tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_thin")
    ap.add_argument("--preset", default="seed", choices=sorted(PRESETS))
    ap.add_argument("--stages", type=int, default=None)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", type=int, default=10, help="timed runs per input size")
    ap.add_argument("--repeat", type=int, default=100, help="decode runs per people count")
    ap.add_argument("--images", nargs="+", help="image files or folders (default: shared data)")
    ap.add_argument("--skip-sizes", action="store_true", help="only the people table")
    args = ap.parse_args(argv)
    if not args.skip_sizes:
        by_size(args)
    by_people(args)


if __name__ == "__main__":
    main()
