"""The speed/accuracy frontier: COCO keypoint AP against median latency over a grid of settings.

    python benchmarks/frontier.py [--coco DIR] [--backend auto] [--points SPEC ...]
                                  [--limit N] [--out DIR]

Each point is one inference setting, written as tokens joined by "/" (README, "Speed and
accuracy frontier"):

    balanced | fast | accurate | seed | zoom ...   start from that preset (default: balanced)
    h368          network height 368, the width follows the image aspect
    432x368       stretch every image to 432x368 (the seed's way)
    k3            run the network up to stage 3 of 6
    flip          also run the mirrored image
    s0.5+1        network scales (relative to the size), maps averaged
    fp32 | bf16 | int8   precision (any of pafpose.precision.PRECISIONS)

For every point: build the estimator, warm it up on two images, then one run over the same
coco-dev images: AP by pycocotools (pafpose.evaluate.score_results), the median wall-clock
milliseconds per image (in memory -> people; the plot's x) and the median CPU milliseconds
(all threads; a busy machine inflates it less than the wall clock). After each point the
points (JSON, CSV), a Markdown table and a PNG plot of AP against latency with the Pareto
frontier are rewritten atomically in --out, so Ctrl-C keeps every finished point. The plot
is drawn with OpenCV (a pafpose dependency), not matplotlib, so the benchmark runs in the
package's own environment and its plot writer is tested in CI.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pafpose.files import atomic_path, write_image
from pafpose.presets import PRESETS, Preset

#: CPU flags that decide which precision pays off, as /proc/cpuinfo names them.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile",
             "amx_int8", "amx_bf16")

#: The default sweep: network size (height mode, and the seed's stretch), stages, flip, scales;
#: `default_points` adds the zoom preset and the extra precisions when this pafpose has them.
BASE_POINTS: tuple[str, ...] = (
    "h224", "h288", "h320", "h368", "h432", "h496", "h560", "432x368", "seed",
    "h224/k3", "h288/k2", "h288/k3", "h288/k4", "h368/k3", "h432/k3",
    "h368/flip", "h432/flip",
    "h368/s0.5+1", "h368/s1+1.5", "h432/s1+1.5", "h368/s1+1.5/flip",
    "h368/s0.5+1+1.5+2", "h368/s0.5+1+1.5+2/flip",
)
#: Points repeated at every precision other than fp32: the presets, and the frontier's
#: neighbours of `fast` and `balanced` (README "Speed and accuracy frontier").
PRECISION_POINTS: tuple[str, ...] = ("h288", "h368/k3", "fast", "balanced", "h432", "zoom",
                                     "accurate")


# ------------------------------------------------------------------ points


@dataclass(frozen=True)
class Point:
    """One inference setting of the sweep (see the module docstring for the spec syntax)."""

    spec: str
    preset: Preset
    precision: str = "fp32"

    @property
    def size(self) -> str:
        """The network size as the table shows it ("h368", "432x368", "native")."""
        p = self.preset
        if p.resize == "stretch" and isinstance(p.size, tuple):
            return f"{p.size[0]}x{p.size[1]}"
        return f"h{p.size}" if p.resize == "height" else p.resize


def parse_point(spec: str, precisions: Sequence[str] | None = None) -> Point:
    """A Point from its spec, e.g. "h368/k3/flip/s0.5+1/int8" (ValueError when malformed);
    precisions: those a spec may name (default: every precision this pafpose offers)."""
    if precisions is None:
        precisions = sweep_precisions()
    tokens = [t for t in spec.strip().split("/") if t]
    if not tokens:
        raise ValueError("empty point spec")
    base = tokens.pop(0) if tokens[0] in PRESETS else "balanced"
    changes: dict = {}
    precision = "fp32"
    for tok in tokens:
        try:
            if tok in precisions:
                precision = tok
            elif tok == "flip":
                changes["flip"] = True
            elif tok[0] == "h" and tok[1:].isdigit():
                changes.update(resize="height", size=int(tok[1:]))
            elif "x" in tok and all(part.isdigit() for part in tok.split("x", 1)):
                w, h = tok.split("x", 1)
                changes.update(resize="stretch", size=(int(w), int(h)))
            elif tok[0] == "k" and tok[1:].isdigit() and 1 <= int(tok[1:]) <= 6:
                changes["stages"] = int(tok[1:])
            elif tok[0] == "s" and len(tok) > 1:
                changes["scales"] = tuple(float(s) for s in tok[1:].split("+"))
            else:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"point {spec!r}: cannot read {tok!r} (presets {', '.join(PRESETS)}; hN, WxH, "
                f"kK, flip, sA+B, {' | '.join(precisions)})"
            ) from None
    preset = dataclasses.replace(PRESETS[base], name=spec, **changes)
    return Point(spec, preset, precision)


def sweep_precisions() -> tuple[str, ...]:
    """The concrete precisions this pafpose offers (not "auto")."""
    from pafpose.precision import PRECISIONS

    return tuple(p for p in PRECISIONS if p != "auto")


def default_points() -> list[str]:
    """BASE_POINTS, the zoom preset when there is one, and PRECISION_POINTS per extra precision."""
    points = list(BASE_POINTS)
    if "zoom" in PRESETS:
        points.append("zoom")
    for precision in sweep_precisions():
        if precision != "fp32":
            points += [f"{p}/{precision}" for p in PRECISION_POINTS]
    return points


# ------------------------------------------------------------------ frontier


def pareto_front(latency: Sequence[float], ap: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats (as fast or faster and at least as accurate,
    better in one), ordered by latency: AP strictly rises along them."""
    order = sorted(range(len(latency)), key=lambda i: (latency[i], -ap[i]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if ap[i] > best:
            front.append(i)
            best = ap[i]
    return front


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks between lo and hi (positive)."""
    ticks = []
    for exp in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            t = m * 10.0**exp
            if lo <= t <= hi:
                ticks.append(t)
    return ticks


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_frontier(
    labels: Sequence[str],
    latency_ms: Sequence[float],
    ap: Sequence[float],
    path: str | Path,
    title: str = "",
    size: tuple[int, int] = (960, 600),
    x_label: str = "median ms per image (log scale)",
) -> None:
    """Write a PNG plot of AP against latency (log x) with the Pareto frontier drawn and the
    points labelled; `size` is (width, height) in pixels. Drawn with OpenCV."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 80, 20, 40 if title else 20, 50
    font, black, grey = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), (200, 200, 200)
    lat = [max(float(v), 1e-3) for v in latency_ms]
    x_lo, x_hi = min(lat) / 1.25, max(lat) * 1.6  # room on the right for the labels
    step = 0.05 if max(ap) - min(ap) > 0.1 else 0.02
    y_lo = math.floor(min(ap) / step - 0.3) * step
    y_hi = math.ceil(max(ap) / step + 0.3) * step

    def px(ms: float, a: float) -> tuple[int, int]:
        fx = (math.log(ms) - math.log(x_lo)) / (math.log(x_hi) - math.log(x_lo))
        fy = (a - y_lo) / (y_hi - y_lo)
        return (int(round(left + fx * (w - left - right))),
                int(round(h - bottom - fy * (h - top - bottom))))

    for t in _log_ticks(x_lo, x_hi):  # x grid and ticks
        x, _ = px(t, y_lo)
        cv2.line(img, (x, top), (x, h - bottom), grey, 1)
        text = f"{t:g}"
        tw = cv2.getTextSize(text, font, 0.45, 1)[0][0]
        cv2.putText(img, text, (x - tw // 2, h - bottom + 18), font, 0.45, black, 1, cv2.LINE_AA)
    for k in range(int(round((y_hi - y_lo) / step)) + 1):  # y grid and ticks
        a = y_lo + k * step
        _, y = px(x_lo, a)
        cv2.line(img, (left, y), (w - right, y), grey, 1)
        cv2.putText(img, f"{a:.2f}", (left - 45, y + 5), font, 0.45, black, 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (w - right, h - bottom), black, 1)
    tw = cv2.getTextSize(x_label, font, 0.5, 1)[0][0]
    cv2.putText(img, x_label, ((w - tw) // 2, h - 12), font, 0.5, black, 1, cv2.LINE_AA)
    cv2.putText(img, "AP", (6, top + (h - top - bottom) // 2), font, 0.5, black, 1, cv2.LINE_AA)
    if title:
        cv2.putText(img, title, (left, 26), font, 0.55, black, 1, cv2.LINE_AA)
    legend = "red: Pareto frontier (no point is both faster and more accurate)"
    cv2.putText(img, legend, (left + 8, top + 18), font, 0.42, (40, 40, 220), 1, cv2.LINE_AA)

    front = pareto_front(lat, ap)
    pts = [px(m, a) for m, a in zip(lat, ap, strict=True)]
    blue, red = (180, 110, 30), (40, 40, 220)
    cv2.polylines(img, [np.array([pts[i] for i in front], np.int32)], False, red, 2, cv2.LINE_AA)
    placed: list[tuple[int, int, int, int]] = []
    on_front = set(front)
    for i in sorted(range(len(pts)), key=lambda i: (i not in on_front, lat[i])):
        x, y = pts[i]
        cv2.circle(img, (x, y), 5, red if i in on_front else blue, -1, cv2.LINE_AA)
        (tw, th), _ = cv2.getTextSize(labels[i], font, 0.38, 1)
        for dx, dy in ((7, -5), (7, th + 6), (-tw - 7, -5), (-tw - 7, th + 6), (7, -th - 10),
                       (7, 2 * th + 12)):
            box = (x + dx, y + dy - th, x + dx + tw, y + dy + 2)
            if not any(_overlaps(box, b) for b in placed) and box[2] < w - right:
                break
        placed.append(box)
        cv2.putText(img, labels[i], (box[0], box[3] - 2), font, 0.38,
                    red if i in on_front else (90, 90, 90), 1, cv2.LINE_AA)
    write_image(Path(path), img)


# ------------------------------------------------------------------ outputs

#: Columns of points.csv (and of each point in points.json).
COLUMNS = ("point", "size", "stages", "scales", "flip", "precision", "backend", "AP", "AP50",
           "APm", "APl", "AR", "median_ms", "cpu_ms", "images", "load")


#: What the x axis (and the frontier) can take: the wall clock, or the CPU time per image.
X_LABELS = {"median_ms": "median ms per image (log scale)",
            "cpu_ms": "median CPU ms per image, all threads (log scale)"}


def table_markdown(rows: Sequence[dict], x: str = "median_ms") -> str:
    """The points as a Markdown table, fastest first, frontier points (by `x`) in bold."""
    front = set(pareto_front([r[x] for r in rows], [r["AP"] for r in rows]))
    lines = ["| point | stages | scales | flip | precision | AP | APm | APl | ms/image | cpu ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for i in sorted(range(len(rows)), key=lambda i: rows[i][x]):
        r = rows[i]
        name = f"**{r['point']}**" if i in front else r["point"]
        lines.append(
            f"| {name} | {r['stages']} | {r['scales']} | "
            f"{'yes' if r['flip'] else 'no'} | {r['precision']} | {r['AP']:.3f} | "
            f"{r['APm']:.3f} | {r['APl']:.3f} | {r['median_ms']:.1f} | {r['cpu_ms']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_outputs(rows: Sequence[dict], out: Path, title: str, x: str = "median_ms") -> None:
    """points.json, points.csv, frontier.md and frontier.png in `out`, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "points.json") as tmp:
        tmp.write_text(json.dumps(list(rows), indent=1) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(out / "points.csv") as tmp:
        tmp.write_text(buf.getvalue())
    with atomic_path(out / "frontier.md") as tmp:
        tmp.write_text(table_markdown(rows, x))
    if rows:
        draw_frontier([r["point"] for r in rows], [r[x] for r in rows],
                      [r["AP"] for r in rows], out / "frontier.png", title, x_label=X_LABELS[x])


# ------------------------------------------------------------------ measuring


def cpu_report() -> str:
    """The CPU model, pafpose's reading of its features, and the flags that matter here."""
    from pafpose.runtime import cpu_features

    f = cpu_features()
    fields = "  ".join(f"{k}={'yes' if v else 'no'}" for k, v in dataclasses.asdict(f).items()
                       if isinstance(v, bool))
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
                break
    except OSError:
        pass
    raw = "  ".join(f"{name}={'yes' if name in flags else 'no'}" for name in CPU_FLAGS)
    return f"cpu {f.model}  ({os.cpu_count()} cpus)\npafpose: {fields}\nflags: {raw}"


def measure(point: Point, args: argparse.Namespace, coco_json: Path, images: Path) -> dict:
    """One point: AP (pycocotools) and the median wall and CPU milliseconds per image (in
    memory -> people) over one run of the same images, after a warm-up."""
    from pafpose.estimator import PoseEstimator
    from pafpose.evaluate import load_coco_images, score_results
    from pafpose.images import read_image

    est = PoseEstimator(args.model, preset=point.preset, backend=args.backend,
                        precision=point.precision, threads=args.threads, progress=False,
                        calibration=args.calibration if point.precision != "fp32" else None)
    infos = load_coco_images(coco_json)[: args.limit]
    # COCO's annotations are on the stored pixels: no EXIF turn; reading is not timed.
    frames = [(info["id"], read_image(images / info["file_name"], orient=False))
              for info in infos]
    for _, image in frames[: args.warmup]:
        est.inference(image)
    results, wall, cpu = [], [], []
    for image_id, image in frames:
        t0, c0 = time.perf_counter(), time.process_time()
        humans = est.inference(image)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        results += [h.to_coco_result(image_id, round_coords=point.preset.round_coco)
                    for h in humans]
    stats = score_results(coco_json, results, [i for i, _ in frames])
    p = point.preset
    return {
        "point": point.spec, "size": point.size, "stages": p.stages or 6,
        "scales": "+".join(f"{s:g}" for s in p.scales), "flip": p.flip,
        "precision": point.precision, "backend": est.backend,
        **{k: round(stats[k], 4) for k in ("AP", "AP50", "APm", "APl", "AR")},
        "median_ms": round(float(np.median(wall)), 2),
        "cpu_ms": round(float(np.median(cpu)), 2), "images": len(frames),
        "load": round(os.getloadavg()[0], 2),
    }


def _title(backend: str) -> str:
    return f"pafpose on coco-dev: AP against latency, backend {backend}"


def main(argv: list[str] | None = None) -> int:
    """Sweep the points, write the outputs after each, print the table at the end."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coco", type=Path, default=Path("../shared/data/coco-dev"),
                    help="COCO folder: person_keypoints.json + images/ (default: %(default)s)")
    ap.add_argument("--points", nargs="+", metavar="SPEC",
                    help="settings to measure (default: the built-in grid, see --list)")
    ap.add_argument("--list", action="store_true", help="print the default points and exit")
    ap.add_argument("--backend", default="auto", help="auto, onnxruntime or openvino")
    ap.add_argument("--model", default="mobilenet_thin")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--calibration", type=Path, default=Path("../shared/data/media"),
                    help="INT8 calibration photos, not the COCO set (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="first N images only (quick runs)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up images per point")
    ap.add_argument("--out", type=Path, default=Path("frontier-out"))
    ap.add_argument("--x", choices=sorted(X_LABELS), default="median_ms",
                    help="latency for the plot and the frontier: wall clock (default) or CPU time")
    ap.add_argument("--replot", nargs="+", type=Path, metavar="POINTS_JSON",
                    help="measure nothing: rewrite the outputs from these points.json files")
    ap.add_argument("--title", help="plot title (default: names the backend)")
    args = ap.parse_args(argv)

    if args.replot:
        rows = [r for f in args.replot for r in json.loads(f.read_text())]
        backends = ", ".join(sorted({r["backend"] for r in rows}))
        write_outputs(rows, args.out, args.title or _title(backends), args.x)
        print(table_markdown(rows, args.x), end="")
        return 0

    precisions = sweep_precisions()
    specs = args.points or default_points()
    if args.list:
        print("\n".join(specs))
        return 0
    try:
        points = [parse_point(s, precisions) for s in specs]
    except ValueError as exc:
        ap.error(str(exc))
    coco_json, images = args.coco / "person_keypoints.json", args.coco / "images"
    if not coco_json.is_file() or not images.is_dir():
        ap.error(f"{args.coco}: needs person_keypoints.json and images/")

    from pafpose.runtime import pick_backend

    backend = pick_backend(args.backend)
    print(cpu_report())
    print(f"backend {backend}  points {len(points)}  images "
          f"{args.limit or 'all'}  load {os.getloadavg()[0]:.2f}  out {args.out}", flush=True)
    title = args.title or _title(backend)
    rows: list[dict] = []
    failed = 0
    interrupted = False
    bar = tqdm(points, unit="point", file=sys.stderr)
    try:
        for point in bar:
            bar.set_description(point.spec)
            try:
                rows.append(measure(point, args, coco_json, images))
            except (ValueError, OSError, RuntimeError) as exc:  # one setting cannot run here
                failed += 1
                tqdm.write(f"{point.spec}: skipped ({type(exc).__name__}: {exc})",
                           file=sys.stderr)
                continue
            bar.set_postfix_str(f"AP {rows[-1]['AP']:.3f} {rows[-1]['median_ms']:.0f} ms")
            write_outputs(rows, args.out, title, args.x)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: {len(rows)} of {len(points)} points kept in {args.out}",
              file=sys.stderr)
    finally:
        bar.close()
    if rows:
        print(table_markdown(rows, args.x), end="")
    return 130 if interrupted else (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
