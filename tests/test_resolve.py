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
