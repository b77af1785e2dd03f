"""TF GraphDef -> ONNX converter on real graphs: TF oracle outputs, OpenCV, stages, the file API,
malformed and mutated graphs (the op-by-op synthetic tests are in test_tfgraph_ops)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import onnx
import pytest

from pafpose.models import tfgraph

from .conftest import SHARED, need
from .graphdef_bytes import _bytes, _const, _graph, _int, _node, _placeholder

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
    env = {**os.environ, "PYTHONPATH": str(Path(tfgraph.__file__).parents[3])}
    run = subprocess.run(
        [sys.executable, "-c", _MUTATION_CHILD, str(pb), str(count), str(seed),
         str(tmp_path / "mutated.pb")],
        capture_output=True, text=True, timeout=120, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.splitlines()[-1])
    assert results["other"] == []
    assert results["ok"] + results["own"] == count
    assert results["own"] > count // 2  # the mutations do reach the structure
