"""TF GraphDef -> ONNX converter: TF oracle outputs, OpenCV, stages, errors, synthetic ops."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest

from pafpose.models import tfgraph
from pafpose.models.tfgraph import UnsupportedOpError

from .conftest import SHARED, need

ort = pytest.importorskip("onnxruntime")

MODELS = SHARED / "models"
REFERENCE = MODELS / "reference"
CASES = ["astronaut_432x368", "coco_656x368", "noise_320x240"]
ORACLE_TOL = 1e-3


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def v2_pb() -> Path:
    """The mobilenet_v2_small graph from the shared data."""
    return need(MODELS / "mobilenet_v2_small_graph_opt.pb")


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    """A 2-thread CPU session for a converted model."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def sessions(request) -> dict[str, ort.InferenceSession]:
    """Converted default models by name, converted on first use (a missing graph skips)."""

    class Cache(dict):
        def __missing__(self, model: str) -> ort.InferenceSession:
            pb = request.getfixturevalue("thin_pb" if model == "mobilenet_thin" else "v2_pb")
            self[model] = _session(tfgraph.convert_graphdef(pb))
            return self[model]

    return Cache()


def _reference(model: str, case: str) -> dict[str, np.ndarray]:
    """One TF 2.21 oracle case (skips when the shared data is absent)."""
    with np.load(need(REFERENCE / f"{model}__{case}.npz")) as data:
        return {k: data[k] for k in data.files}


def _run(sess: ort.InferenceSession, image: np.ndarray) -> np.ndarray:
    """Run a converted model on an NHWC uint8/float image batch; return its first output."""
    return sess.run(None, {"image": image.astype(np.float32)})[0]


# --------------------------------------------------------------------------- real graphs


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("model", ["mobilenet_thin", "mobilenet_v2_small"])
def test_matches_tensorflow_oracle(sessions, model: str, case: str) -> None:
    ref = _reference(model, case)
    out = _run(sessions[model], ref["input"])
    assert out.shape == ref["output"].shape
    diff = float(np.abs(out - ref["output"]).max())
    assert diff <= ORACLE_TOL, f"{model}/{case}: max abs diff vs TensorFlow {diff:.3g}"


def test_matches_opencv_dnn(sessions, thin_pb: Path) -> None:
    # OpenCV DNN and onnxruntime both evaluate the same float32 graph; only the summation order
    # differs, which gives ~1e-5 at most on maps of magnitude ~1 (TF vs either is ~4e-6). A
    # mapping error (wrong SAME pad, channel order, layout) changes maps by 1e-2 or more.
    cv2 = pytest.importorskip("cv2")
    ref = _reference("mobilenet_thin", "astronaut_432x368")
    img = ref["input"][0]
    h, w = img.shape[:2]
    net = cv2.dnn.readNetFromTensorflow(str(thin_pb))
    net.setInput(cv2.dnn.blobFromImage(img, 1.0, (w, h), (0, 0, 0), swapRB=False, crop=False))
    cv_out = net.forward("Openpose/concat_stage7").transpose(0, 2, 3, 1)  # NCHW -> NHWC
    out = _run(sessions["mobilenet_thin"], ref["input"])
    diff = float(np.abs(out - cv_out).max())
    assert diff <= 1e-4, f"max abs diff vs OpenCV DNN {diff:.3g}"


def test_list_ops_histogram(thin_pb: Path) -> None:
    ops = tfgraph.list_ops(thin_pb)
    assert ops == {"Const": 222, "Conv2D": 72, "BiasAdd": 72, "DepthwiseConv2dNative": 71,
                   "Relu": 60, "ConcatV2": 7, "Placeholder": 1, "MaxPool": 1}
    assert list(ops)[0] == "Const"


def test_converted_graph_is_clean(thin_pb: Path) -> None:
    model = tfgraph.convert_graphdef(thin_pb)
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    # Biases folded into Conv, 1x1 depthwise scalings folded into the next Conv, one layout
    # Transpose at each end.
    assert set(ops) == {"Transpose", "Conv", "Relu", "Concat", "MaxPool"}
    assert ops.count("Transpose") == 2
    assert ops.count("Conv") == 72 + 71 - 24
    assert sum(len(n.input) == 3 for n in model.graph.node if n.op_type == "Conv") == 72  # biases
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "image" and out.name == "Openpose/concat_stage7"
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", "H", "W", 3]
    assert out.type.tensor_type.shape.dim[3].dim_value == 57


@pytest.mark.parametrize("which", ["thin", "v2"])
def test_stage_names(request, which: str) -> None:
    pb = request.getfixturevalue("thin_pb" if which == "thin" else "v2_pb")
    assert tfgraph.num_stages(pb) == 6
    for k in range(1, 7):
        assert tfgraph.stage_outputs(pb, k) == [
            f"Openpose/MConv_Stage{k}_L2_5_pointwise/BatchNorm/FusedBatchNorm",
            f"Openpose/MConv_Stage{k}_L1_5_pointwise/BatchNorm/FusedBatchNorm",
        ]
    with pytest.raises(ValueError, match="no stage 7"):
        tfgraph.stage_outputs(pb, 7)


def test_truncated_stage_model(sessions, thin_pb: Path) -> None:
    ref = _reference("mobilenet_thin", "noise_320x240")
    final = _run(sessions["mobilenet_thin"], ref["input"])
    stage2 = tfgraph.convert_graphdef(thin_pb, stage=2)
    assert len(stage2.graph.node) < len(tfgraph.convert_graphdef(thin_pb).graph.node)
    out2 = _run(_session(stage2), ref["input"])
    assert out2.shape == final.shape == (1, 30, 40, 57)
    assert float(np.abs(out2 - final).max()) > 1e-2, "stage 2 should differ from stage 6"
    out6 = _run(_session(tfgraph.convert_graphdef(thin_pb, stage=6)), ref["input"])
    np.testing.assert_allclose(out6, final, rtol=0, atol=1e-6)


def test_several_outputs(thin_pb: Path) -> None:
    heat2, paf2 = tfgraph.stage_outputs(thin_pb, 2)
    model = tfgraph.convert_graphdef(thin_pb, outputs=[heat2, "Openpose/concat_stage7:0", paf2])
    assert [o.name for o in model.graph.output] == [heat2, "Openpose/concat_stage7", paf2]
    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 48, 3)).astype(np.float32)
    heat, full, paf = _session(model).run(None, {"image": x})
    assert heat.shape == (1, 8, 6, 19) and paf.shape == (1, 8, 6, 38)
    assert full.shape == (1, 8, 6, 57)
    staged = _run(_session(tfgraph.convert_graphdef(thin_pb, stage=2)), x)
    np.testing.assert_allclose(staged, np.concatenate([heat, paf], axis=3), rtol=0, atol=1e-6)


def test_corrupt_graph_raises_value_error(tmp_path: Path, thin_pb: Path) -> None:
    data = thin_pb.read_bytes()
    for name, payload in [("truncated.pb", data[: len(data) // 2]),
                          ("garbage.pb", np.random.default_rng(0).bytes(4096)),
                          ("empty.pb", b""),
                          ("text.pb", b"node { name: 'x' op: 'Const' }\n")]:
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(ValueError, match="not a valid TensorFlow GraphDef"):
            tfgraph.convert_graphdef(path)
        with pytest.raises(ValueError, match="not a valid TensorFlow GraphDef"):
            tfgraph.list_ops(path)


# --------------------------------------------------------------------------- a tiny encoder


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(num: int, wire: int) -> bytes:
    return _varint(num << 3 | wire)


def _int(num: int, value: int) -> bytes:
    return _key(num, 0) + _varint(value)


def _bytes(num: int, payload: bytes | str) -> bytes:
    payload = payload.encode() if isinstance(payload, str) else payload
    return _key(num, 2) + _varint(len(payload)) + payload


_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.int32): 3, np.dtype(np.int64): 9}


def _tensor(arr: np.ndarray, fill: bool = False) -> bytes:
    """TensorProto; fill=True stores a single float_val to be broadcast (TF's short form)."""
    shape = b"".join(_bytes(2, _int(1, d)) for d in arr.shape)
    msg = _int(1, _DTYPES[arr.dtype]) + _bytes(2, shape)
    if fill:
        return msg + _bytes(5, struct.pack("<f", float(arr.reshape(-1)[0])))
    return msg + _bytes(4, arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def _attr(value: object) -> bytes:
    """AttrValue from a python value (bytes/str -> s, bool -> b, int -> i, list -> ints...)."""
    if isinstance(value, bool):
        return _int(5, int(value))
    if isinstance(value, int):
        return _int(3, value)
    if isinstance(value, float):
        return _key(4, 5) + struct.pack("<f", value)
    if isinstance(value, str | bytes):
        return _bytes(2, value)
    if isinstance(value, list):
        return _bytes(1, _bytes(3, b"".join(_varint(v) for v in value)))
    if isinstance(value, tuple) and value[0] == "type":
        return _int(6, value[1])
    if isinstance(value, tuple) and value[0] == "fill":
        return _bytes(8, _tensor(value[1], fill=True))
    if isinstance(value, np.ndarray):
        return _bytes(8, _tensor(value))
    raise TypeError(value)


def _node(name: str, op: str, inputs: Sequence[str] = (), **attrs: object) -> bytes:
    msg = _bytes(1, name) + _bytes(2, op) + b"".join(_bytes(3, i) for i in inputs)
    for key, value in attrs.items():
        msg += _bytes(5, _bytes(1, key) + _bytes(2, _attr(value)))
    return msg


def _graph(*nodes: bytes) -> bytes:
    return b"".join(_bytes(1, n) for n in nodes)


def _const(name: str, arr: np.ndarray, fill: bool = False) -> bytes:
    value = ("fill", arr) if fill else arr
    return _node(name, "Const", value=value, dtype=("type", _DTYPES[arr.dtype]))


def _placeholder() -> bytes:
    return _node("image", "Placeholder", dtype=("type", 1))


def test_unsupported_op_names_op_and_node(tmp_path: Path) -> None:
    pb = tmp_path / "foo.pb"
    pb.write_bytes(_graph(_placeholder(), _node("bar/baz", "Foo", ["image"]),
                          _node("out", "Relu", ["bar/baz"])))
    assert tfgraph.list_ops(pb) == {"Placeholder": 1, "Foo": 1, "Relu": 1}
    with pytest.raises(UnsupportedOpError, match=r"unsupported TensorFlow op 'Foo' at node "
                                                 r"'bar/baz'"):
        tfgraph.convert_graphdef(pb)
    assert issubclass(UnsupportedOpError, ValueError)
    # Only the subgraph needed for the requested outputs is converted (string consts parse).
    text = _bytes(5, _bytes(1, "value") + _bytes(2, _bytes(8, _int(1, 7) + _bytes(8, "hi"))))
    pb.write_bytes(_graph(_placeholder(), _node("bar/baz", "Foo", ["image"]),
                          _bytes(1, "note") + _bytes(2, "Const") + text,
                          _node("ok", "Relu", ["image"])))
    model = tfgraph.convert_graphdef(pb, outputs=["ok"])
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(_session(model), x), np.maximum(x, 0))


# --------------------------------------------------------------------------- numpy TF semantics


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: np.ndarray, k: int, s: int, value: float = 0.0) -> np.ndarray:
    (t, b), (le, r) = _same_pads(x.shape[1], k, s), _same_pads(x.shape[2], k, s)
    return np.pad(x, ((0, 0), (t, b), (le, r), (0, 0)), constant_values=value)


def _windows(xp: np.ndarray, k: int, s: int, oh: int, ow: int):
    for i in range(k):
        for j in range(k):
            yield i, j, xp[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :]


def _conv(x: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
    k = w.shape[0]
    oh, ow = -(-x.shape[1] // s), -(-x.shape[2] // s)
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i, j, win in _windows(_pad_same(x, k, s), k, s, oh, ow):
        out += win @ w[i, j]
    return out


def _depthwise(x: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
    k, c, m = w.shape[0], w.shape[2], w.shape[3]
    oh, ow = -(-x.shape[1] // s), -(-x.shape[2] // s)
    out = np.zeros((x.shape[0], oh, ow, c, m))
    for i, j, win in _windows(_pad_same(x, k, s), k, s, oh, ow):
        out += win[..., None] * w[i, j]
    return out.reshape(x.shape[0], oh, ow, c * m)


def _maxpool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    oh, ow = -(-x.shape[1] // s), -(-x.shape[2] // s)
    wins = [win for _, _, win in _windows(_pad_same(x, k, s, -np.inf), k, s, oh, ow)]
    return np.max(wins, axis=0)


def _avgpool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    oh, ow = -(-x.shape[1] // s), -(-x.shape[2] // s)
    total = sum(win for _, _, win in _windows(_pad_same(x, k, s), k, s, oh, ow))
    count = sum(win for _, _, win in _windows(_pad_same(np.ones_like(x), k, s), k, s, oh, ow))
    return total / count


def _resize_bilinear(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """TF ResizeBilinear with align_corners=False, half_pixel_centers=False."""
    def axis(out: int, size: int):
        src = np.arange(out) * (size / out)
        lo = np.floor(src).astype(int)
        return lo, np.minimum(lo + 1, size - 1), src - lo

    y0, y1, fy = axis(oh, x.shape[1])
    x0, x1, fx = axis(ow, x.shape[2])
    rows = x[:, y0] * (1 - fy)[None, :, None, None] + x[:, y1] * fy[None, :, None, None]
    return rows[:, :, x0] * (1 - fx)[None, None, :, None] + rows[:, :, x1] * fx[None, None, :, None]


@pytest.mark.parametrize("size", [(15, 17), (16, 16), (9, 24)])
def test_synthetic_graph_matches_numpy(tmp_path: Path, size: tuple[int, int]) -> None:
    """SAME padding at odd/even sizes, folds (bias, BN, 1x1 depthwise), pools, dynamic resize."""
    rng = np.random.default_rng(7)

    def r(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32)

    w0, b0, dw, dw1, w1 = r(3, 3, 3, 8), r(8), r(3, 3, 8, 2), r(1, 1, 16, 1), r(1, 1, 16, 6)
    gamma, beta, mean = r(6), r(6), r(6)
    var = rng.uniform(0.5, 2, 6).astype(np.float32)
    bias_fill = np.full(6, 0.25, np.float32)
    nodes = [
        _placeholder(),
        _const("w0", w0), _const("b0", b0), _const("dw", dw), _const("dw1", dw1),
        _const("w1", w1), _const("gamma", gamma), _const("beta", beta), _const("mean", mean),
        _const("var", var), _const("bias_fill", bias_fill, fill=True),
        _const("axis", np.array(3, np.int32)), _const("two", np.array(2, np.int32)),
        _const("begin", np.array([1], np.int32)), _const("end", np.array([3], np.int32)),
        _const("stride1", np.array([1], np.int32)),
        _node("conv0", "Conv2D", ["image", "w0"], strides=[1, 2, 2, 1], padding="SAME",
              data_format="NHWC"),
        _node("bias0", "BiasAdd", ["conv0", "b0"]),
        _node("relu0", "Relu6", ["bias0"]),
        _node("dwise", "DepthwiseConv2dNative", ["relu0", "dw"], strides=[1, 2, 2, 1],
              padding="SAME"),
        _node("dwise1", "DepthwiseConv2dNative", ["dwise", "dw1"], strides=[1, 1, 1, 1],
              padding="SAME"),
        _node("conv1", "Conv2D", ["dwise1", "w1"], strides=[1, 1, 1, 1], padding="SAME"),
        _node("bn1", "FusedBatchNorm", ["conv1", "gamma", "beta", "mean", "var"],
              epsilon=0.001, is_training=False),
        _node("bias1", "BiasAdd", ["bn1", "bias_fill"]),
        _node("pool", "MaxPool", ["bias1"], ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
              padding="SAME"),
        _node("avg", "AvgPool", ["bias1"], ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
              padding="SAME"),
        _node("shape", "Shape", ["bias1"], out_type=("type", 3)),
        _node("hw", "StridedSlice", ["shape", "begin", "end", "stride1"]),
        _node("double", "Mul", ["hw", "two"]),
        _node("up", "ResizeBilinear", ["pool", "double"], align_corners=False),
        _node("cat", "ConcatV2", ["pool", "avg", "axis"]),
        _node("identity", "Identity", ["up"]),
    ]
    pb = tmp_path / "tiny.pb"
    pb.write_bytes(_graph(*nodes))
    model = tfgraph.convert_graphdef(pb, outputs=["cat", "identity", "shape"])
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 3  # dwise1 folded into conv1; BiasAdds and BN into convs
    assert "BatchNormalization" not in ops and "Add" not in ops

    x = rng.uniform(0, 255, (2, *size, 3)).astype(np.float32)
    cat, up, shape = _session(model).run(None, {"image": x})

    x64 = x.astype(np.float64)
    y = np.clip(_conv(x64, w0, 2) + b0, 0, 6)
    y = _depthwise(y, dw, 2)
    y = _depthwise(y, dw1, 1)
    y = _conv(y, w1, 1)
    y = (y - mean) / np.sqrt(var + np.float32(0.001)) * gamma + beta + 0.25
    pool = _maxpool(y, 3, 2)
    expected_cat = np.concatenate([pool, _avgpool(y, 3, 2)], axis=3)
    expected_up = _resize_bilinear(pool, 2 * y.shape[1], 2 * y.shape[2])

    np.testing.assert_array_equal(shape, y.shape)
    assert shape.dtype == np.int32
    np.testing.assert_allclose(cat, expected_cat, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(up, expected_up, rtol=1e-4, atol=1e-3)


def test_training_mode_batch_norm_uses_batch_statistics(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    gamma, beta = rng.normal(size=3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    empty = np.zeros(0, np.float32)
    pb = tmp_path / "bn.pb"
    pb.write_bytes(_graph(
        _placeholder(), _const("g", gamma), _const("b", beta), _const("m", empty),
        _const("v", empty),
        _node("bn", "FusedBatchNorm", ["image", "g", "b", "m", "v"], epsilon=0.001,
              is_training=True),
    ))
    x = (rng.normal(size=(2, 5, 7, 3)) * 10 + 50).astype(np.float32)
    out = _run(_session(tfgraph.convert_graphdef(pb)), x)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 0.001) * gamma + beta,
                               rtol=1e-4, atol=1e-4)


def test_convert_file_is_atomic(tmp_path: Path) -> None:
    pb = tmp_path / "relu.pb"
    pb.write_bytes(_graph(_placeholder(), _node("out", "Relu", ["image"])))
    target = tmp_path / "sub" / "relu.onnx"
    assert tfgraph.convert_file(pb, target) == target
    onnx.checker.check_model(onnx.load(target))
    assert sorted(p.name for p in target.parent.iterdir()) == ["relu.onnx"]
    tfgraph.convert_file(pb, target)  # overwriting works too
    assert sorted(p.name for p in target.parent.iterdir()) == ["relu.onnx"]


# --------------------------------------------------------------------------- malformed graphs


def test_huge_declared_tensor_is_refused_before_allocating(tmp_path: Path) -> None:
    """A few bytes declaring a 40 GB splat constant, or folding into one, give GraphDefError."""
    shape = b"".join(_bytes(2, _int(1, d)) for d in (100_000, 100_000))
    splat = _int(1, 1) + _bytes(2, shape) + _bytes(5, struct.pack("<f", 1.0))
    big = _node("big", "Const", dtype=("type", 1)) + _bytes(
        5, _bytes(1, "value") + _bytes(2, _bytes(8, splat)))
    col = _const("col", np.ones((6000, 1), np.float32), fill=True)
    row = _const("row", np.ones((1, 6000), np.float32), fill=True)
    cases = {
        "splat.pb": _graph(big, _node("out", "Relu", ["big"])),
        "fold.pb": _graph(col, row, _node("out", "Mul", ["col", "row"])),
    }
    for name, payload in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(tfgraph.GraphDefError, match=name) as info:
            tfgraph.convert_graphdef(path)
        assert "elements" in str(info.value)


_MUTATION_CHILD = r"""
import json, resource, sys
from pathlib import Path
import numpy as np
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # an absurd allocation fails
from pafpose.models import tfgraph

src, count, seed, out = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
data = src.read_bytes()


def varint(buf, pos):
    value = shift = 0
    while True:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def weights(buf, base=0, path=()):
    # Byte ranges of tensor_content (node.attr.value.tensor.tensor_content): mutating weights
    # only changes numbers, so most mutations go to the structure around them.
    pos, spans = 0, []
    while pos < len(buf):
        key, pos = varint(buf, pos)
        wire = key & 7
        if wire == 0:
            pos = varint(buf, pos)[1]
            continue
        if wire in (1, 5):
            pos += 8 if wire == 1 else 4
            continue
        size, pos = varint(buf, pos)
        sub = path + (key >> 3,)
        if sub == (1, 5, 2, 8, 4):
            spans.append((base + pos, base + pos + size))
        elif sub in ((1,), (1, 5), (1, 5, 2), (1, 5, 2, 8)):
            spans += weights(buf[pos:pos + size], base + pos, sub)
        pos += size
    return spans


mask = np.ones(len(data), bool)
for a, b in weights(data):
    mask[a:b] = False
structure = np.flatnonzero(mask)
rng = np.random.default_rng(seed)
results = {"ok": 0, "own": 0, "other": []}
for i in range(count):
    b = bytearray(data)
    kind = i % 4
    p = int(structure[rng.integers(len(structure))] if i % 8 < 6 else rng.integers(len(b)))
    if kind == 0:
        b[p] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        b[p] = int(rng.integers(256))
    elif kind == 2:
        b = b[:p]
    else:
        b[p:p] = rng.bytes(int(rng.integers(1, 5)))
    out.write_bytes(bytes(b))
    try:
        tfgraph.convert_graphdef(out)
        results["ok"] += 1
    except tfgraph.GraphDefError as exc:
        results["own"] += 1
        if str(out) not in str(exc):
            results["other"].append(f"{i}: message lacks the file name: {exc}")
    except BaseException as exc:
        results["other"].append(f"{i}: {type(exc).__name__}: {exc}"[:300])
print(json.dumps(results))
"""


@pytest.mark.parametrize(("which", "count", "seed"), [("mobilenet_v2_small", 240, 1),
                                                      ("mobilenet_thin", 60, 2)])
def test_mutated_graphs_convert_or_raise_graphdef_error(request, tmp_path: Path, which: str,
                                                        count: int, seed: int) -> None:
    """Byte flips, truncations and insertions of a real graph: converted, or GraphDefError."""
    import json
    import os
    import subprocess
    import sys

    pb = request.getfixturevalue("thin_pb" if which == "mobilenet_thin" else "v2_pb")
    env = {**os.environ, "PYTHONPATH": str(Path(tfgraph.__file__).parents[2])}
    run = subprocess.run(
        [sys.executable, "-c", _MUTATION_CHILD, str(pb), str(count), str(seed),
         str(tmp_path / "mutated.pb")],
        capture_output=True, text=True, timeout=120, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.splitlines()[-1])
    assert results["other"] == []
    assert results["ok"] + results["own"] == count
    assert results["own"] > count // 2  # the mutations do reach the structure
