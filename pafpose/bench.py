"""Per-stage timing of the pose pipeline on real images: read, preprocess, network, decode.

`run_bench(...)` warms up, then times each stage over `runs` inferences and returns a
:class:`BenchResult` (median and p90 per stage, frames per second, the network's GMAC at the
sizes it ran, the GFLOP/s that achieves, peak memory). `pafpose bench` prints it.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from .defaults import DEFAULT_MODEL
from .errors import InputError, NotFoundError
from .estimator import PoseEstimator
from .images import IMAGE_SUFFIXES, expand_inputs, read_image
from .precision import DEFAULT_PRECISION
from .runtime import CpuFeatures, cpu_features, int8_advice

#: The stages timed, in pipeline order ("total" = image in memory -> people, without "read").
STAGES: tuple[str, ...] = ("read", "preprocess", "network", "decode", "total")
#: Images used when none are given: the project's shared data folder beside the repository
#: (else ../shared/data from the working folder, see default_images).
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_IMAGE_COUNT = 8


@dataclass(frozen=True)
class StageTime:
    """Median, 90th percentile and minimum of one stage, in milliseconds."""

    median_ms: float
    p90_ms: float
    #: The fastest run: on a busy machine the closest to what the code costs when alone.
    min_ms: float


@dataclass
class BenchResult:
    """What `run_bench` measured."""

    model: str
    preset: str
    backend: str
    precision: str
    stages: int | None
    threads: int
    #: Distinct network input sizes (w, h) seen, padded as the network ran them.
    input_sizes: list[tuple[int, int]]
    images: int
    runs: int
    times: dict[str, StageTime]
    #: Frames per second from the median total (image in memory -> people).
    fps: float
    #: Multiply-accumulates of the network per image (mean over the runs), in billions.
    gmac: float
    #: Achieved 2 * MAC / network time, in GFLOP/s (median network time).
    gflops: float
    #: Peak resident memory of this process, MiB.
    peak_mib: float
    people: float
    cpu: CpuFeatures
    advice: str
    #: Why this precision: "asked for", or what `--precision auto` picked and why.
    precision_reason: str = "asked for"
    interrupted: bool = False
    samples: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def format(self) -> str:
        """A human-readable report (the one `pafpose bench` prints)."""
        sizes = ", ".join(f"{w}x{h}" for w, h in self.input_sizes[:4])
        if len(self.input_sizes) > 4:
            sizes += f" (+{len(self.input_sizes) - 4} more)"
        stages = "all" if self.stages is None else str(self.stages)
        lines = [
            f"model {self.model}  preset {self.preset}  stages {stages}  backend {self.backend}"
            f"  precision {self.precision}  threads {self.threads}",
            f"network input {sizes}  {self.images} images  {self.runs} runs"
            + ("  (interrupted)" if self.interrupted else ""),
            f"cpu {self.cpu.model}  avx2={'yes' if self.cpu.avx2 else 'no'}"
            f"  vnni={'yes' if self.cpu.vnni else 'no'}"
            f"  avx512_bf16={'yes' if self.cpu.avx512_bf16 else 'no'}"
            f"  amx={'yes' if self.cpu.amx else 'no'}",
            precision_line(self.precision, self.precision_reason),
            "",
            f"{'stage':<11}{'median ms':>10}{'p90 ms':>10}{'min ms':>10}",
        ]
        for name in STAGES:
            t = self.times[name]
            lines.append(f"{name:<11}{t.median_ms:>10.1f}{t.p90_ms:>10.1f}{t.min_ms:>10.1f}")
        lines += [
            "",
            f"fps {self.fps:.1f} (total, image in memory -> people)",
            f"cpu time {self.times['cpu'].median_ms:.1f} ms/image (median, all threads)",
            f"network {self.gmac:.2f} GMAC/image, {self.gflops:.1f} GFLOP/s achieved",
            f"peak memory {self.peak_mib:.0f} MiB   people/image {self.people:.1f}",
            self.advice,
        ]
        return "\n".join(lines)


def precision_line(precision: str, reason: str) -> str:
    """One line: the precision used and why, e.g. "precision auto -> bf16 (OpenVINO, ...)"."""
    if reason == "asked for":
        return f"precision {precision} (asked for)"
    return f"precision auto -> {precision} ({reason})"


def default_images(count: int = DEFAULT_IMAGE_COUNT) -> list[Path]:
    """Real photos for benchmarking: the shared media and COCO dev images, when present beside
    the sources (a checkout) or at ../shared/data from the working folder (an installed copy
    run from the checkout, as the README does)."""
    for shared in dict.fromkeys((_SHARED, Path("..") / "shared" / "data")):
        found: list[Path] = []
        for folder in (shared / "media", shared / "coco-dev" / "images"):
            if folder.is_dir():
                found += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if found:
            return found[:count]
    return []


def bench_images(images: Sequence[str | Path] | None = None) -> list[Path]:
    """The given image files / folders expanded, else :func:`default_images`; never empty."""
    for item in images or ():
        if not Path(item).exists():
            raise NotFoundError(f"{item}: no such file or folder")
    paths = expand_inputs(images) if images else default_images()
    if not paths:
        raise InputError("no benchmark images found: give some with --images DIR")
    return paths


def conv_macs(model: onnx.ModelProto | str | Path, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of every Conv for one input shape (NHWC, as the runtimes take it;
    NCHW models get it transposed): weight size x output pixels."""
    from .models.onnxbuild import inferred_shapes

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(input_shape) == 4 and input_shape[-1] == 3 and dims[1].dim_value == 3:  # NCHW model
        input_shape = [input_shape[0], 3, input_shape[1], input_shape[2]]
    shapes = inferred_shapes(model, input_shape)
    weights = {i.name: tuple(i.dims) for i in model.graph.initializer}
    for node in model.graph.node:  # QDQ models: weights come out of DequantizeLinear
        if node.op_type == "DequantizeLinear" and node.input[0] in weights:
            weights[node.output[0]] = weights[node.input[0]]
    total = 0
    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] not in weights:
            continue
        out = shapes.get(node.output[0])
        if not out or len(out) != 4 or not all(out):
            raise ValueError(f"cannot infer the output shape of {node.name!r}")
        total += int(np.prod(weights[node.input[1]])) * out[2] * out[3]
    return total


class _ShapeRecorder:
    """Wraps a runtime and records the input shape of each call."""

    def __init__(self, runtime: object) -> None:
        self._runtime = runtime
        self.shapes: list[tuple[int, ...]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._runtime, name)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Record the shape, then run the wrapped runtime."""
        self.shapes.append(tuple(batch.shape))
        return self._runtime.run(batch)  # type: ignore[attr-defined]


def _stat(values: list[float]) -> StageTime:
    if not values:
        return StageTime(float("nan"), float("nan"), float("nan"))
    return StageTime(float(np.median(values)), float(np.percentile(values, 90)),
                     float(np.min(values)))


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far, MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def run_bench(
    model: str | Path = DEFAULT_MODEL,
    *,
    preset: str = "balanced",
    target_size: tuple[int, int] | None = None,
    upsample: float | None = None,
    stages: int | None = None,
    backend: str = "auto",
    precision: str = DEFAULT_PRECISION,
    calibration: str | Path | Sequence | None = None,
    threads: int | None = None,
    images: Sequence[str | Path] | None = None,
    runs: int = 20,
    warmup: int | None = None,
    progress: bool = True,
    estimator: PoseEstimator | None = None,
) -> BenchResult:
    """Time read / preprocess / network / decode over `runs` inferences on real images.

    Images cycle in order; `warmup` uncounted runs come first (default: every image once, at
    least 2). An INT8 model not built yet is calibrated on `calibration` (default: the default
    calibration set, never the benchmark images, which may be evaluation images).
    Ctrl-C stops the timed runs early and reports those finished.
    """
    if runs < 1:
        raise InputError(f"runs must be >= 1, got {runs}")
    paths = bench_images(images)
    if estimator is None:
        estimator = PoseEstimator(
            model, target_size, preset=preset, upsample=upsample, stages=stages,
            backend=backend, precision=precision, threads=threads, progress=progress,
            calibration=calibration,
        )
    frames = [(p, read_image(p, estimator.max_pixels)) for p in paths]
    recorder = _ShapeRecorder(estimator.runtime)
    estimator.runtime = recorder  # type: ignore[assignment]
    try:
        warmup = max(2, len(frames)) if warmup is None else warmup
        for i in tqdm(range(warmup), desc="warm-up", unit="run", disable=not progress,
                      file=sys.stderr):
            estimator.inference(frames[i % len(frames)][1])
        recorder.shapes.clear()
        samples: dict[str, list[float]] = {name: [] for name in (*STAGES, "cpu")}
        people: list[int] = []
        interrupted = False
        try:
            for i in tqdm(range(runs), desc="bench", unit="run", disable=not progress,
                          file=sys.stderr):
                path, _ = frames[i % len(frames)]
                start = time.perf_counter()
                image = read_image(path, estimator.max_pixels)
                samples["read"].append((time.perf_counter() - start) * 1000)
                cpu = time.process_time()
                result = estimator.run(image)
                people.append(len(result.humans))
                samples["cpu"].append((time.process_time() - cpu) * 1000)
                for name in ("preprocess", "network", "decode", "total"):
                    samples[name].append(result.timings[name])
        except KeyboardInterrupt:
            interrupted = True
        if not people:
            raise KeyboardInterrupt
        shapes = list(recorder.shapes)
    finally:
        estimator.runtime = recorder._runtime  # type: ignore[assignment]
    fp32_model = onnx.load(str(_fp32_path(estimator)))
    macs_by_shape = {s: conv_macs(fp32_model, s) for s in set(shapes)}
    gmac = float(np.mean([macs_by_shape[s] for s in shapes])) / 1e9 * len(shapes) / len(people)
    times = {name: _stat(v) for name, v in samples.items()}
    net_s = times["network"].median_ms / 1000
    features = cpu_features()
    return BenchResult(
        model=str(model), preset=estimator.preset.name, backend=estimator.backend,
        precision=estimator.precision, stages=estimator.stages,
        threads=int(getattr(estimator.runtime, "threads", 0)),
        input_sizes=sorted({(s[2], s[1]) for s in shapes}), images=len(frames),
        runs=len(people), times=times, fps=1000.0 / times["total"].median_ms,
        gmac=gmac, gflops=2 * gmac / net_s if net_s > 0 else float("nan"),
        peak_mib=peak_memory_mib(), people=float(np.mean(people)), cpu=features,
        advice=int8_advice(features), interrupted=interrupted, samples=samples,
        precision_reason=getattr(estimator, "precision_reason", "asked for"),
    )


def _fp32_path(estimator: PoseEstimator) -> Path:
    """The float model behind the estimator's network (MACs are counted on it)."""
    path = Path(estimator.model_path)
    for suffix in (".int8.onnx", ".ov-int8.xml"):
        if path.name.endswith(suffix):
            fp32 = path.with_name(path.name[: -len(suffix)] + ".onnx")
            if fp32.is_file():
                return fp32
    return path
