"""Network layouts: ONNX metadata -> NetworkLayout, input conventions, output checks, and models
of other skeletons (BODY_25 one blob, MPI-15 two tensors) through the CLI, the API and the
server, without Caffe: small ONNX networks built with the onnx helper API (layout_models.py)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from pafpose import PoseEstimator
from pafpose.decode import DecodeParams
from pafpose.errors import ModelError, PafposeError
from pafpose.layout import (
    DEFAULT_LAYOUT,
    LIGHTWEIGHT_GROUPING,
    OPENPOSE_GROUPING,
    OPENPOSE_MPI_GROUPING,
    NetworkLayout,
    layout_from_metadata,
    normalize_input,
    read_layout,
)
from pafpose.preprocess import prepare
from pafpose.presets import get_preset
from pafpose.runtime import Outputs, available_backends, create_runtime
from pafpose.skeleton import BODY_25, MPI_15, OPENPOSE_18

from .conftest import MEDIA, need
from .decode_maps import H, W
from .layout_models import SIZE, pose_model, template_people


def run(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pafpose", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------------------------
# Metadata -> layout
# --------------------------------------------------------------------------------------------


def test_a_model_without_keys_keeps_the_seed_convention():
    layout = layout_from_metadata({"pafpose.converter": "1"})
    assert layout == DEFAULT_LAYOUT == NetworkLayout()
    assert (layout.skeleton, layout.input, layout.output, layout.stride) == (
        OPENPOSE_18, "bgr255", "heatmaps+pafs", 8)
    assert layout.grouping == () and layout.output_channels == (57,)


@pytest.mark.parametrize("meta, skeleton, channels, grouping", [
    ({"pafpose.skeleton": "body25", "pafpose.input": "bgr/256-0.5"}, BODY_25, (78,),
     OPENPOSE_GROUPING),
    ({"pafpose.skeleton": "mpi15", "pafpose.input": "bgr/256-0.5",
      "pafpose.output": "heatmaps,pafs"}, MPI_15, (16, 28), OPENPOSE_MPI_GROUPING),
    ({"pafpose.skeleton": "openpose18", "pafpose.input": "bgr/256-0.5"}, OPENPOSE_18, (57,),
     OPENPOSE_GROUPING),
    ({"pafpose.input": "(bgr-128)/256", "pafpose.output": "heatmaps,pafs",
      "pafpose.stride": "8"}, OPENPOSE_18, (19, 38), LIGHTWEIGHT_GROUPING),
    ({"pafpose.skeleton": "openpose18", "pafpose.input": "bgr255"}, OPENPOSE_18, (57,), ()),
])
def test_declared_layouts(meta, skeleton, channels, grouping):
    layout = layout_from_metadata(meta)
    assert layout.skeleton == skeleton and layout.output_channels == channels
    assert layout.grouping == grouping
    assert layout_from_metadata(layout.metadata()) == layout  # round trip


@pytest.mark.parametrize("key, value", [
    ("pafpose.skeleton", "body26"), ("pafpose.input", "rgb255"),
    ("pafpose.output", "pafs+heatmaps"), ("pafpose.stride", "eight"), ("pafpose.stride", "3"),
])
def test_unknown_values_are_a_one_line_model_error(key, value):
    with pytest.raises(ModelError) as info:
        layout_from_metadata({key: value}, "model file x.onnx")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"model file x.onnx: unknown {key} ")
    assert repr(value) in message


def test_input_conventions_convert_pixels_and_padding_alike():
    pixels = np.array([0.0, 128.0, 255.0], np.float32)
    assert np.array_equal(normalize_input(pixels.copy(), "bgr255"), pixels)
    assert np.allclose(normalize_input(pixels.copy(), "bgr/256-0.5"), [-0.5, 0.0, 0.49609375])
    assert np.allclose(normalize_input(pixels.copy(), "(bgr-128)/256"), [-0.5, 0.0, 0.49609375])
    image = np.full((30, 50, 3), 255, np.uint8)
    raw = prepare(image, (50, 30))
    assert raw.tensor.shape == (1, 64, 64, 3)
    assert raw.tensor[0, 0, 0, 0] == 255 and raw.tensor[0, 63, 63, 0] == 0  # black padding
    op = prepare(image, (50, 30), convention="bgr/256-0.5")
    assert np.allclose(op.tensor, raw.tensor / 256 - 0.5)  # the padding is black, converted
    assert op.tensor[0, 63, 63, 0] == -0.5


def test_outputs_are_checked_transposed_and_joined():
    mpi = NetworkLayout(MPI_15, output="heatmaps,pafs")
    outputs = Outputs("m.onnx", mpi, [[1, 16, "h", "w"], [1, "h", "w", 28]], ["heat", "paf"])
    heat = np.random.default_rng(0).random((1, 16, 5, 7), dtype=np.float32)
    paf = np.random.default_rng(1).random((1, 5, 7, 28), dtype=np.float32)
    maps = outputs.maps([heat, paf])
    assert maps.shape == (1, 44, 5, 7) and maps.flags.c_contiguous
    assert np.array_equal(maps[:, :16], heat) and np.array_equal(maps[:, 16:],
                                                                 paf.transpose(0, 3, 1, 2))
    with pytest.raises(ModelError, match=r"output 'paf' has 30 channels, but its declared "
                                         r"skeleton mpi15 \(heatmaps,pafs\) needs two outputs"):
        outputs.maps([heat, np.zeros((1, 30, 5, 7), np.float32)])
    with pytest.raises(ModelError, match=r"heatmaps and PAFs differ in size \(\(1, 16, 5, 7\) "
                                         r"and \(1, 28, 3, 4\)\)"):
        outputs.maps([heat, np.zeros((1, 28, 3, 4), np.float32)])
    with pytest.raises(ModelError, match="has 1 output"):
        Outputs("m.onnx", mpi, [[1, 44, "h", "w"]], ["maps"])
    body = NetworkLayout(BODY_25)
    with pytest.raises(ModelError, match=r"'maps' has 57 channels.* needs 78 channels \(26 "
                                         r"heatmaps \+ 52 PAFs\)"):
        Outputs("b.onnx", body, [[1, 57, "h", "w"]], ["maps"])
    Outputs("b.onnx", body, [[None, None, None, 78]], ["maps"])  # NHWC: fine
    Outputs("b.onnx", body, [[1, "c", "h", "w"]], ["maps"])  # checked on the first run


# --------------------------------------------------------------------------------------------
# Models of other skeletons, end to end
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def body25_model(tmp_path_factory) -> Path:
    """A BODY_25 network: one 78-channel output, OpenPose's input convention."""
    return pose_model(tmp_path_factory.mktemp("b25") / "body25.onnx", BODY_25)


@pytest.fixture(scope="module")
def mpi_model(tmp_path_factory) -> Path:
    """An MPI-15 network with two outputs (16 heatmaps, 28 PAFs)."""
    return pose_model(tmp_path_factory.mktemp("mpi") / "mpi.onnx", MPI_15,
                      output="heatmaps,pafs")


def _expected(skeleton, image_size) -> list[np.ndarray]:
    """The template people's parts in image pixels (the model draws them at SIZE)."""
    sx, sy = image_size[0] / SIZE[0], image_size[1] / SIZE[1]
    return [((kp + 0.5) * 8) * (sx, sy) - 0.5 for kp in template_people(skeleton)]


def _check_people(keypoints: list[np.ndarray], skeleton, image_size) -> None:
    """Both template people found, every part, each within 6 px of where it was drawn."""
    truth = _expected(skeleton, image_size)
    assert len(keypoints) == 2
    for kp in keypoints:
        assert kp.shape == (skeleton.num_parts, 3) and (kp[:, 2] > 0).all()
        owner = int(np.argmin([np.abs(kp[:, :2] - t).max() for t in truth]))
        assert np.abs(kp[:, :2] - truth[owner]).max() < 6, skeleton.name


def test_predict_cli_writes_25_keypoint_openpose_json_and_a_drawing(body25_model, tmp_path):
    image = need(MEDIA / "basketball1.png")
    res = run("predict", image, "--model", body25_model, "--resize", "432x368",
              "--backend", "onnxruntime", "--json-output", tmp_path / "r.json",
              "--image-output", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    (doc,) = json.loads((tmp_path / "r.json").read_text())
    assert doc["version"] == 1.3
    assert all(len(p["pose_keypoints_2d"]) == 75 for p in doc["people"])
    people = [np.array(p["pose_keypoints_2d"]).reshape(25, 3) for p in doc["people"]]
    _check_people(people, BODY_25, (640, 480))
    drawn, original = cv2.imread(str(tmp_path / "out" / "basketball1.png")), cv2.imread(str(image))
    assert drawn.shape == original.shape
    # the feet are drawn: pixels change around each left big toe
    for toe in (p[BODY_25.index("LBigToe"), :2] for p in people):
        x, y = int(toe[0]), int(toe[1])
        patch = (slice(max(0, y - 4), y + 5), slice(max(0, x - 4), x + 5))
        assert np.any(drawn[patch] != original[patch])
    res = run("predict", image, "--model", body25_model, "--resize", "432x368",
              "--backend", "onnxruntime", "--json-output", "-", "--format", "coco")
    assert res.returncode == 0, res.stderr
    assert all(len(r["keypoints"]) == 51 for r in json.loads(res.stdout))


@pytest.mark.parametrize("backend", available_backends())
def test_api_with_a_two_output_mpi_model(mpi_model, backend):
    image = cv2.imread(str(need(MEDIA / "messi5.jpg")))
    est = PoseEstimator(mpi_model, target_size=SIZE, backend=backend, progress=False)
    assert est.skeleton == MPI_15 and est.layout.output == "heatmaps,pafs"
    # OpenPose's MPI grouping over the balanced preset's pipeline
    assert (est.decode_params.heat_threshold, est.decode_params.paf_threshold) == (0.6, 0.01)
    assert est.decode_params.upsample == get_preset("balanced").decode.upsample
    result = est.run(image)
    assert result.heatmaps.shape[0] == 16 and result.pafs.shape[0] == 28
    h, w = image.shape[:2]
    _check_people([hm.keypoints for hm in result.humans], MPI_15, (w, h))
    human = result.humans[0]
    assert human.skeleton == MPI_15 and set(human.to_dict()) == {"score", "mpi15", "coco17",
                                                                  "bbox"}
    coco = human.to_coco17()  # MPI has no nose, eyes, ears: zeros there
    assert (coco[:5] == 0).all() and (coco[5:, 2] > 0).all()
    assert human.body_parts[0].get_part_name() == "Head"


def test_presets_and_explicit_settings_over_the_model_grouping(body25_model):
    seed = PoseEstimator(body25_model, preset="seed", backend="onnxruntime", progress=False)
    assert seed.decode_params == DecodeParams()  # the seed preset pins the seed's thresholds
    own = dataclasses.replace(DecodeParams(), min_parts=5)
    mine = PoseEstimator(body25_model, decode_params=own, backend="onnxruntime", progress=False)
    assert mine.decode_params == own
    zoom = PoseEstimator(body25_model, preset="zoom", backend="onnxruntime", progress=False)
    assert zoom.decode_params == dataclasses.replace(get_preset("zoom").decode,
                                                     **dict(OPENPOSE_GROUPING))


def test_a_model_whose_outputs_do_not_match_its_skeleton_is_one_line(tmp_path):
    bad = pose_model(tmp_path / "bad.onnx", BODY_25, channels=(57,))
    res = run("predict", need(MEDIA / "messi5.jpg"), "--model", bad, "--backend", "onnxruntime")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip() == (
        f"pafpose: error: model file {bad}: output 'out0' has 57 channels, but its declared "
        "skeleton body25 (heatmaps+pafs) needs 78 channels (26 heatmaps + 52 PAFs)")
    with pytest.raises(PafposeError, match="has 57 channels"):
        PoseEstimator(bad, backend="onnxruntime", progress=False)
    model = onnx.load(str(bad))
    onnx.helper.set_model_props(model, {"pafpose.skeleton": "body26"})
    onnx.save(model, str(bad))
    res = run("predict", need(MEDIA / "messi5.jpg"), "--model", bad, "--backend", "onnxruntime")
    assert res.returncode == 2 and res.stderr.strip() == (
        f"pafpose: error: model file {bad}: unknown pafpose.skeleton 'body26' (known: "
        "openpose18, body25, mpi15)")


def test_a_declared_layout_is_read_from_the_file(tmp_path, mpi_model):
    assert read_layout(mpi_model) == NetworkLayout(MPI_15, "bgr/256-0.5", "heatmaps,pafs", 8,
                                                   OPENPOSE_MPI_GROUPING)
    plain = pose_model(tmp_path / "plain.onnx", OPENPOSE_18, "bgr255", declare=False)
    assert read_layout(plain) == DEFAULT_LAYOUT
    runtime = create_runtime(mpi_model, "onnxruntime")
    maps = runtime.run(np.zeros((1, 8 * H, 8 * W, 3), np.float32))
    assert runtime.layout.skeleton == MPI_15 and maps.shape == (1, 44, H, W)


def test_server_answers_with_the_loaded_models_skeleton(body25_model, tmp_path):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from .test_serve import post_image, request, running_server

    with running_server(tmp_path / "serve.log", "--model", str(body25_model), "--resize",
                        "432x368", "--backend", "onnxruntime", "--workers", "1") as port:
        status, _, body = request(port, "GET", "/v1/skeleton")
        sk = json.loads(body)
        assert status == 200 and sk["name"] == "body25" and sk["body25"] == list(BODY_25.parts)
        assert len(sk["limbs"]) == 24 and len(sk["colors_rgb"]) == 25
        status, _, body = post_image(port, need(MEDIA / "basketball1.png").read_bytes())
        assert status == 200, body
        doc = json.loads(body)
        assert doc["count"] == 2
        people = [np.array(p["body25"]) for p in doc["people"]]
        _check_people(people, BODY_25, (640, 480))
        assert all(len(p["coco17"]) == 17 and "openpose18" not in p for p in doc["people"])


@pytest.mark.parametrize("backend", available_backends())
def test_int8_build_of_a_declared_model_keeps_its_layout(tmp_path, backend):
    """INT8 calibration feeds the model's own input (NCHW, OpenPose's convention); the INT8
    network runs with the layout the float model declares (an OpenVINO IR has no metadata)."""
    image = cv2.imread(str(need(MEDIA / "basketball1.png")))
    model = pose_model(tmp_path / "body25.onnx", BODY_25)
    est = PoseEstimator(model, target_size=SIZE, backend=backend, precision="int8",
                        calibration=[image], progress=False)
    assert est.precision == "int8" and est.model_path != model and est.skeleton == BODY_25
    _check_people([h.keypoints for h in est.run(image).humans], BODY_25, (640, 480))
