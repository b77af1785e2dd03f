"""Inference backends for an ONNX pose network: ONNX Runtime (default) and OpenVINO (optional).

Both take an NHWC float32 batch of any size and return N x 57 x h x w maps; `create_runtime`
picks one by name, or the faster one installed ("auto"). Each runs at a precision (fp32, bf16,
int8); "auto" picks one from the CPU's features (`cpu_features`: VNNI, AVX512_BF16, AMX) and the
backend, among those whose measured coco-dev AP is within AP_TOLERANCE of fp32
(`choose_precision`, table MEASURED).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
import onnxruntime as ort

from .defaults import available_cpus
from .errors import InputError
from .models.integrity import ModelFileError

#: Backend names accepted by `create_runtime` ("auto" picks among the installed ones).
BACKENDS: tuple[str, ...] = ("onnxruntime", "openvino")
#: Network precisions. fp32: float32 everywhere (OpenVINO's INFERENCE_PRECISION_HINT set to
#: f32: left alone, OpenVINO runs bf16 on CPUs with AVX512_BF16/AMX). bf16: OpenVINO's bf16
#: hint (ONNX Runtime has no fast bf16 CPU kernels: refused there). int8: the quantized network
#: (ONNX Runtime: QDQ model of models/quantize.py; OpenVINO: NNCF's, see models/resolve.py).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
#: What --precision accepts: a precision, or "auto" (see `choose_precision`).
PRECISION_CHOICES: tuple[str, ...] = ("auto", *PRECISIONS)
#: OpenVINO's INFERENCE_PRECISION_HINT per precision. The int8 IR's float parts (the
#: refinement stages) run bf16 where the CPU has it natively (see `ov_inference_hint`).
_OV_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def ov_inference_hint(precision: str, features: CpuFeatures | None = None) -> str:
    """OpenVINO's INFERENCE_PRECISION_HINT for a precision on this CPU.

    int8 runs its float parts in bf16 on CPUs with native bf16: measured on coco-dev, AP 0.289
    (0.290 with f32) and ~1.25x faster than bf16 alone (README, "Precision")."""
    if precision == "int8" and (features or cpu_features()).bf16:
        return "bf16"
    return _OV_HINT[precision]
#: "auto" preference, measured on the project's 2-core AVX2 machine (README, "Speed"): with 2
#: threads OpenVINO runs the same graph 1.45x (fp32) and 1.1x (int8) faster than ONNX Runtime.
AUTO_ORDER: tuple[str, ...] = ("openvino", "onnxruntime")


def default_threads() -> int:
    """A sensible intra-op thread count: the CPUs this process may use."""
    return available_cpus()


@functools.cache
def _openvino_installed() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def available_backends() -> list[str]:
    """The backends installed here (importable), in BACKENDS order."""
    return ["onnxruntime"] + (["openvino"] if _openvino_installed() else [])


def pick_backend(backend: str = "auto") -> str:
    """Resolve "auto" to the faster installed backend; check that a named one is installed."""
    if backend == "auto":
        installed = available_backends()
        return next(b for b in AUTO_ORDER if b in installed)
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    if backend == "openvino" and not _openvino_installed():
        raise InputError(f"backend {backend!r} is not installed "
                         f"(pip install '.[{backend}]' in the pafpose checkout)")
    return backend


@dataclass(frozen=True)
class CpuFeatures:
    """What the CPU offers for low-precision inference (from /proc/cpuinfo on Linux)."""

    model: str
    avx2: bool
    avx512: bool
    vnni: bool  # AVX512-VNNI or AVX-VNNI: int8 dot products in one instruction
    amx: bool  # AMX-INT8 tiles
    avx512_bf16: bool = False  # bf16 dot products (AVX512_BF16)
    amx_bf16: bool = False  # AMX-BF16 tiles

    @property
    def int8_recommended(self) -> bool:
        """True where INT8 has the hardware to pay off clearly (VNNI or AMX)."""
        return self.vnni or self.amx

    @property
    def bf16(self) -> bool:
        """True where bf16 runs natively (AVX512_BF16 or AMX-BF16): else it is emulated."""
        return self.avx512_bf16 or self.amx_bf16


def cpu_features(cpuinfo: str | Path = "/proc/cpuinfo") -> CpuFeatures:
    """Read the CPU model and its INT8/BF16-relevant flags (all False when unknown)."""
    model, flags = "unknown", set()
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return CpuFeatures(
        model=model,
        avx2="avx2" in flags,
        avx512="avx512f" in flags,
        vnni=bool(flags & {"avx512_vnni", "avx_vnni", "avx512vnni"}),
        amx="amx_int8" in flags,
        avx512_bf16="avx512_bf16" in flags,
        amx_bf16="amx_bf16" in flags,
    )


def int8_advice(features: CpuFeatures | None = None) -> str:
    """One line: whether --precision int8 is worth it on this CPU, and why."""
    f = features or cpu_features()
    if f.amx:
        return "int8 recommended: this CPU has AMX-INT8 tiles"
    if f.vnni:
        return "int8 recommended: this CPU has VNNI int8 dot products"
    if f.avx2:
        return ("int8 optional: AVX2 without VNNI/AMX gains less (1.35x on the network of the "
                "reference AVX2 CPU); compare pafpose bench --precision int8 with fp32")
    return "int8 not recommended: no AVX2/VNNI/AMX int8 instructions detected"


@dataclass(frozen=True)
class Measured:
    """One (backend, precision) measured on coco-dev: AP (default preset) and network ms."""

    ap: float
    #: Median network time at 432x368 (full model, 2 threads, Zen 4 with VNNI + AVX512_BF16).
    net_ms: float


#: A precision may be picked by "auto" only if its coco-dev AP is within this of fp32's.
AP_TOLERANCE = 0.01
#: coco-dev AP (`pafpose eval`, default preset `balanced`, all 84 images) and network median ms
#: at 432x368 (2 threads, interleaved timing; machine shared, load ~3.5) of each backend x
#: precision on a 2-core AMD Zen 4 (AVX-512, VNNI, AVX512_BF16, no AMX); README "Precision".
#: INT8 calibrated on the default set (models/resolve.py, 53 images, none from coco-dev); the
#: OpenVINO int8 row runs its float part in bf16 (f32: AP 0.290, 44 ms). ONNX Runtime's int8
#: (0.267) misses the 0.01 rule: "auto" keeps fp32 there.
MEASURED: dict[tuple[str, str], Measured] = {
    ("onnxruntime", "fp32"): Measured(0.289, 89.1),
    ("onnxruntime", "int8"): Measured(0.267, 70.2),
    ("openvino", "fp32"): Measured(0.289, 85.9),
    ("openvino", "bf16"): Measured(0.285, 30.6),
    ("openvino", "int8"): Measured(0.289, 27.6),
}


def supported_precisions(backend: str) -> tuple[str, ...]:
    """The precisions a backend runs (ONNX Runtime: no bf16, it has no fast CPU path)."""
    return PRECISIONS if backend == "openvino" else ("fp32", "int8")


def check_precision(backend: str, precision: str, allow_auto: bool = False) -> None:
    """Refuse an unknown precision, or one the backend does not run (InputError, one line)."""
    choices = PRECISION_CHOICES if allow_auto else PRECISIONS
    if precision not in choices:
        raise InputError(f"unknown precision {precision!r}; choose {', '.join(choices)}")
    if precision != "auto" and precision not in supported_precisions(backend):
        raise InputError(f"precision {precision!r} is not offered on {backend}: ONNX Runtime has "
                         "no fast bf16 CPU kernels (it would emulate them, slower than fp32); "
                         "use --backend openvino, or --precision fp32/int8")


def _hardware_reason(precision: str, f: CpuFeatures) -> str | None:
    """The CPU feature that makes `precision` pay off here, or None when it lacks one."""
    if precision == "int8":
        return "AMX-INT8" if f.amx else "VNNI" if f.vnni else None
    if precision == "bf16":
        return "AMX-BF16" if f.amx_bf16 else "AVX512_BF16" if f.avx512_bf16 else None
    return "baseline"


@dataclass(frozen=True)
class PrecisionChoice:
    """What `choose_precision` picked, why, and what to fall back to (fastest first)."""

    precision: str
    reason: str
    fallbacks: tuple[str, ...] = ()


def choose_precision(backend: str, features: CpuFeatures | None = None,
                     measured: dict[tuple[str, str], Measured] | None = None) -> PrecisionChoice:
    """The fastest precision of `backend` that the CPU runs natively and that kept its coco-dev
    AP within AP_TOLERANCE of fp32 (MEASURED); fp32 when none does."""
    f = features or cpu_features()
    table = MEASURED if measured is None else measured
    base = table.get((backend, "fp32"))
    names = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}
    ok: list[tuple[float, str, str]] = []
    for precision in supported_precisions(backend):
        m = table.get((backend, precision))
        hw = _hardware_reason(precision, f)
        if precision == "fp32" or m is None or base is None or hw is None:
            continue
        if base.ap - m.ap <= AP_TOLERANCE + 1e-9:
            ok.append((m.net_ms, precision, f"{names.get(backend, backend)}, {hw}; coco-dev AP "
                       f"{m.ap:.3f} vs fp32 {base.ap:.3f}"))
    ok.sort()
    if not ok:
        why = "no faster precision is both native on this CPU and within AP 0.01 of fp32"
        return PrecisionChoice("fp32", f"{names.get(backend, backend)}, {why}")
    return PrecisionChoice(ok[0][1], ok[0][2], tuple(p for _, p, _ in ok[1:]) + ("fp32",))


def _gist(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200]


def check_onnx_file(path: str | Path) -> None:
    """Raise ModelFileError naming the file unless it parses as an ONNX model with a graph."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ModelFileError(f"model file {p}: {exc.strerror}") from None
    if size == 0:
        raise ModelFileError(f"model file {p} is empty, not an ONNX model")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelFileError(
            f"model file {p} is not a valid ONNX model (corrupt or truncated: {_gist(exc)})"
        ) from None
    if not model.graph.node or not model.graph.input or not model.graph.output:
        raise ModelFileError(f"model file {p} is not a valid ONNX model (no graph in it)")


def _unloadable(path: str | Path, backend: str, exc: BaseException) -> ModelFileError:
    return ModelFileError(f"model file {path} cannot be loaded by {backend} (damaged or not a "
                          f"pose network: {_gist(exc)})")


class Backend(Protocol):
    """What the estimator needs from a backend."""

    backend: str
    threads: int

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an NHWC float32 batch; return N x 57 x h x w float32 maps."""
        ...


def _nchw_maps(out: np.ndarray) -> np.ndarray:
    if out.shape[1] != 57 and out.shape[-1] == 57:  # NHWC output
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out, dtype=np.float32)


class OrtRuntime:
    """One ONNX Runtime inference session over a pose network (NHWC or NCHW input, any size)."""

    backend = "onnxruntime"

    def __init__(
        self,
        onnx_path: str | Path,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        available = ort.get_available_providers()
        wanted = list(providers) if providers else ["CPUExecutionProvider"]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise InputError(
                f"execution provider(s) {', '.join(missing)} not installed; "
                f"available: {', '.join(available)}"
            )
        if "CPUExecutionProvider" not in wanted:
            wanted.append("CPUExecutionProvider")
        self.threads: int = threads or default_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        check_onnx_file(onnx_path)
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=wanted)
        except Exception as exc:  # onnxruntime's own error classes derive from Exception
            raise _unloadable(onnx_path, "onnxruntime", exc) from None
        self.providers: list[str] = self.session.get_providers()
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        self.nhwc: bool = inp.shape[-1] == 3
        self.output_name: str = self.session.get_outputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an NHWC float32 batch; return its maps as N x C x h x w float32."""
        x = batch if self.nhwc else np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        (out,) = self.session.run([self.output_name], {self.input_name: x})
        return _nchw_maps(out)


class OpenVinoRuntime:
    """The same network compiled once by OpenVINO for the CPU (LATENCY hint, dynamic sizes).

    `precision` sets INFERENCE_PRECISION_HINT explicitly (fp32 -> f32, bf16 -> bf16): OpenVINO's
    own default is bf16 on CPUs with AVX512_BF16 or AMX, which would make "fp32" a lie there.
    The model is an ONNX file, or an OpenVINO IR (.xml beside its .bin, e.g. the NNCF INT8 one).
    """

    backend = "openvino"

    def __init__(self, model_path: str | Path, threads: int | None = None,
                 precision: str = "fp32") -> None:
        import openvino as ov

        check_precision(self.backend, precision)
        self.threads: int = threads or default_threads()
        self.precision: str = precision
        core = ov.Core()
        if Path(model_path).suffix.lower() != ".xml":
            check_onnx_file(model_path)  # else OpenVINO tries every frontend, noisily
        # No thread pinning: with pinning, two models of fewer threads than CPUs (the video
        # runner's --workers) would both pin to the first cores and share them.
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads,
                  "ENABLE_CPU_PINNING": False,
                  "INFERENCE_PRECISION_HINT": ov_inference_hint(precision)}
        try:
            model = core.read_model(str(model_path))
            self.nhwc: bool = model.inputs[0].get_partial_shape()[-1] == 3
            self.compiled = core.compile_model(model, "CPU", config)
        except (RuntimeError, IndexError) as exc:
            raise _unloadable(model_path, "OpenVINO", exc) from None
        #: What OpenVINO compiled the float parts for ("f32" or "bf16"), read back.
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.inference_precision: str = (hint.get_type_name() if hasattr(hint, "get_type_name")
                                         else str(hint))
        self._local = threading.local()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an NHWC float32 batch; return its maps as N x C x h x w float32."""
        x = batch if self.nhwc else batch.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x, dtype=np.float32)
        request = getattr(self._local, "request", None)
        if request is None:  # one infer request per thread: requests are not thread-safe
            request = self._local.request = self.compiled.create_infer_request()
        request.infer({0: x})
        return _nchw_maps(request.get_output_tensor(0).data.copy())


#: The ONNX Runtime backend under its original name.
Runtime = OrtRuntime


def create_runtime(
    onnx_path: str | Path,
    backend: str = "auto",
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    precision: str = "fp32",
) -> OrtRuntime | OpenVinoRuntime:
    """A backend over a network: "auto" (the faster installed), "onnxruntime", "openvino".

    Execution providers (`providers`) are an ONNX Runtime notion: naming some selects it.
    `precision` is the precision of the given model (fp32/int8 files run as they are; bf16 is
    OpenVINO's hint over the fp32 file, refused on ONNX Runtime).
    """
    if providers and backend == "auto":
        backend = "onnxruntime"
    chosen = pick_backend(backend)
    check_precision(chosen, precision)
    if chosen == "openvino":
        if providers:
            raise InputError("execution providers apply to the onnxruntime backend only")
        return OpenVinoRuntime(onnx_path, threads=threads, precision=precision)
    return OrtRuntime(onnx_path, threads=threads, providers=providers)


def load_network(
    model: str | Path,
    *,
    stages: int | None = None,
    backend: str = "auto",
    precision: str = "fp32",
    calibration: object = None,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    progress: bool = True,
) -> tuple[Path, OrtRuntime | OpenVinoRuntime, PrecisionChoice]:
    """Resolve the model file for a backend and precision, and load it.

    precision "auto" takes `choose_precision`'s pick for the backend and this CPU; when the
    pick cannot be built (an INT8 model without calibration images), the next one is taken.
    Returns (model file, runtime, the precision chosen and why).
    """
    from .models.resolve import resolve_model

    chosen = pick_backend("onnxruntime" if providers and backend == "auto" else backend)
    check_precision(chosen, precision, allow_auto=True)
    if precision == "auto":
        choice = choose_precision(chosen)
        candidates = (choice.precision, *choice.fallbacks)
    else:
        choice, candidates = PrecisionChoice(precision, "asked for"), (precision,)
    for i, candidate in enumerate(candidates):
        try:
            path = resolve_model(model, stages=stages, progress=progress, precision=candidate,
                                 calibration=calibration, backend=chosen)  # type: ignore[arg-type]
        except InputError as exc:
            if i + 1 == len(candidates):
                raise
            choice = PrecisionChoice(candidates[i + 1], f"{candidate} unavailable ({exc})")
            continue
        runtime = create_runtime(path, chosen, threads=threads, providers=providers,
                                 precision=candidate)
        return path, runtime, choice
    raise AssertionError("unreachable")  # pragma: no cover
