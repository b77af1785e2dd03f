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
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
import onnxruntime as ort

from .defaults import available_cpus
from .errors import InputError
from .models.integrity import ModelFileError
from .precision import (  # noqa: F401  (re-exported: runtime is where backends meet precision)
    AP_TOLERANCE,
    MEASURED,
    PRECISION_CHOICES,
    PRECISIONS,
    CpuFeatures,
    Measured,
    PrecisionChoice,
    check_precision,
    choose_precision,
    cpu_features,
    int8_advice,
    ov_inference_hint,
    supported_precisions,
)

#: Backend names accepted by `create_runtime` ("auto" picks among the installed ones).
BACKENDS: tuple[str, ...] = ("onnxruntime", "openvino")
#: "auto" preference, measured on the project's 2-core AVX2 machine (README, "Speed"): with 2
#: threads OpenVINO runs the same graph 1.45x (fp32) and 1.1x (int8) faster than ONNX Runtime.
AUTO_ORDER: tuple[str, ...] = ("openvino", "onnxruntime")


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
        self.threads: int = threads or available_cpus()
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
        self.threads: int = threads or available_cpus()
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
    prototxt: str | Path | None = None,
    accept_license: bool = False,
) -> tuple[Path, OrtRuntime | OpenVinoRuntime, PrecisionChoice]:
    """Resolve the model file for a backend and precision, and load it.

    precision "auto" takes `choose_precision`'s pick for the backend and this CPU; when the
    pick cannot be built (an INT8 model without calibration images), the next one is taken.
    prototxt / accept_license: see `resolve_model` (Caffe models).
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
                                 calibration=calibration, backend=chosen,  # type: ignore[arg-type]
                                 prototxt=prototxt, accept_license=accept_license)
        except InputError as exc:
            if i + 1 == len(candidates):
                raise
            choice = PrecisionChoice(candidates[i + 1], f"{candidate} unavailable ({exc})")
            continue
        runtime = create_runtime(path, chosen, threads=threads, providers=providers,
                                 precision=candidate)
        return path, runtime, choice
    raise AssertionError("unreachable")  # pragma: no cover
