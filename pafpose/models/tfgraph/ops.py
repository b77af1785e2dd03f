"""The op table: TensorFlow op name -> the function that emits its ONNX nodes.

Every function takes (builder, TF node, converted inputs) and returns the converted output. This
module holds the elementwise and the shape/structure ops; the spatial ones (conv, pooling, batch
norm, resize) are in `spatial`. A node whose inputs are all constants is folded before it gets
here (`fold.fold_constant`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import TensorProto

from ..graphdef import NodeDef
from . import spatial
from .builder import NCHW_TO_NHWC, NHWC_AXIS_TO_NCHW, Builder, Value, onnx_dtype
from .fold import fold_bias
from .graph import PASS_THROUGH, bytes_attr, tf_dtype

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min

_UNARY = {
    "Relu": "Relu",
    "Sigmoid": "Sigmoid",
    "Tanh": "Tanh",
    "Elu": "Elu",
    "Exp": "Exp",
    "Neg": "Neg",
    "Abs": "Abs",
    "Sqrt": "Sqrt",
    "Reciprocal": "Reciprocal",
    "Softplus": "Softplus",
}
_BINARY = {
    "Add": "Add",
    "AddV2": "Add",
    "BiasAdd": "Add",
    "Sub": "Sub",
    "Mul": "Mul",
    "RealDiv": "Div",
    "Maximum": "Max",
    "Minimum": "Min",
}

Op = Callable[[Builder, NodeDef, list[Value]], Value]


# --------------------------------------------------------------------------- elementwise


def unary(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Layout-preserving one-input op."""
    v = ins[0]
    name = bld.dyn(v, v.nchw, node.name)
    attrs = {}
    if node.op == "Elu":
        attrs["alpha"] = 1.0
    return Value(bld.emit(_UNARY[node.op], [name], node.name, **attrs), nchw=v.nchw)


def relu6(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Relu6 -> Clip(0, 6)."""
    v = ins[0]
    lo = bld.const(np.array(0, np.float32), node.name + "/min")
    hi = bld.const(np.array(6, np.float32), node.name + "/max")
    x = bld.dyn(v, v.nchw, node.name + "/in")
    return Value(bld.emit("Clip", [x, lo, hi], node.name), nchw=v.nchw)


def leaky_relu(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """LeakyRelu with its alpha attribute."""
    alpha = float(node.attr.get("alpha", 0.2))
    x = bld.dyn(ins[0], ins[0].nchw, node.name + "/in")
    return Value(bld.emit("LeakyRelu", [x], node.name, alpha=alpha), nchw=ins[0].nchw)


def binary(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Broadcasting two-input op; folds a constant bias into a preceding Conv."""
    a, b = ins[0], ins[1]
    if node.op in ("BiasAdd", "Add", "AddV2") and fold_bias(bld, node, a, b):
        return a
    if node.op in ("Add", "AddV2") and fold_bias(bld, node, b, a):
        return b
    if node.op == "BiasAdd" and bytes_attr(node, "data_format", "NHWC") != "NHWC":
        raise bld.unsupported(node, "data_format NCHW")
    dyn_vals = [v for v in (a, b) if v.const is None]
    nchw = all(v.nchw for v in dyn_vals)
    if nchw and any(v.const is not None and v.const.ndim > 4 for v in (a, b)):
        nchw = False
    names = [bld.dyn(v, nchw, node.name + f"/in{i}") for i, v in enumerate((a, b))]
    return Value(bld.emit(_BINARY[node.op], names, node.name), nchw=nchw)


# --------------------------------------------------------------------------- structure


def placeholder(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """The image input: NHWC float32, transposed once to NCHW."""
    if node.name != bld.input_name:
        raise ValueError(
            f"the outputs need placeholder {node.name!r}, but only {bld.input_name!r} is fed"
        )
    dtype = node.attr.get("dtype", 1)
    shape = node.attr.get("shape")
    if dtype != 1 or (shape is not None and len(shape) != 4):
        raise bld.unsupported(node, "only a 4-D float32 NHWC image input is supported")
    bld.has_input = True
    bld.names.add(node.name)
    return Value(node.name, nchw=False)


def first_input(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Identity, StopGradient, Snapshot, and PlaceholderWithDefault (its default value)."""
    return ins[0]


def concat_v2(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """ConcatV2 with the axis remapped when the inputs are NCHW."""
    axis_v = ins[-1]
    if axis_v.const is None:
        raise bld.unsupported(node, "non-constant axis")
    axis = int(axis_v.const)
    parts = ins[:-1]
    nchw = all(v.nchw or v.const is not None for v in parts) and any(v.nchw for v in parts)
    if nchw:
        axis = NHWC_AXIS_TO_NCHW[axis % 4]
    names = [bld.dyn(v, nchw, f"{node.name}/in{i}") for i, v in enumerate(parts)]
    return Value(bld.emit("Concat", names, node.name, axis=axis), nchw=nchw)


def concat(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Legacy Concat (axis first)."""
    return concat_v2(bld, node, [*ins[1:], ins[0]])


def shape(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Shape in TF (NHWC) order, as out_type."""
    v = ins[0]
    out = bld.emit("Shape", [v.name], node.name + "/shape")
    if v.nchw:
        perm = bld.const(np.array(NCHW_TO_NHWC, np.int64), node.name + "/perm")
        out = bld.emit("Gather", [out, perm], node.name + "/nhwc", axis=0)
    dtype = tf_dtype(node, "out_type")
    return Value(bld.emit("Cast", [out], node.name, to=onnx_dtype(dtype)))


def cast(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Cast (layout-preserving)."""
    dtype = tf_dtype(node, "DstT")
    v = ins[0]
    x = bld.dyn(v, v.nchw, node.name + "/in")
    return Value(bld.emit("Cast", [x], node.name, to=onnx_dtype(dtype)), nchw=v.nchw)


def pack(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Pack (stack) of plain tensors -> Unsqueeze + Concat."""
    axis = int(node.attr.get("axis") or 0)
    ax = bld.const(np.array([axis], np.int64), node.name + "/axis")
    parts = [bld.emit("Unsqueeze", [bld.dyn(v, False, f"{node.name}/in{i}"), ax],
                      f"{node.name}/unsq{i}") for i, v in enumerate(ins)]
    return Value(bld.emit("Concat", parts, node.name, axis=axis))


def reshape(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Reshape in TF layout."""
    x = bld.dyn(ins[0], False, node.name + "/in")
    size = bld.dyn(ins[1], False, node.name + "/shape")
    size = bld.emit("Cast", [size], node.name + "/shape64", to=TensorProto.INT64)
    return Value(bld.emit("Reshape", [x, size], node.name))


def strided_slice(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """StridedSlice with constant begin/end/strides -> Slice (+ Squeeze for shrink axes)."""
    if any(v.const is None for v in ins[1:4]):
        raise bld.unsupported(node, "non-constant begin/end/strides")
    begin, end, strides = (np.asarray(v.const, np.int64).reshape(-1) for v in ins[1:4])
    if int(node.attr.get("ellipsis_mask") or 0) or int(node.attr.get("new_axis_mask") or 0):
        raise bld.unsupported(node, "ellipsis_mask/new_axis_mask on a computed tensor")
    bmask = int(node.attr.get("begin_mask") or 0)
    emask = int(node.attr.get("end_mask") or 0)
    shrink = int(node.attr.get("shrink_axis_mask") or 0)
    starts, ends, steps = [], [], []
    for i, (b, e, s) in enumerate(zip(begin.tolist(), end.tolist(), strides.tolist(),
                                      strict=True)):
        bit = 1 << i
        if shrink & bit:
            e, s = (b + 1 if b != -1 else _INT64_MAX), 1
        if bmask & bit and not shrink & bit:
            b = 0 if s > 0 else _INT64_MAX
        if emask & bit and not shrink & bit:
            e = _INT64_MAX if s > 0 else _INT64_MIN
        starts.append(b)
        ends.append(e)
        steps.append(s)
    x = bld.dyn(ins[0], False, node.name + "/in")
    axes = np.arange(len(starts), dtype=np.int64)
    args = [x] + [bld.const(np.array(a, np.int64), f"{node.name}/{n}") for a, n in
                  ((starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps"))]
    out = bld.emit("Slice", args, node.name + ("/slice" if shrink else ""))
    if shrink:
        sq = [i for i in range(len(starts)) if shrink >> i & 1]
        axes_sq = bld.const(np.array(sq, np.int64), node.name + "/squeeze_axes")
        out = bld.emit("Squeeze", [out, axes_sq], node.name)
    return Value(out)


# --------------------------------------------------------------------------- the table

#: Every TensorFlow op the converter maps, with the function that emits it.
OPS: dict[str, Op] = {
    **dict.fromkeys(_UNARY, unary),
    **dict.fromkeys(_BINARY, binary),
    **dict.fromkeys(PASS_THROUGH, first_input),
    "Relu6": relu6,
    "LeakyRelu": leaky_relu,
    "Placeholder": placeholder,
    "PlaceholderWithDefault": first_input,
    "ConcatV2": concat_v2,
    "Concat": concat,
    "Shape": shape,
    "Cast": cast,
    "Pack": pack,
    "Reshape": reshape,
    "StridedSlice": strided_slice,
    "Conv2D": spatial.conv,
    "DepthwiseConv2dNative": spatial.conv,
    "MaxPool": spatial.pool,
    "AvgPool": spatial.pool,
    "FusedBatchNorm": spatial.batch_norm,
    "FusedBatchNormV2": spatial.batch_norm,
    "FusedBatchNormV3": spatial.batch_norm,
    "ResizeBilinear": spatial.resize,
    "ResizeNearestNeighbor": spatial.resize,
}
