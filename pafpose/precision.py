"""Network precision: the CPU's features (VNNI, AVX512_BF16, AMX), the precisions each backend
runs, and the "auto" choice: the fastest precision native on this CPU whose measured coco-dev AP
is within AP_TOLERANCE of fp32 (table MEASURED)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

#: Network precisions. fp32: float32 everywhere (OpenVINO's INFERENCE_PRECISION_HINT set to
#: f32: left alone, OpenVINO runs bf16 on CPUs with AVX512_BF16/AMX). bf16: OpenVINO's bf16
#: hint (ONNX Runtime has no fast bf16 CPU kernels: refused there). int8: the quantized network
#: (ONNX Runtime: QDQ model of models/quantize.py; OpenVINO: NNCF's, see models/resolve.py).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
#: What --precision accepts: a precision, or "auto" (see `choose_precision`).
PRECISION_CHOICES: tuple[str, ...] = ("auto", *PRECISIONS)
#: The default: the fastest precision this CPU runs natively that keeps the preset's AP.
DEFAULT_PRECISION = "auto"
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
    """One preset x backend x precision measured on coco-dev: AP and median ms per image."""

    ap: float
    #: Median milliseconds per image (in memory -> people, 2 threads, Zen 4 with VNNI +
    #: AVX512_BF16): only their order within one preset and backend matters.
    net_ms: float


#: A precision may be picked by "auto" only if its coco-dev AP is within this of fp32's.
AP_TOLERANCE = 0.01
#: Per preset, the coco-dev AP (all 84 images) and median ms per image of each backend x
#: precision, measured on a quiet 2-core AMD Zen 4 (AVX-512, VNNI, AVX512_BF16, no AMX) with
#: `benchmarks/frontier.py` (README "Precision", "Speed and accuracy frontier"). INT8 is
#: calibrated on the default set (models/resolve.py, 53 images, none from coco-dev); the OpenVINO
#: int8 rows run their float part in bf16. The rule is per preset because the loss is: INT8
#: keeps `balanced` (0.289 = fp32) and `accurate`, but costs `fast` (its network is cut at stage
#: 4: 0.254 vs 0.269) and `zoom` (0.340 vs 0.362) more than 0.01, so `auto` takes bf16 there.
#: ONNX Runtime's int8 keeps `balanced` too (0.291, min-max ranges since the calibration's
#: memory is bounded; the earlier percentile ranges gave 0.267). A
#: precision not measured for a preset is never picked by "auto", nor is any but fp32 for a
#: setting not in the table (the `seed` preset, a custom one, a preset with changed stages,
#: scales, flip or size: INT8 costs `seed` 0.02 AP).
MEASURED_BY_PRESET: dict[str, dict[tuple[str, str], Measured]] = {
    "balanced": {
        ("onnxruntime", "fp32"): Measured(0.289, 125.3),
        ("onnxruntime", "int8"): Measured(0.291, 58.9),
        ("openvino", "fp32"): Measured(0.289, 85.1),
        ("openvino", "bf16"): Measured(0.285, 43.7),
        ("openvino", "int8"): Measured(0.289, 37.7),
    },
    "fast": {
        ("onnxruntime", "fp32"): Measured(0.269, 65.5),
        ("openvino", "fp32"): Measured(0.269, 54.2),
        ("openvino", "bf16"): Measured(0.269, 31.1),
        ("openvino", "int8"): Measured(0.254, 29.0),
    },
    "zoom": {
        ("onnxruntime", "fp32"): Measured(0.362, 141.3),
        ("openvino", "fp32"): Measured(0.362, 108.1),
        ("openvino", "bf16"): Measured(0.364, 62.6),
        ("openvino", "int8"): Measured(0.340, 66.2),
    },
    "accurate": {
        ("onnxruntime", "fp32"): Measured(0.402, 2487.4),
        ("openvino", "fp32"): Measured(0.402, 1854.9),
        ("openvino", "bf16"): Measured(0.410, 1035.8),
        ("openvino", "int8"): Measured(0.406, 1036.5),
    },
}
#: The default preset's rows (the figures `pafpose bench` and `pafpose models` quote).
MEASURED: dict[tuple[str, str], Measured] = MEASURED_BY_PRESET["balanced"]


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
                     measured: dict[tuple[str, str], Measured] | None = None,
                     preset: str = "balanced") -> PrecisionChoice:
    """The fastest precision of `backend` that the CPU runs natively and that kept its coco-dev
    AP within AP_TOLERANCE of fp32 for `preset` (MEASURED_BY_PRESET); fp32 when none does."""
    f = features or cpu_features()
    names = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}
    if measured is None and preset not in MEASURED_BY_PRESET:
        return PrecisionChoice("fp32", f"{names.get(backend, backend)}, no coco-dev measurements "
                                       f"of other precisions for the setting {preset!r}")
    table = MEASURED_BY_PRESET[preset] if measured is None else measured
    base = table.get((backend, "fp32"))
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
