"""Model resolution (models/resolve.py): names and paths to cached ONNX files, stage-K models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pafpose.estimator import PoseEstimator
from pafpose.models.quantize import calibration_tensors
from pafpose.models.resolve import resolve_model
from pafpose.runtime import create_runtime

from .conftest import MEDIA, need


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    """A real photo with two people as the network input (1, 368, 432, 3)."""
    return calibration_tensors([cv2.imread(str(need(MEDIA / "basketball1.png")))], (432, 368))[0]


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


def test_unknown_precision_is_refused(thin_pb) -> None:
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_model("mobilenet_thin", precision="fp16", progress=False)
    # bf16 is a runtime setting over the float file
    assert resolve_model("mobilenet_thin", precision="bf16", progress=False) == \
        resolve_model("mobilenet_thin", progress=False)


def test_unknown_names_and_files_are_refused(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a known name"):
        resolve_model("no_such_model", progress=False)
    onnx_file, text_file = tmp_path / "m.onnx", tmp_path / "m.txt"
    onnx_file.write_bytes(b"")
    text_file.write_bytes(b"")
    assert resolve_model(onnx_file, progress=False) == onnx_file  # used as it is
    with pytest.raises(ValueError, match="needs a .pb source"):
        resolve_model(onnx_file, stages=2, progress=False)
    with pytest.raises(ValueError, match=r"\(\.pb\) or ONNX"):
        resolve_model(text_file, progress=False)


# --------------------------------------------------------------------------- Caffe models


def _caffe_folder(folder, name: str = "pose_deploy") -> tuple:
    """A folder holding a small OpenPose-like Caffe net (44 output channels) and random
    weights, as OpenPose's models/pose/<name>/ folders hold theirs."""
    from pafpose.models.caffe import random_weights
    from pafpose.models.caffeproto import read_prototxt, write_caffemodel

    from .test_caffe import SYNTHETIC

    folder.mkdir(parents=True, exist_ok=True)
    prototxt = folder / f"{name}.prototxt"
    prototxt.write_text(SYNTHETIC)
    net = read_prototxt(prototxt)
    caffemodel = folder / "pose_iter_1.caffemodel"
    write_caffemodel(caffemodel, net, random_weights(net, seed=1))
    return prototxt, caffemodel


def _meta(path) -> dict:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_caffe_folder_and_file_convert_once_and_declare_their_layout(tmp_path, caplog) -> None:
    from pafpose.models.integrity import file_sha256

    prototxt, caffemodel = _caffe_folder(tmp_path / "mpi")
    converted = resolve_model(tmp_path / "mpi", progress=False)
    assert converted == tmp_path / "mpi" / "pose_iter_1.pose_deploy.onnx"
    assert _meta(converted) == {
        "pafpose.skeleton": "mpi15", "pafpose.input": "bgr/256-0.5",
        "pafpose.output": "heatmaps+pafs", "pafpose.stride": "4",
        "pafpose.converter": "caffe-1", "pafpose.source_sha256": file_sha256(caffemodel),
        "pafpose.prototxt_sha256": file_sha256(prototxt)}
    written = converted.stat().st_mtime_ns
    assert resolve_model(caffemodel, progress=False) == converted  # the same files
    assert resolve_model(caffemodel, prototxt=prototxt, progress=False) == converted
    assert converted.stat().st_mtime_ns == written  # cached, not converted again
    prototxt.write_text(prototxt.read_text() + "# edited\n")
    caplog.clear()
    assert resolve_model(tmp_path / "mpi", progress=False) == converted
    assert converted.stat().st_mtime_ns != written
    assert [r.getMessage() for r in caplog.records] == [
        f"pafpose: {converted} was made from another source or by another converter version; "
        "rebuilding it from pose_iter_1.caffemodel"]


def test_caffe_folders_that_do_not_say_which_files(tmp_path) -> None:
    _caffe_folder(tmp_path / "mpi")
    (tmp_path / "mpi" / "pose_deploy_linevec_faster_4_stages.prototxt").write_text("")
    with pytest.raises(FileNotFoundError) as exc:
        resolve_model(tmp_path / "mpi", progress=False)
    assert str(exc.value) == (
        f"pose_iter_1.caffemodel needs its deploy prototxt: {tmp_path / 'mpi'} holds 2 "
        ".prototxt files (pose_deploy.prototxt, pose_deploy_linevec_faster_4_stages.prototxt)"
        "; pass --prototxt FILE")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"must hold one \.caffemodel \(found: none\)"):
        resolve_model(tmp_path / "empty", progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model(tmp_path / "gone.caffemodel", progress=False)
    with pytest.raises(ValueError, match="a prototxt goes with a .caffemodel file"):
        resolve_model("mobilenet_thin", prototxt=tmp_path / "mpi" / "pose_deploy.prototxt")
    with pytest.raises(ValueError, match="stages=K needs a .pb source"):
        resolve_model(tmp_path / "mpi" / "pose_iter_1.caffemodel", stages=2, progress=False)


def test_caffe_model_runs_in_both_runtimes(tmp_path) -> None:
    """ONNX Runtime and, where installed, OpenVINO give the same maps (MaxPool's ceil mode and
    the per-channel PRelu slopes mean the same to both)."""
    import importlib.util

    _caffe_folder(tmp_path / "net")
    path = resolve_model(tmp_path / "net", progress=False)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 20, 28, 3)).astype(np.float32)  # NHWC
    maps = create_runtime(path, "onnxruntime").run(x)
    assert maps.shape == (1, 44, 6, 8) and np.isfinite(maps).all()  # pooling rounds up
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("OpenVINO not installed (pip install '.[openvino]')")
    other = create_runtime(path, "openvino", precision="fp32").run(x)
    assert np.abs(other - maps).max() <= 1e-4 * (maps.max() - maps.min())
