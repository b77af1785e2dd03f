"""Backends (ONNX Runtime, OpenVINO), stage-K models, INT8 models, CPU feature detection."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from pafpose.estimator import PoseEstimator, preprocess
from pafpose.models.quantize import default_keep_float, equalize, head_and_tail_convs
from pafpose.models.resolve import resolve_model
from pafpose.runtime import (
    BACKENDS,
    OrtRuntime,
    available_backends,
    cpu_features,
    create_runtime,
    int8_advice,
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


@pytest.fixture(scope="module")
def calibration() -> list[Path]:
    """Real photos for INT8 calibration (none of them is the photo the maps are compared on)."""
    folder = need(MEDIA / "posetrack-frames")
    return sorted(folder.glob("*.jpg"))[:4] + [need(MEDIA / "messi5.jpg")]


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
    with pytest.raises(ValueError, match=r"not installed \(pip install 'pafpose\[openvino\]'\)"):
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
    ov_maps = ov.run(x)
    assert ov_maps.shape == ort_maps.shape == (1, 57, 46, 54)
    # the same float32 graph: only summation order differs (measured max |diff| ~2e-5)
    np.testing.assert_allclose(ov_maps, ort_maps, rtol=0, atol=1e-3)
    # another size on the same compiled model (dynamic shapes)
    assert ov.run(np.zeros((1, 240, 320, 3), np.float32)).shape == (1, 57, 30, 40)
    est = PoseEstimator(preset="seed", backend="openvino", progress=False)
    assert est.backend == "openvino" and len(est(astronaut)) == 1


# --- stage-K models ---------------------------------------------------------------------------


def test_stage_models_shapes_and_k6_is_the_full_model(thin_pb, x) -> None:
    full = create_runtime(resolve_model("mobilenet_thin", progress=False), "onnxruntime").run(x)
    maps = {}
    for k in (1, 2, 6):
        path = resolve_model("mobilenet_thin", stages=k, progress=False)
        assert path.name.endswith(f".stage{k}.onnx")
        maps[k] = create_runtime(path, "onnxruntime").run(x)
        assert maps[k].shape == (1, 57, 46, 54)
    np.testing.assert_allclose(maps[6], full, rtol=0, atol=1e-5)
    assert np.abs(maps[1] - full).max() > 0.05  # an earlier stage really is different
    est = PoseEstimator(preset="seed", stages=2, progress=False)
    assert est.stages == 2 and est.model_path.name.endswith(".stage2.onnx")


# --- INT8 -------------------------------------------------------------------------------------


def test_equalize_is_exact_in_float(thin_pb, x, calibration) -> None:
    src = resolve_model("mobilenet_thin", stages=2, progress=False)
    model = onnx.load(str(src))
    tensors = [preprocess(cv2.imread(str(p)), SIZE).tensor for p in calibration[:2]]
    eq = equalize(model, tensors)
    changed = sum(
        not np.array_equal(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b))
        for a, b in zip(model.graph.initializer, eq.graph.initializer, strict=True))
    assert changed > 50  # it rescaled most convolutions
    before = create_runtime(src, "onnxruntime").run(x)
    session = __import__("onnxruntime").InferenceSession(eq.SerializeToString())
    after = session.run(None, {"image": x})[0].transpose(0, 3, 1, 2)
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-4)


def test_keep_float_finds_first_conv_and_heads(thin_pb) -> None:
    model = onnx.load(str(resolve_model("mobilenet_thin", stages=2, progress=False)))
    first, heads = head_and_tail_convs(model)
    assert first == ["MobilenetV1/Conv2d_0/Conv2D"]
    assert sorted(heads) == ["Openpose/MConv_Stage2_L1_5_pointwise/Conv2D",
                             "Openpose/MConv_Stage2_L2_5_pointwise/Conv2D"]
    keep = default_keep_float(model)
    assert "Openpose/MConv_Stage1_L1_3_pointwise/Conv2D" in keep
    assert "Openpose/MConv_Stage1_L1_1_pointwise/Conv2D" not in keep  # a branch's first layer
    assert not any(k.startswith("MobilenetV1/Conv2d_5") for k in keep)


def test_int8_model_is_built_once_cached_and_close_to_fp32(thin_pb, tmp_path, x, calibration,
                                                           astronaut) -> None:
    pb = tmp_path / "thin.pb"
    shutil.copy(thin_pb, pb)
    with pytest.raises(ValueError, match="no INT8 model built yet"):
        resolve_model(pb, stages=1, precision="int8", progress=False)
    path = resolve_model(pb, stages=1, precision="int8", calibration=calibration,
                         progress=False)
    assert path == tmp_path / "thin.stage1.int8.onnx"
    assert not list(tmp_path.glob(".*part"))  # written atomically, nothing left behind
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    mtime = path.stat().st_mtime_ns
    assert resolve_model(pb, stages=1, precision="int8", progress=False) == path  # cached
    assert path.stat().st_mtime_ns == mtime
    fp32 = create_runtime(tmp_path / "thin.stage1.onnx", "onnxruntime").run(x)
    int8 = create_runtime(path, "onnxruntime").run(x)
    # Tolerance: 8-bit activations carry ~0.4% of each tensor's range as rounding noise; on
    # maps whose peaks are ~1 that averages ~0.002-0.01 (measured 0.002 heatmaps / 0.003
    # PAFs at stage 6). A broken recipe (all layers int8, no equalization) gives 0.05-0.15.
    heat_err = float(np.abs(int8[:, :18] - fp32[:, :18]).mean())
    paf_err = float(np.abs(int8[:, 19:] - fp32[:, 19:]).mean())
    assert heat_err < 0.01 and paf_err < 0.01, (heat_err, paf_err)
    assert np.corrcoef(int8.ravel(), fp32.ravel())[0, 1] > 0.99
    est = PoseEstimator(pb, preset="seed", stages=1, precision="int8", backend="onnxruntime",
                        progress=False)
    assert est.precision == "int8" and est.model_path == path
    assert len(est(astronaut)) == 1


def test_unknown_precision_is_refused(thin_pb) -> None:
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_model("mobilenet_thin", precision="fp16", progress=False)


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
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n"
                    f"processor\t: 1\nmodel name\t: Test CPU\nflags\t\t: {flags}\n")
    f = cpu_features(info)
    assert (f.model, f.vnni, f.amx, f.int8_recommended) == ("Test CPU", vnni, amx, vnni or amx)
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
