"""TF spatial ops -> ONNX in NCHW: Conv2D, DepthwiseConv2dNative, MaxPool, AvgPool,
FusedBatchNorm and the resizes. Each takes (builder, node, converted inputs) and returns the
converted output; Convs stay open (DeferredConv) so that what follows can fold into them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import TensorProto

from ..graphdef import NodeDef
from .builder import Builder, DeferredConv, Value
from .fold import fold_batch_norm, fold_scale
from .graph import bytes_attr, nhwc_pairs


def spatial_attrs(bld: Builder, node: NodeDef, kernel: Sequence[int]) -> dict[str, Any]:
    """strides / dilations / padding attributes of a TF NHWC conv or pool."""
    if bytes_attr(node, "data_format", "NHWC") != "NHWC":
        raise bld.unsupported(node, "data_format NCHW")
    strides = nhwc_pairs(node, "strides")
    dilations = nhwc_pairs(node, "dilations")
    padding = bytes_attr(node, "padding", "VALID")
    attrs: dict[str, Any] = {"strides": strides}
    if dilations != [1, 1]:
        attrs["dilations"] = dilations
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    if padding == "VALID":
        attrs["pads"] = [0, 0, 0, 0]
    elif padding == "SAME":
        if strides == [1, 1]:
            # Output size = input size; TF puts the odd pixel at the end.
            total = [e - 1 for e in eff]
            attrs["pads"] = [t // 2 for t in total] + [t - t // 2 for t in total]
        else:
            attrs["auto_pad"] = "SAME_UPPER"  # same rule as TF SAME for any input size
    elif padding == "EXPLICIT":
        p = list(node.attr.get("explicit_paddings") or [0] * 8)
        if len(p) != 8 or p[0] or p[1] or p[6] or p[7]:
            raise bld.unsupported(node, f"explicit_paddings {p}")
        attrs["pads"] = [p[2], p[4], p[3], p[5]]
    else:
        raise bld.unsupported(node, f"padding {padding}")
    return attrs


def conv(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """Conv2D (HWIO) or DepthwiseConv2dNative (HWC1M) -> a deferred ONNX Conv."""
    depthwise = node.op == "DepthwiseConv2dNative"
    x, wv = ins[0], ins[1]
    if wv.const is None or wv.const.ndim != 4:
        raise bld.unsupported(node, "non-constant filter")
    w = wv.const.astype(np.float32)
    kh, kw, cin, cm = w.shape
    attrs = spatial_attrs(bld, node, (kh, kw))
    scale_only = False
    if depthwise:
        # ONNX group conv: output channel c*M+m reads input channel c with filter w[:,:,c,m].
        w = w.reshape(kh, kw, cin * cm, 1).transpose(2, 3, 0, 1)
        attrs["group"] = cin
        scale_only = (kh, kw, cm) == (1, 1, 1) and attrs["strides"] == [1, 1]
    else:
        x, w = fold_scale(bld, x, w.transpose(3, 2, 0, 1))
    xin = bld.as4d(node, x)
    out = bld.fresh(node.name)
    deferred = DeferredConv(x=xin, w=w, attrs=attrs, out=out, owner=node.name,
                            scale_only=scale_only)
    bld.items.append(deferred)
    bld.convs[out] = deferred
    return Value(out, nchw=True)


def pool(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """MaxPool / AvgPool with TF padding (AvgPool SAME excludes the padding from counts, as
    ONNX AveragePool with count_include_pad=0)."""
    onnx_op = "MaxPool" if node.op == "MaxPool" else "AveragePool"
    kernel = nhwc_pairs(node, "ksize")
    attrs = spatial_attrs(bld, node, kernel)
    attrs["kernel_shape"] = kernel
    x = bld.as4d(node, ins[0])
    return Value(bld.emit(onnx_op, [x], node.name, **attrs), nchw=True)


def batch_norm(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """FusedBatchNorm(V2/V3): folded into the Conv (inference) or batch statistics (training)."""
    if bytes_attr(node, "data_format", "NHWC") != "NHWC":
        raise bld.unsupported(node, "data_format NCHW")
    x = ins[0]
    params = [v.const for v in ins[1:5]]
    if any(p is None for p in params[:2]):
        raise bld.unsupported(node, "non-constant scale or offset")
    gamma, beta = (np.asarray(p, np.float32).reshape(-1) for p in params[:2])
    eps = float(node.attr.get("epsilon", 1e-3))
    if node.attr.get("is_training", True):
        return batch_stats_norm(bld, node, x, gamma, beta, eps)
    if any(p is None for p in params[2:]):
        raise bld.unsupported(node, "non-constant mean or variance")
    mean, var = (np.asarray(p, np.float32).reshape(-1) for p in params[2:])
    scale = gamma / np.sqrt(var + np.float32(eps))
    shift = beta - mean * scale
    if fold_batch_norm(bld, node, x, scale, shift):
        return x
    xin = bld.as4d(node, x)
    names = [bld.const(a, f"{node.name}/{n}") for a, n in
             ((scale, "scale"), (shift, "shift"), (np.zeros_like(scale), "mean"),
              (np.ones_like(scale), "var"))]
    return Value(bld.emit("BatchNormalization", [xin, *names], node.name, epsilon=0.0),
                 nchw=True)


def batch_stats_norm(
    bld: Builder, node: NodeDef, x: Value, gamma: np.ndarray, beta: np.ndarray, eps: float
) -> Value:
    """Training-mode batch norm: normalize with the batch's own mean and (biased) variance.

    The statistics are reduced in stages (over W, then H, then N) instead of in one long
    float32 sum: channels whose mean is large next to their spread amplify rounding error in
    the mean, and the staged sums track TensorFlow's (blocked) reductions far more closely.
    """
    xin = bld.as4d(node, x)
    base = node.name

    def staged_mean(t: str, what: str) -> str:
        for axis in (3, 2, 0):
            t = bld.emit("ReduceMean", [t], f"{base}/{what}_{axis}", axes=[axis], keepdims=1)
        return t

    mean = staged_mean(xin, "mean")
    centred = bld.emit("Sub", [xin, mean], base + "/centred")
    var = staged_mean(bld.emit("Mul", [centred, centred], base + "/sq"), "var")
    eps_name = bld.const(np.array(eps, np.float32), base + "/eps")
    std = bld.emit("Sqrt", [bld.emit("Add", [var, eps_name], base + "/var_eps")], base + "/std")
    g = bld.const(gamma.reshape(1, -1, 1, 1), base + "/gamma")
    scale = bld.emit("Div", [g, std], base + "/scale")
    scaled = bld.emit("Mul", [centred, scale], base + "/scaled")
    b = bld.const(beta.reshape(1, -1, 1, 1), base + "/beta")
    return Value(bld.emit("Add", [scaled, b], base), nchw=True)


def resize(bld: Builder, node: NodeDef, ins: list[Value]) -> Value:
    """ResizeBilinear / ResizeNearestNeighbor -> Resize with sizes computed at run time."""
    mode = "linear" if node.op == "ResizeBilinear" else "nearest"
    align = bool(node.attr.get("align_corners", False))
    half = bool(node.attr.get("half_pixel_centers", False))
    attrs: dict[str, Any] = {"mode": mode}
    if align and half:
        raise bld.unsupported(node, "align_corners and half_pixel_centers together")
    if align:
        attrs["coordinate_transformation_mode"] = "align_corners"
    elif half:
        attrs["coordinate_transformation_mode"] = "half_pixel"
    else:
        attrs["coordinate_transformation_mode"] = "asymmetric"
    if mode == "nearest":
        attrs["nearest_mode"] = "round_prefer_ceil" if align or half else "floor"
    x = bld.as4d(node, ins[0])
    base = node.name
    shape = bld.emit("Shape", [x], base + "/in_shape")
    nc = bld.emit("Slice", [shape, bld.const(np.array([0], np.int64), base + "/zero"),
                            bld.const(np.array([2], np.int64), base + "/two")],
                  base + "/nc")
    hw = bld.dyn(ins[1], False, base + "/size")
    hw = bld.emit("Cast", [hw], base + "/size64", to=TensorProto.INT64)
    sizes = bld.emit("Concat", [nc, hw], base + "/sizes", axis=0)
    out = bld.emit("Resize", [x, "", "", sizes], base, **attrs)
    return Value(out, nchw=True)
