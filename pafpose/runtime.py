"""Inference backends for an ONNX pose network: ONNX Runtime (default) and OpenVINO (optional).

Both take an NHWC float32 batch of any size and return N x C x h x w maps (the heatmaps, then the
PAFs, of the model's declared layout: one output tensor, or two joined; layout.NetworkLayout,
its channel counts checked); `create_runtime` picks one by name, or the faster one installed
("auto"). Each runs at a precision (fp32, bf16, int8); "auto" picks one from the CPU's features
(`cpu_features`: VNNI, AVX512_BF16, AMX) and the backend, among those whose measured coco-dev
AP is within AP_TOLERANCE of fp32 (`choose_precision`, table MEASURED).
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
from .layout import DEFAULT_LAYOUT, NetworkLayout, layout_of, read_layout
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


def check_onnx_file(path: str | Path) -> onnx.ModelProto:
    """The ONNX model in a file (weights not loaded); ModelFileError naming the file unless it
    parses as an ONNX model with a graph."""
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
    return model


def _unloadable(path: str | Path, backend: str, exc: BaseException) -> ModelFileError:
    return ModelFileError(f"model file {path} cannot be loaded by {backend} (damaged or not a "
                          f"pose network: {_gist(exc)})")


class Backend(Protocol):
    """What the estimator needs from a backend."""

    backend: str
    threads: int
    layout: NetworkLayout

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an NHWC float32 batch; return N x C x h x w float32 maps."""
        ...


class Outputs:
    """The output tensors of a model that its layout reads, and their conversion to one
    N x C x h x w array (heatmaps, then PAFs), their channel counts checked."""

    def __init__(self, path: str | Path, layout: NetworkLayout,
                 shapes: Sequence[Sequence[object]], names: Sequence[str]) -> None:
        self.path, self.layout = path, layout
        wanted = layout.output_channels
        if len(shapes) < len(wanted) or (len(wanted) == 2 and len(shapes) != 2):
            raise ModelFileError(
                f"model file {path} has {len(shapes)} output(s); its declared layout "
                f"({layout.skeleton.name}, {layout.output}) needs {layout.describe_outputs()}")
        self.names: list[str] = list(names[:len(wanted)])
        for shape, channels, name in zip(shapes, wanted, self.names, strict=False):
            # NCHW or NHWC: the channels are the second or the last dimension; sizes that
            # are dynamic (None or a name) are checked on the first run
            dims = [d for d in (shape[1], shape[-1]) if isinstance(d, int) and d > 0] if len(
                shape) == 4 else []
            if dims and channels not in dims:
                raise self.mismatch(name, dims[0])

    def mismatch(self, name: str, channels: int) -> ModelFileError:
        """The one-line error for an output whose channels do not match the declared layout."""
        layout = self.layout
        return ModelFileError(
            f"model file {self.path}: output {name!r} has {channels} channels, but its declared "
            f"skeleton {layout.skeleton.name} ({layout.output}) needs {layout.describe_outputs()}")

    def maps(self, outs: Sequence[np.ndarray]) -> np.ndarray:
        """The outputs as one contiguous N x C x h x w float32 array (NHWC ones transposed)."""
        arrays = []
        for out, channels, name in zip(outs, self.layout.output_channels, self.names,
                                       strict=True):
            if out.ndim != 4:
                raise ModelFileError(f"model file {self.path}: output {name!r} has shape "
                                     f"{out.shape}, not N x C x h x w")
            if out.shape[1] != channels and out.shape[-1] == channels:  # NHWC output
                out = out.transpose(0, 3, 1, 2)
            if out.shape[1] != channels:
                raise self.mismatch(name, out.shape[1])
            arrays.append(out)
        if len(arrays) == 1:
            return np.ascontiguousarray(arrays[0], dtype=np.float32)
        if len({(a.shape[0], *a.shape[2:]) for a in arrays}) > 1:
            raise ModelFileError(f"model file {self.path}: its heatmaps and PAFs differ in size "
                                 f"({' and '.join(str(a.shape) for a in arrays)})")
        return np.concatenate(arrays, axis=1, dtype=np.float32)


class OrtRuntime:
    """One ONNX Runtime inference session over a pose network (NHWC or NCHW input, any size)."""

    backend = "onnxruntime"

    def __init__(
        self,
        onnx_path: str | Path,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        layout: NetworkLayout | None = None,
    ) -> None:
        """Load the model; `layout` defaults to the one the file declares."""
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
        model = check_onnx_file(onnx_path)
        #: What the network's input and outputs mean.
        self.layout: NetworkLayout = layout or layout_of(model, f"model file {onnx_path}")
        del model
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=wanted)
        except Exception as exc:  # onnxruntime's own error classes derive from Exception
            raise _unloadable(onnx_path, "onnxruntime", exc) from None
        self.providers: list[str] = self.session.get_providers()
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        self.nhwc: bool = inp.shape[-1] == 3
        outputs = self.session.get_outputs()
        self.outputs = Outputs(onnx_path, self.layout, [o.shape for o in outputs],
                               [o.name for o in outputs])

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an NHWC float32 batch; return its maps as N x C x h x w float32."""
        x = batch if self.nhwc else np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return self.outputs.maps(self.session.run(self.outputs.names, {self.input_name: x}))


class OpenVinoRuntime:
    """The same network compiled once by OpenVINO for the CPU (LATENCY hint, dynamic sizes).

    `precision` sets INFERENCE_PRECISION_HINT explicitly (fp32 -> f32, bf16 -> bf16): OpenVINO's
    own default is bf16 on CPUs with AVX512_BF16 or AMX, which would make "fp32" a lie there.
    The model is an ONNX file, or an OpenVINO IR (.xml beside its .bin, e.g. the NNCF INT8 one).
    """

    backend = "openvino"

    def __init__(self, model_path: str | Path, threads: int | None = None,
                 precision: str = "fp32", layout: NetworkLayout | None = None) -> None:
        """Compile the model; `layout` defaults to the one an ONNX file declares."""
        import openvino as ov

        check_precision(self.backend, precision)
        self.threads: int = threads or available_cpus()
        self.precision: str = precision
        core = ov.Core()
        if Path(model_path).suffix.lower() != ".xml":
            # else OpenVINO tries every frontend, noisily
            layout = layout or layout_of(check_onnx_file(model_path), f"model file {model_path}")
        #: What the network's input and outputs mean.
        self.layout: NetworkLayout = layout or DEFAULT_LAYOUT
        # No thread pinning: with pinning, two models of fewer threads than CPUs (the video
        # runner's --workers) would both pin to the first cores and share them.
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads,
                  "ENABLE_CPU_PINNING": False,
                  "INFERENCE_PRECISION_HINT": ov_inference_hint(precision)}
        try:
            model = core.read_model(str(model_path))
            self.nhwc: bool = model.inputs[0].get_partial_shape()[-1] == 3
            shapes = [[d.get_length() if d.is_static else None for d in o.get_partial_shape()]
                      for o in model.outputs]
            self.outputs = Outputs(model_path, self.layout, shapes,
                                   [o.get_any_name() if o.get_names() else f"#{i}"
                                    for i, o in enumerate(model.outputs)])
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
        return self.outputs.maps([request.get_output_tensor(i).data.copy()
                                  for i in range(len(self.outputs.names))])


#: The ONNX Runtime backend under its original name.
Runtime = OrtRuntime


def create_runtime(
    onnx_path: str | Path,
    backend: str = "auto",
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    precision: str = "fp32",
    layout: NetworkLayout | None = None,
) -> OrtRuntime | OpenVinoRuntime:
    """A backend over a network: "auto" (the faster installed), "onnxruntime", "openvino".

    Execution providers (`providers`) are an ONNX Runtime notion: naming some selects it.
    `precision` is the precision of the given model (fp32/int8 files run as they are; bf16 is
    OpenVINO's hint over the fp32 file, refused on ONNX Runtime). `layout`: what the network's
    input and outputs mean (default: what an ONNX file declares in its metadata).
    """
    if providers and backend == "auto":
        backend = "onnxruntime"
    chosen = pick_backend(backend)
    check_precision(chosen, precision)
    if chosen == "openvino":
        if providers:
            raise InputError("execution providers apply to the onnxruntime backend only")
        return OpenVinoRuntime(onnx_path, threads=threads, precision=precision, layout=layout)
    return OrtRuntime(onnx_path, threads=threads, providers=providers, layout=layout)


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
    preset: str = "balanced",
    prototxt: str | Path | None = None,
    accept_license: bool = False,
) -> tuple[Path, OrtRuntime | OpenVinoRuntime, PrecisionChoice]:
    """Resolve the model file for a backend and precision, and load it.

    precision "auto" takes `choose_precision`'s pick for the backend, this CPU and the preset
    named `preset` (its coco-dev measurements decide); when the
    pick cannot be built (an INT8 model without calibration images), the next one is taken.
    The layout (runtime.layout) is the one the float model declares, also for its INT8 builds.
    prototxt / accept_license: see `resolve_model` (Caffe models).
    Returns (model file, runtime, the precision chosen and why).
    """
    from .models.resolve import precision_file, resolve_fp32

    chosen = pick_backend("onnxruntime" if providers and backend == "auto" else backend)
    check_precision(chosen, precision, allow_auto=True)
    if precision == "auto":
        choice = choose_precision(chosen, preset=preset)
        candidates = (choice.precision, *choice.fallbacks)
    else:
        choice, candidates = PrecisionChoice(precision, "asked for"), (precision,)
    fp32 = resolve_fp32(model, stages, progress, prototxt, accept_license)
    for i, candidate in enumerate(candidates):
        try:
            path = precision_file(fp32, candidate, calibration,  # type: ignore[arg-type]
                                  chosen, progress)
        except InputError as exc:
            if i + 1 == len(candidates):
                raise
            choice = PrecisionChoice(candidates[i + 1], f"{candidate} unavailable ({exc})")
            continue
        runtime = create_runtime(path, chosen, threads=threads, providers=providers,
                                 precision=candidate,
                                 layout=None if path == fp32 else read_layout(fp32))
        return path, runtime, choice
    raise AssertionError("unreachable")  # pragma: no cover
