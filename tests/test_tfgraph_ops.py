"""TF GraphDef -> ONNX converter, op by op: synthetic graphs against numpy's TF semantics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pafpose.models import tfgraph
from pafpose.models.tfgraph import UnsupportedOpError

from .graphdef_bytes import _bytes, _const, _graph, _int, _node, _placeholder
from .test_tfgraph import _run, _session


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
