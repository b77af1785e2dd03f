"""The Caffe converter (models/caffeproto.py, models/caffe.py) against OpenCV 4's Caffe importer.

OpenPose's four deploy prototxts are read from the shared data folder (their licence keeps them
out of this repository); each gets a caffemodel of random weights (seeded, He-initialised) and
our ONNX model must give OpenCV's outputs at two input sizes, one not divisible by 8 (Caffe's
pooling rounds its output size up).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pafpose.errors import ModelError
from pafpose.models.caffe import convert_caffe, random_weights, weight_shapes
from pafpose.models.caffeproto import (
    SCHEMA,
    CaffeError,
    read_caffemodel,
    read_prototxt,
    write_caffemodel,
)

from .caffe_oracle import opencv_forward
from .conftest import SHARED, need

OPENPOSE = SHARED / "models" / "openpose"
#: prototxt -> (layers, conv layers, parameters as counted in the shared README, skeleton).
NETS = {
    "body_25.prototxt": (261, 114, 26_166_084, "body25", 78),
    "coco.prototxt": (181, 92, 52_311_446, "openpose18", 57),
    "mpi.prototxt": (181, 92, 51_481_032, "mpi15", 44),
    "mpi_faster_4_stages.prototxt": (127, 64, 34_240_880, "mpi15", 44),
}
#: (height, width) of the test inputs: 100x76 is not a multiple of 8 (pooling rounds up).
SIZES = [(100, 76), (96, 128)]


def _image(h: int, w: int, seed: int) -> np.ndarray:
    """A network input as OpenPose feeds it: BGR in 0..255 as x / 256 - 0.5, NCHW."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (1, 3, h, w)) / 256 - 0.5).astype(np.float32)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


def _close(ours: np.ndarray, reference: np.ndarray) -> float:
    """max |ours - reference| relative to the reference's range (the test bound is 1e-4)."""
    assert ours.shape == reference.shape
    spread = float(reference.max() - reference.min())
    assert spread > 1e-3, "degenerate outputs: the test would prove nothing"
    return float(np.abs(ours - reference).max()) / spread


@pytest.fixture(scope="module")
def caffemodels(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """prototxt name -> a random-weight caffemodel for it (MPI's serves both MPI nets, as
    OpenPose's one pose_iter_160000.caffemodel does)."""
    folder = tmp_path_factory.mktemp("caffemodels")
    models = {}
    for i, name in enumerate(("body_25.prototxt", "coco.prototxt", "mpi.prototxt")):
        net = read_prototxt(need(OPENPOSE / name))
        models[name] = folder / name.replace(".prototxt", ".caffemodel")
        write_caffemodel(models[name], net, random_weights(net, seed=i))
    models["mpi_faster_4_stages.prototxt"] = models["mpi.prototxt"]
    yield models
    shutil.rmtree(folder)  # 0.5 GB that pytest would keep for three runs


@pytest.mark.parametrize("name", sorted(NETS))
def test_real_prototxts_parse_with_every_layer(name: str) -> None:
    layers, convs, params, _, _ = NETS[name]
    net = read_prototxt(need(OPENPOSE / name))
    assert list(net.inputs) == ["image"] and net.inputs["image"][:2] == [1, 3]
    assert len(net.layers) == layers
    shapes = weight_shapes(net)
    assert sum(1 for s in shapes.values() if len(s[0]) == 4) == convs
    assert sum(int(np.prod(s)) for blobs in shapes.values() for s in blobs) == params


@pytest.mark.parametrize("name", sorted(NETS))
def test_matches_opencv_at_two_sizes(name: str, caffemodels, tmp_path: Path) -> None:
    prototxt = need(OPENPOSE / name)
    model = convert_caffe(prototxt, caffemodels[name])
    _, _, _, skeleton, channels = NETS[name]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta == {"pafpose.skeleton": skeleton, "pafpose.input": "bgr/256-0.5",
                    "pafpose.output": "heatmaps+pafs", "pafpose.stride": "8"}
    (image,), (output,) = model.graph.input, model.graph.output
    dims = [d.dim_value or d.dim_param for d in image.type.tensor_type.shape.dim]
    assert (image.name, output.name, dims) == ("image", "net_output", [1, 3, "height", "width"])
    inputs = [_image(h, w, seed) for seed, (h, w) in enumerate(SIZES)]
    references, version = opencv_forward(prototxt, caffemodels[name], inputs, tmp_path)
    assert version.startswith("4.")
    for x, reference in zip(inputs, references, strict=True):
        ours = _run(model, x)
        h, w = x.shape[2:]
        assert ours.shape == (1, channels, -(-h // 8), -(-w // 8))  # rounded up
        assert _close(ours, reference) <= 1e-4


SYNTHETIC = """
name: "every variant"
input: "data"
input_shape { dim: 1 dim: 3 dim: 20 dim: 20 }
layer { name: "conv_s2" type: "Convolution" bottom: "data" top: "a"
  convolution_param { num_output: 8 kernel_size: 5 stride: 2 pad: 2 } }
layer { name: "leaky" type: "ReLU" bottom: "a" top: "a" relu_param { negative_slope: 0.1 } }
layer { name: "split" type: "Split" bottom: "a" top: "a1" top: "a2" }
layer { name: "conv_group" type: "Convolution" bottom: "a1" top: "b"
  convolution_param { num_output: 8 kernel_h: 3 kernel_w: 1 pad_h: 1 pad_w: 0 group: 2
                      bias_term: false } }
layer { name: "prelu_shared" type: "PReLU" bottom: "b" top: "b"
  prelu_param { channel_shared: true } }
layer { name: "conv_dilated" type: "Convolution" bottom: "a2" top: "c"
  convolution_param { num_output: 8 kernel_size: 3 dilation: 2 pad: 2 } }
layer { name: "prelu" type: "PReLU" bottom: "c" top: "c" }
layer { name: "cat" type: "Concat" bottom: "b" bottom: "c" top: "d" }
layer { name: "drop" type: "Dropout" bottom: "d" top: "d" }
layer { name: "pool_pad" type: "Pooling" bottom: "d" top: "e"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "e" top: "e" }
layer { name: "head" type: "Convolution" bottom: "e" top: "out"
  convolution_param { num_output: 44 kernel_size: 1 } }
"""

#: The same without PReLU, which the legacy V1 format has no type for.
SYNTHETIC_V1 = SYNTHETIC.replace('type: "PReLU"', 'type: "ReLU"').replace(
    "prelu_param { channel_shared: true }", "")


def test_layer_variants_match_opencv(tmp_path: Path) -> None:
    """Strides, rectangular kernels and pads, groups, dilation, no bias, leaky ReLU, a shared
    PReLU slope, Split, Dropout and a padded pooling, at sizes whose pooling rounds up."""
    prototxt = tmp_path / "variants.prototxt"
    prototxt.write_text(SYNTHETIC)
    net = read_prototxt(prototxt)
    caffemodel = tmp_path / "variants.caffemodel"
    write_caffemodel(caffemodel, net, random_weights(net, seed=3))
    model = convert_caffe(prototxt, caffemodel)
    inputs = [_image(h, w, 7) for h, w in ((21, 19), (16, 26), (9, 9))]
    references, _ = opencv_forward(prototxt, caffemodel, inputs, tmp_path)
    for x, reference in zip(inputs, references, strict=True):
        assert _close(_run(model, x), reference) <= 1e-5


def test_legacy_v1_layers_and_4d_blobs(tmp_path: Path) -> None:
    """A caffemodel of the old format (`layers` field 2, num/channels/height/width blobs) gives
    the same model as today's format, and OpenCV agrees."""
    (tmp_path / "v1.prototxt").write_text(SYNTHETIC_V1)
    net = read_prototxt(tmp_path / "v1.prototxt")
    weights = random_weights(net, seed=4)
    write_caffemodel(tmp_path / "new.caffemodel", net, weights)
    write_caffemodel(tmp_path / "old.caffemodel", net, weights, legacy=True)
    (message_class,) = SCHEMA.classes("NetParameter")
    old_message = message_class.FromString((tmp_path / "old.caffemodel").read_bytes())
    assert (len(old_message.layer), len(old_message.layers)) == (0, len(net.layers))
    old = read_caffemodel(tmp_path / "old.caffemodel")
    assert old["head"][0][1] == [44, 16, 1, 1] and old["head"][1][1] == [1, 1, 1, 44]
    new_model = convert_caffe(tmp_path / "v1.prototxt", tmp_path / "new.caffemodel")
    old_model = convert_caffe(tmp_path / "v1.prototxt", tmp_path / "old.caffemodel")
    x = _image(20, 20, 1)
    np.testing.assert_array_equal(_run(new_model, x), _run(old_model, x))
    (reference,), _ = opencv_forward(tmp_path / "v1.prototxt", tmp_path / "old.caffemodel",
                                     [x], tmp_path)
    assert _close(_run(old_model, x), reference) <= 1e-5


# --------------------------------------------------------------------------- bad input


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and isinstance(exc.value, ModelError)
    return message


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    """The synthetic net above with a random caffemodel."""
    prototxt = tmp_path / "variants.prototxt"
    prototxt.write_text(SYNTHETIC)
    net = read_prototxt(prototxt)
    write_caffemodel(tmp_path / "variants.caffemodel", net, random_weights(net, seed=5))
    return prototxt, tmp_path / "variants.caffemodel"


def test_malformed_prototxt_names_the_layer(tmp_path: Path) -> None:
    real = need(OPENPOSE / "body_25.prototxt").read_text()
    broken = tmp_path / "pose_deploy.prototxt"
    at = real.index('name: "conv3_2"')
    broken.write_text(real[:at] + real[at:].replace("kernel_size: 3", "kernel_size: three", 1))
    with pytest.raises(CaffeError) as exc:
        read_prototxt(broken)
    assert re.fullmatch(r"prototxt pose_deploy\.prototxt is malformed \(in or after layer "
                        r"'conv3_2'\): \d+:\d+ : .*kernel_size.*", _one_line(exc))


def test_training_fields_of_a_prototxt_are_skipped(tiny, tmp_path: Path) -> None:
    prototxt, caffemodel = tiny
    training = tmp_path / "train.prototxt"
    training.write_text(prototxt.read_text().replace(
        'name: "head" type: "Convolution"', 'name: "head" type: "Convolution" loss_weight: 1 '
        'include { phase: TEST stage: "deploy" } propagate_down: true'))
    x = _image(20, 20, 2)
    np.testing.assert_array_equal(_run(convert_caffe(training, caffemodel), x),
                                  _run(convert_caffe(prototxt, caffemodel), x))


@pytest.mark.parametrize("legacy", [False, True], ids=["layer", "V1 layers"])
def test_truncated_caffemodel_names_the_layer_it_ends_in(tmp_path, legacy) -> None:
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(SYNTHETIC_V1)
    net = read_prototxt(prototxt)
    caffemodel = tmp_path / "full.caffemodel"
    write_caffemodel(caffemodel, net, random_weights(net), legacy=legacy)
    data = caffemodel.read_bytes()
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(data[: data.index(b"conv_dilated") + 100])  # inside that layer's weights
    with pytest.raises(CaffeError) as exc:
        convert_caffe(prototxt, cut)
    assert _one_line(exc) == ("caffemodel cut.caffemodel is truncated or not a Caffe model "
                              "(it ends inside layer 'conv_dilated')")


def test_caffemodel_cut_between_layers_names_the_first_missing_layer(tiny, tmp_path) -> None:
    prototxt, caffemodel = tiny
    net = read_prototxt(prototxt)
    weights = random_weights(net)
    del weights["head"]
    write_caffemodel(tmp_path / "short.caffemodel", net, weights)
    with pytest.raises(CaffeError) as exc:
        convert_caffe(prototxt, tmp_path / "short.caffemodel")
    assert _one_line(exc) == ("short.caffemodel: layer 'head' (Convolution): the caffemodel "
                              "holds no weights for it (another net's weights, or a truncated "
                              "file)")


def test_unknown_layer_type(tiny, tmp_path: Path) -> None:
    prototxt, caffemodel = tiny
    odd = tmp_path / "odd.prototxt"
    odd.write_text(prototxt.read_text().replace('name: "drop" type: "Dropout"',
                                                'name: "drop" type: "Softmax"'))
    with pytest.raises(CaffeError) as exc:
        convert_caffe(odd, caffemodel)
    assert _one_line(exc).startswith("variants.caffemodel: layer 'drop' (Softmax): unsupported "
                                     "Caffe layer type (supported: Concat, Convolution, ")


def test_blob_shape_mismatch(tiny, tmp_path: Path) -> None:
    prototxt, _ = tiny
    net = read_prototxt(prototxt)
    weights = random_weights(net)
    weights["conv_dilated"][0] = weights["conv_dilated"][0][:, :, :2, :]  # 3x3 kernel -> 2x3
    write_caffemodel(tmp_path / "bad.caffemodel", net, weights)
    with pytest.raises(CaffeError) as exc:
        convert_caffe(prototxt, tmp_path / "bad.caffemodel")
    assert _one_line(exc) == ("bad.caffemodel: layer 'conv_dilated' (Convolution): weights "
                              "blob has shape [8, 8, 2, 3], the prototxt implies [8, 8, 3, 3]")


def test_output_that_is_no_openpose_layout(tiny, tmp_path: Path) -> None:
    prototxt, _ = tiny
    other = tmp_path / "other.prototxt"
    other.write_text(prototxt.read_text().replace("num_output: 44", "num_output: 40"))
    net = read_prototxt(other)
    write_caffemodel(tmp_path / "other.caffemodel", net, random_weights(net))
    with pytest.raises(CaffeError) as exc:
        convert_caffe(other, tmp_path / "other.caffemodel")
    assert "output blob 'out' has 40 channels; pafpose knows OpenPose's layouts of 78 " \
           "(body25), 57 (openpose18), 44 (mpi15)" in _one_line(exc)


def test_a_caffemodel_that_is_something_else(tiny, tmp_path: Path) -> None:
    prototxt, _ = tiny
    png = tmp_path / "photo.caffemodel"
    shutil.copy(need(SHARED / "media" / "basketball1.png"), png)
    with pytest.raises(CaffeError) as exc:
        convert_caffe(prototxt, png)
    assert "photo.caffemodel" in _one_line(exc)
