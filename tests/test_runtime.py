"""Backends (ONNX Runtime, OpenVINO) and CPU feature detection."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pafpose.estimator import PoseEstimator, preprocess
from pafpose.models.resolve import resolve_model
from pafpose.runtime import (
    AP_TOLERANCE,
    BACKENDS,
    MEASURED,
    CpuFeatures,
    Measured,
    OrtRuntime,
    available_backends,
    check_precision,
    choose_precision,
    cpu_features,
    create_runtime,
    int8_advice,
    load_network,
    ov_inference_hint,
    pick_backend,
)

from .conftest import MEDIA, need

HAS_OPENVINO = "openvino" in available_backends()
SIZE = (432, 368)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo with two people."""
    return cv2.imread(str(need(MEDIA / "basketball1.png")))


@pytest.fixture(scope="module")
def x(photo) -> np.ndarray:
    """The photo as the network input (1, 368, 432, 3), prepared as the seed does."""
    return preprocess(photo, SIZE).tensor


# --- backend selection ------------------------------------------------------------------------


def test_auto_picks_an_installed_backend_and_says_which() -> None:
    installed = available_backends()
    assert "onnxruntime" in installed
    chosen = pick_backend("auto")
    assert chosen in installed
    assert chosen == ("openvino" if HAS_OPENVINO else "onnxruntime")
    assert pick_backend("onnxruntime") == "onnxruntime"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        pick_backend("tensorrt")


@pytest.mark.skipif(HAS_OPENVINO, reason="OpenVINO is installed here")
def test_missing_openvino_is_a_clear_error() -> None:
    hint = r"not installed \(pip install '\.\[openvino\]' in the pafpose checkout\)"
    with pytest.raises(ValueError, match=hint):
        pick_backend("openvino")


def test_estimator_reports_backend(thin_pb, astronaut) -> None:
    est = PoseEstimator(preset="seed", backend="onnxruntime", progress=False)
    assert est.backend == "onnxruntime" and isinstance(est.runtime, OrtRuntime)
    result = est.run(astronaut)
    assert len(result.humans) == 1
    assert set(result.timings) == {"preprocess", "network", "decode", "total"}
    assert result.timings["total"] >= result.timings["network"] + result.timings["decode"] - 1e-6


@pytest.mark.skipif(not HAS_OPENVINO, reason="OpenVINO not installed (pip install '.[openvino]')")
def test_openvino_gives_the_onnxruntime_maps(thin_pb, x, astronaut) -> None:
    onnx_path = resolve_model("mobilenet_thin", progress=False)
    ort_maps = create_runtime(onnx_path, "onnxruntime").run(x)
    ov = create_runtime(onnx_path, "openvino", threads=1)
    assert ov.backend == "openvino" and ov.threads == 1
    # fp32 means f32: OpenVINO's default on AVX512_BF16/AMX CPUs would be bf16 (errors ~0.05)
    assert ov.precision == "fp32" and ov.inference_precision == "f32"
    ov_maps = ov.run(x)
    assert ov_maps.shape == ort_maps.shape == (1, 57, 46, 54)
    # the same float32 graph: only summation order differs (measured max |diff| ~2e-5)
    np.testing.assert_allclose(ov_maps, ort_maps, rtol=0, atol=1e-3)
    # another size on the same compiled model (dynamic shapes)
    assert ov.run(np.zeros((1, 240, 320, 3), np.float32)).shape == (1, 57, 30, 40)
    est = PoseEstimator(preset="seed", backend="openvino", progress=False)
    assert est.backend == "openvino" and len(est(astronaut)) == 1


#: Tolerance of the reduced precisions against fp32 on the maps of a real photo: mean |error|
#: per map family. 8-bit activations / bf16's 8-bit mantissa carry ~0.4% of each value's range
#: as rounding noise; measured 0.002-0.006 here (full model, 432x368). A broken recipe (every
#: layer int8 with ONNX Runtime's defaults) gives 0.05-0.15.
MAP_TOLERANCE = 0.015


def _close_to_fp32(maps: np.ndarray, fp32: np.ndarray) -> None:
    heat_err = float(np.abs(maps[:, :19] - fp32[:, :19]).mean())
    paf_err = float(np.abs(maps[:, 19:] - fp32[:, 19:]).mean())
    assert heat_err < MAP_TOLERANCE and paf_err < MAP_TOLERANCE, (heat_err, paf_err)
    assert np.corrcoef(maps.ravel(), fp32.ravel())[0, 1] > 0.99


@pytest.mark.skipif(not HAS_OPENVINO, reason="OpenVINO not installed (pip install '.[openvino]')")
def test_openvino_bf16_maps_are_close_to_fp32(thin_pb, x) -> None:
    fp32 = create_runtime(resolve_model("mobilenet_thin", progress=False), "onnxruntime").run(x)
    bf16 = create_runtime(resolve_model("mobilenet_thin", progress=False), "openvino",
                          precision="bf16")
    assert bf16.inference_precision == "bf16"
    _close_to_fp32(bf16.run(x), fp32)
    # (INT8 maps against fp32: tests/test_quantize.py, on a 1-stage model built in seconds)
    path, runtime, choice = load_network("mobilenet_thin", backend="openvino", precision="bf16",
                                         progress=False)
    assert path.name == "graph_opt.onnx" and choice.reason == "asked for"
    assert runtime.inference_precision == "bf16"


def test_precisions_offered_and_refused() -> None:
    for precision in ("fp32", "int8"):
        check_precision("onnxruntime", precision)
    check_precision("openvino", "bf16")
    with pytest.raises(ValueError, match="'bf16' is not offered on onnxruntime: ONNX Runtime"):
        check_precision("onnxruntime", "bf16")
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        check_precision("openvino", "fp16")
    with pytest.raises(ValueError, match="unknown precision 'auto'"):
        check_precision("openvino", "auto")  # a runtime needs a resolved precision
    check_precision("openvino", "auto", allow_auto=True)
    with pytest.raises(ValueError, match="not offered on onnxruntime"):
        create_runtime("unused.onnx", "onnxruntime", precision="bf16")


def test_openvino_int8_runs_its_float_part_in_bf16_only_where_native() -> None:
    assert ov_inference_hint("int8", _cpu(vnni=True, avx512_bf16=True)) == "bf16"
    assert ov_inference_hint("int8", _cpu(vnni=True)) == "f32"
    assert ov_inference_hint("fp32", _cpu(avx512_bf16=True)) == "f32"  # fp32 means f32
    assert ov_inference_hint("bf16", _cpu()) == "bf16"


def _cpu(**flags: bool) -> CpuFeatures:
    base = dict(avx2=True, avx512=True, vnni=False, amx=False, avx512_bf16=False, amx_bf16=False)
    return CpuFeatures(model="test", **{**base, **flags})


@pytest.mark.parametrize(
    ("backend", "flags", "expected", "why"),
    [
        ("openvino", {}, "fp32", "no faster precision"),
        ("openvino", {"avx512_bf16": True}, "bf16", "OpenVINO, AVX512_BF16; coco-dev AP"),
        ("openvino", {"vnni": True}, "int8", "OpenVINO, VNNI"),
        ("openvino", {"vnni": True, "avx512_bf16": True}, "int8", "VNNI"),
        ("openvino", {"amx": True, "amx_bf16": True}, "int8", "AMX-INT8"),
        ("onnxruntime", {"avx512_bf16": True}, "fp32", "no faster precision"),  # no bf16 on ORT
        ("onnxruntime", {"vnni": True}, "int8", "ONNX Runtime, VNNI"),
    ],
)
def test_auto_precision_follows_the_cpu(backend, flags, expected, why) -> None:
    table = {("openvino", "fp32"): Measured(0.289, 60), ("openvino", "bf16"): Measured(0.288, 35),
             ("openvino", "int8"): Measured(0.285, 25),
             ("onnxruntime", "fp32"): Measured(0.289, 90),
             ("onnxruntime", "int8"): Measured(0.286, 35)}
    choice = choose_precision(backend, _cpu(**flags), table)
    assert choice.precision == expected and why in choice.reason
    assert choice.fallbacks[-1:] == (("fp32",) if expected != "fp32" else ())


def test_auto_precision_needs_ap_within_tolerance() -> None:
    table = {("openvino", "fp32"): Measured(0.289, 60), ("openvino", "bf16"): Measured(0.288, 35),
             ("openvino", "int8"): Measured(0.289 - AP_TOLERANCE - 0.005, 25)}
    choice = choose_precision("openvino", _cpu(vnni=True, avx512_bf16=True), table)
    assert choice.precision == "bf16" and choice.fallbacks == ("fp32",)
    assert "coco-dev AP 0.288 vs fp32 0.289" in choice.reason
    # the shipped table: every precision auto may pick is within the tolerance of fp32
    for (backend, precision), m in MEASURED.items():
        assert (backend, "fp32") in MEASURED and m.ap > 0 and m.net_ms > 0, precision


# --- CPU features -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "vnni", "amx", "word"),
    [
        ("fpu sse avx2 fma", False, False, "optional"),
        ("avx2 avx512f avx512_vnni", True, False, "recommended"),
        ("avx2 avx_vnni", True, False, "recommended"),
        ("avx2 avx512f avx512_vnni amx_tile amx_int8", True, True, "recommended"),
        ("fpu sse sse2", False, False, "not recommended"),
    ],
)
def test_cpu_features_from_cpuinfo(tmp_path, flags, vnni, amx, word) -> None:
    flags += " avx512_bf16" if vnni else ""
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n"
                    f"processor\t: 1\nmodel name\t: Test CPU\nflags\t\t: {flags}\n")
    f = cpu_features(info)
    assert (f.model, f.vnni, f.amx, f.int8_recommended) == ("Test CPU", vnni, amx, vnni or amx)
    assert f.avx512_bf16 == f.bf16 == vnni and not f.amx_bf16
    assert int8_advice(f).startswith(f"int8 {word}")


def test_cpu_features_of_this_machine_and_of_nothing(tmp_path) -> None:
    assert cpu_features(tmp_path / "absent") == cpu_features(tmp_path / "absent")
    assert cpu_features(tmp_path / "absent").model == "unknown"
    assert isinstance(cpu_features().avx2, bool)
    assert set(BACKENDS) == {"onnxruntime", "openvino"}


def test_fast_preset_runs_three_stages_at_height_288(thin_pb, astronaut) -> None:
    est = PoseEstimator(preset="fast", progress=False)
    assert est.stages == 3 and est.model_path.name.endswith(".stage3.onnx")
    result = est.run(astronaut)
    assert len(result.humans) == 1
    # astronaut is 512x512: height 288 keeps the aspect, so the network sees 288x288
    assert result.heatmaps is not None and result.heatmaps.shape[1:] == (36, 36)


def test_auto_precision_falls_back_when_int8_cannot_be_built(thin_pb, tmp_path,
                                                              monkeypatch) -> None:
    import shutil

    from pafpose import runtime
    from pafpose.models import resolve

    pb = tmp_path / "thin.pb"
    shutil.copy(thin_pb, pb)
    monkeypatch.setattr(runtime, "cpu_features", lambda: _cpu(vnni=True))
    monkeypatch.setattr(runtime, "MEASURED", {("onnxruntime", "fp32"): Measured(0.289, 90),
                                              ("onnxruntime", "int8"): Measured(0.286, 35)})
    monkeypatch.setattr(resolve, "default_calibration", lambda: None)  # nothing to calibrate on
    path, rt, choice = load_network(pb, stages=1, backend="onnxruntime", precision="auto",
                                    progress=False)
    assert choice.precision == "fp32" and path.name == "thin.stage1.onnx"
    assert choice.reason.startswith("int8 unavailable (no INT8 model built yet")
    assert isinstance(rt, OrtRuntime)


def test_bench_and_models_say_what_auto_picked() -> None:
    from pafpose.bench import precision_line
    from pafpose.cli.models import precision_summary

    assert precision_line("fp32", "asked for") == "precision fp32 (asked for)"
    line = precision_line("bf16", "OpenVINO, AVX512_BF16; coco-dev AP 0.285 vs fp32 0.289")
    assert line == ("precision auto -> bf16 (OpenVINO, AVX512_BF16; coco-dev AP 0.285 vs fp32 "
                    "0.289)")
    assert "precision auto -> " in precision_summary()
