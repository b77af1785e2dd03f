"""Backends (ONNX Runtime, OpenVINO) and CPU feature detection."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pafpose.estimator import PoseEstimator, preprocess
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
    ov_maps = ov.run(x)
    assert ov_maps.shape == ort_maps.shape == (1, 57, 46, 54)
    # the same float32 graph: only summation order differs (measured max |diff| ~2e-5)
    np.testing.assert_allclose(ov_maps, ort_maps, rtol=0, atol=1e-3)
    # another size on the same compiled model (dynamic shapes)
    assert ov.run(np.zeros((1, 240, 320, 3), np.float32)).shape == (1, 57, 30, 40)
    est = PoseEstimator(preset="seed", backend="openvino", progress=False)
    assert est.backend == "openvino" and len(est(astronaut)) == 1


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
