"""INT8 quantization (models/quantize.py): equalization, the layers kept float, the cached model."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from pafpose.estimator import PoseEstimator, preprocess
from pafpose.models import resolve
from pafpose.models.integrity import read_record
from pafpose.models.quantize import (
    calibration_tensors,
    default_keep_float,
    equalize,
    head_and_tail_convs,
)
from pafpose.models.resolve import (
    DEFAULT_CALIBRATION,
    FRAMES_PER_VIDEO,
    default_calibration,
    resolve_model,
)
from pafpose.runtime import available_backends, create_runtime

from .conftest import MEDIA, need

SIZE = (432, 368)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    """A real photo with two people as the network input (1, 368, 432, 3)."""
    return calibration_tensors([cv2.imread(str(need(MEDIA / "basketball1.png")))], SIZE)[0]


@pytest.fixture(scope="module")
def calibration() -> list[Path]:
    """Real photos for INT8 calibration (none of them is the photo the maps are compared on)."""
    folder = need(MEDIA / "posetrack-frames")
    return sorted(folder.glob("*.jpg"))[:4] + [need(MEDIA / "messi5.jpg")]


def test_calibration_inputs_are_the_estimators_inputs() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
              for h, w in [(480, 640), (368, 432), (100, 77)]]
    for tensor, image in zip(calibration_tensors(images, SIZE), images, strict=True):
        expected = preprocess(image, SIZE).tensor
        assert tensor.dtype == expected.dtype and np.array_equal(tensor, expected)
    with pytest.raises(ValueError, match="multiple of 16"):
        calibration_tensors(images, (430, 368))


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
                                                           astronaut, monkeypatch) -> None:
    pb = tmp_path / "thin.pb"
    shutil.copy(thin_pb, pb)
    monkeypatch.setattr(resolve, "default_calibration", lambda: None)  # no shared media
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


def test_default_calibration_is_the_shared_media_not_coco_dev() -> None:
    items = need_default_calibration()
    paths = [i for i in items if isinstance(i, Path)]
    frames = [i for i in items if isinstance(i, np.ndarray)]
    assert all("coco" not in str(p) for p in paths)
    assert {p.name for p in paths} >= {"basketball1.png", "messi5.jpg", "posetrack-frames"}
    videos = [n for n in DEFAULT_CALIBRATION if n.endswith((".mp4", ".avi"))]
    assert len(frames) == FRAMES_PER_VIDEO * len(videos)
    assert all(f.ndim == 3 and f.shape[2] == 3 for f in frames)


def need_default_calibration() -> list:
    items = default_calibration()
    if items is None:
        pytest.skip("the shared media folder is not here")
    return items


@pytest.mark.skipif("openvino" not in available_backends(), reason="OpenVINO not installed")
def test_openvino_int8_is_built_by_nncf_cached_and_reused(thin_pb, tmp_path, x,
                                                          calibration) -> None:
    pytest.importorskip("nncf")
    pb = tmp_path / "thin.pb"
    shutil.copy(thin_pb, pb)
    path = resolve_model(pb, stages=1, precision="int8", calibration=calibration[:3],
                         backend="openvino", progress=False)
    assert path == tmp_path / "thin.stage1.ov-int8.xml" and path.with_suffix(".bin").is_file()
    assert not list(tmp_path.glob(".*part")) and not list(tmp_path.glob(".int8-*"))
    meta = read_record(path)["meta"]
    assert meta["pafpose.calibration"] == "given" and meta["pafpose.calibration_images"] == "3"
    assert "FakeQuantize" in path.read_text()  # NNCF's int8 form for OpenVINO
    mtime = path.stat().st_mtime_ns
    again = resolve_model(pb, stages=1, precision="int8", backend="openvino", progress=False)
    assert again == path and path.stat().st_mtime_ns == mtime  # cached: not rebuilt
    path.with_suffix(".bin").write_bytes(b"damaged")  # a damaged weights file is rebuilt
    rebuilt = resolve_model(pb, stages=1, precision="int8", calibration=calibration[:3],
                            backend="openvino", progress=False)
    assert rebuilt.with_suffix(".bin").stat().st_size > 1000
    fp32 = create_runtime(tmp_path / "thin.stage1.onnx", "onnxruntime").run(x)
    int8 = create_runtime(path, "openvino", precision="int8").run(x)
    heat_err = float(np.abs(int8[:, :19] - fp32[:, :19]).mean())
    assert heat_err < 0.015 and np.corrcoef(int8.ravel(), fp32.ravel())[0, 1] > 0.99
