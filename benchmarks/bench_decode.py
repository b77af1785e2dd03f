"""Decoder timing: median / p90 of Decoder calls on synthetic and (optionally) real maps.

    python benchmarks/bench_decode.py [--maps mobilenet_thin__astronaut_432x368.npz]
    python benchmarks/bench_decode.py --pathological --people 1 --repeat 20

Synthetic maps imitate a 432x368 network input (maps 46x54 at stride 8): Gaussian part peaks,
unit PAF vectors along the limbs, a little background noise. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pafpose.decode import DecodeParams, Decoder
from pafpose.skeleton import OPENPOSE_18

SKELETON = OPENPOSE_18

#: A standing person facing the camera, in low-res cells relative to the hips' centre.
TEMPLATE = np.array(
    [
        (0, -12), (0, -9), (-3, -9), (-4, -5), (-4.5, -1), (3, -9), (4, -5), (4.5, -1),
        (-2, 0), (-2, 6), (-2, 12), (2, 0), (2, 6), (2, 12),
        (-1, -13.2), (1, -13.2), (-2.2, -12.4), (2.2, -12.4),
    ],
    dtype=np.float64,
)

MODES: dict[str, DecodeParams] = {
    "seed": DecodeParams(),
    "fast": DecodeParams(upsample_method="cubic", smooth="none", refine=True, upsample=2.0),
}


def crowd(n: int, h: int, w: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n people on a jittered grid, scaled to fit their cells."""
    cols = int(np.ceil(np.sqrt(n * w / h)))
    rows = int(np.ceil(n / cols))
    scale = min(h / rows / 28.0, w / cols / 12.0, 1.2)
    people = []
    for k in range(n):
        r, c = divmod(k, cols)
        cx = (c + 0.5) * w / cols + rng.uniform(-0.5, 0.5)
        cy = (r + 0.5) * h / rows + rng.uniform(-0.5, 0.5) + scale * 0.5
        kp = (TEMPLATE + rng.normal(0, 0.3, TEMPLATE.shape)) * scale + (cx, cy)
        people.append(kp)
    return people


def render(
    people: list[np.ndarray], h: int, w: int, rng: np.random.Generator, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """(19, h, w) heatmaps and (38, h, w) PAFs for the given people."""
    heat = np.zeros((SKELETON.num_heatmaps, h, w), np.float32)
    paf = np.zeros((SKELETON.num_pafs, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    sigma = 1.0
    for kp in people:
        for p, (x, y) in enumerate(kp):
            g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
            heat[p] = np.maximum(heat[p], g)
        for li, (a, b) in enumerate(SKELETON.limbs):
            d = kp[b] - kp[a]
            length = max(float(np.hypot(*d)), 1e-6)
            u = d / length
            rx, ry = xx - kp[a][0], yy - kp[a][1]
            along = rx * u[0] + ry * u[1]
            on = (along >= -1) & (along <= length + 1) & (np.abs(rx * u[1] - ry * u[0]) <= 1)
            cx, cy = SKELETON.limb_pafs[li]
            paf[cx][on] = u[0]
            paf[cy][on] = u[1]
    heat[-1] = 1.0 - heat[:-1].max(axis=0)
    if noise > 0:
        heat += rng.normal(0, noise, heat.shape).astype(np.float32)
        paf += rng.normal(0, noise, paf.shape).astype(np.float32)
    return heat, paf


def timings(
    fn: Callable[[], object], repeat: int, warmup: int = 5
) -> tuple[float, float, float]:
    """Wall-clock median and 90th percentile, and median CPU time of fn(), in milliseconds.

    The CPU time (of this thread: the decoder is single-threaded) leaves out the time the
    process waits for a core, which dominates the wall clock on a busy machine.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return (
        float(np.median(wall) * 1e3),
        float(np.percentile(wall, 90) * 1e3),
        float(np.median(cpu) * 1e3),
    )


def main(argv: list[str] | None = None) -> None:
    """Print the timing table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maps", type=Path, help=".npz with `output` NHWC (1, h, w, 57)")
    ap.add_argument("--people", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--size", type=int, nargs=2, default=[432, 368], metavar=("W", "H"))
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.01, help="synthetic background noise")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pathological", action="store_true",
                    help="also all-ones, checkerboard and uniform-noise maps (peaks capped)")
    args = ap.parse_args(argv)

    h, w = args.size[1] // 8, args.size[0] // 8
    rng = np.random.default_rng(args.seed)
    inputs: list[tuple[str, np.ndarray, np.ndarray]] = []
    if args.maps:
        out = np.load(args.maps)["output"][0].transpose(2, 0, 1)
        inputs.append((f"real {args.maps.name}", out[:19], out[19:]))
    for n in args.people:
        heat, paf = render(crowd(n, h, w, rng), h, w, rng, args.noise)
        inputs.append((f"synthetic {n} people", heat, paf))
    if args.pathological:
        board = (np.indices((h, w)).sum(axis=0) % 2).astype(np.float32)
        inputs += [
            ("all ones", np.ones((19, h, w), np.float32), np.ones((38, h, w), np.float32)),
            ("checkerboard", np.repeat(board[None], 19, 0), np.repeat(board[None], 38, 0)),
            ("uniform noise", rng.random((19, h, w), dtype=np.float32),
             rng.uniform(-1, 1, (38, h, w)).astype(np.float32)),
        ]

    decoders = {name: Decoder(p) for name, p in MODES.items()}
    print(f"maps {h}x{w} (network {args.size[0]}x{args.size[1]}), {args.repeat} runs each")
    for name, dec in decoders.items():
        t0 = time.perf_counter()
        dec(*inputs[0][1:])
        p = dec.params
        print(
            f"  {name}: upsample {p.upsample} {p.upsample_method}, smooth {p.smooth}, "
            f"refine {p.refine}; first call {1e3 * (time.perf_counter() - t0):.0f} ms "
            "(numba cache load or compile)"
        )
    header = (
        f"{'maps':<44} {'mode':<5} {'people':>6} {'peaks':>6} "
        f"{'median ms':>10} {'p90 ms':>8} {'cpu ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for label, heat, paf in inputs:
        for name, dec in decoders.items():
            poses = dec(heat, paf)
            peaks = dec.find_peaks(heat)
            med, p90, cpu = timings(lambda d=dec, a=heat, b=paf: d(a, b), args.repeat)
            print(
                f"{label:<44} {name:<5} {len(poses):>6} {peaks.parts.size:>6} "
                f"{med:>10.3f} {p90:>8.3f} {cpu:>8.3f}"
            )


if __name__ == "__main__":
    main()
