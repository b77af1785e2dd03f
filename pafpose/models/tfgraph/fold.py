"""Folding: nodes whose inputs are all constants are evaluated with numpy, and biases, inference
batch norms and 1x1 per-channel (depthwise) scalings are folded into the neighbouring Conv."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..graphdef import MAX_EXPANDED_ELEMENTS, GraphDefError, NodeDef
from .builder import Builder, Value
from .graph import PASS_THROUGH, tf_dtype

NP_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "Add": np.add,
    "AddV2": np.add,
    "BiasAdd": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "RealDiv": np.divide,
    "Maximum": np.maximum,
    "Minimum": np.minimum,
}


# --------------------------------------------------------------------------- constants


def strided_slice_spec(
    node: NodeDef, begin: np.ndarray, end: np.ndarray, strides: np.ndarray
) -> tuple[Any, ...]:
    """numpy index tuple equivalent to a TF StridedSlice (all mask kinds)."""
    masks = {k: int(node.attr.get(k) or 0) for k in (
        "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    index: list[Any] = []
    for i, (b, e, s) in enumerate(zip(begin.tolist(), end.tolist(), strides.tolist(), strict=True)):
        bit = 1 << i
        if masks["ellipsis_mask"] & bit:
            index.append(Ellipsis)
        elif masks["new_axis_mask"] & bit:
            index.append(None)
        elif masks["shrink_axis_mask"] & bit:
            index.append(int(b))
        else:
            index.append(slice(
                None if masks["begin_mask"] & bit else int(b),
                None if masks["end_mask"] & bit else int(e),
                int(s),
            ))
    return tuple(index)


def fold_constant(node: NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
    """numpy evaluation of a node whose inputs are all constants, or None."""
    op = node.op
    if op in PASS_THROUGH:
        return args[0]
    if op in NP_BINARY or op in ("Pack", "ConcatV2"):
        size = (math.prod(np.broadcast_shapes(args[0].shape, args[1].shape))
                if op in NP_BINARY else sum(a.size for a in args))
        if size > MAX_EXPANDED_ELEMENTS:
            raise GraphDefError(
                f"constant folding of {op!r} at node {node.name!r} would make {size} elements"
            )
    if op in NP_BINARY:
        return np.asarray(NP_BINARY[op](args[0], args[1])).astype(args[0].dtype)
    if op == "Cast":
        return args[0].astype(tf_dtype(node, "DstT"))
    if op == "Pack":
        return np.stack(args, axis=int(node.attr.get("axis") or 0))
    if op == "ConcatV2":
        return np.concatenate(args[:-1], axis=int(args[-1]))
    if op == "Reshape":
        return args[0].reshape([int(d) for d in args[1].reshape(-1)])
    if op == "Shape":
        return np.array(args[0].shape, dtype=tf_dtype(node, "out_type"))
    if op == "StridedSlice":
        return np.asarray(args[0][strided_slice_spec(node, *args[1:4])])
    if op == "Relu":
        return np.maximum(args[0], 0).astype(args[0].dtype)
    return None


# --------------------------------------------------------------------------- into a Conv


def fold_bias(bld: Builder, node: NodeDef, x: Value, bias: Value) -> bool:
    """Add a per-channel constant to the bias of the Conv producing `x`, if possible."""
    conv = bld.convs.get(x.name) if x.const is None else None
    if conv is None or bias.const is None or not bld.single_use(conv.owner):
        return False
    c = conv.w.shape[0]
    vec = bias.const
    if vec.ndim > 4 or vec.size not in (1, c) or (vec.size == c and vec.shape[-1] != c):
        return False
    vec = np.broadcast_to(vec.reshape(-1).astype(np.float32), (c,))
    conv.b = vec.copy() if conv.b is None else conv.b + vec
    conv.scale_only = False
    conv.owner = node.name
    return True


def fold_scale(bld: Builder, x: Value, w: np.ndarray) -> tuple[Value, np.ndarray]:
    """A Conv (OIHW `w`) reading a per-channel scaling: y = W * (s . x) = (W . s) * x.

    Returns the Conv's input and weights, with the scaling folded in (and removed) if possible.
    """
    cin = w.shape[1]
    prev = bld.convs.get(x.name) if x.const is None else None
    if prev is not None and prev.scale_only and prev.b is None \
            and bld.single_use(prev.owner) and prev.w.shape[0] == cin:
        w = w * prev.w.reshape(1, cin, 1, 1)
        prev.removed = True
        x = Value(prev.x, nchw=True)
    return x, w


def fold_batch_norm(bld: Builder, node: NodeDef, x: Value, scale: np.ndarray,
                    shift: np.ndarray) -> bool:
    """Fold y = x * scale + shift into the Conv producing `x`, if possible."""
    conv = bld.convs.get(x.name) if x.const is None else None
    if conv is not None and bld.single_use(conv.owner) and conv.w.shape[0] == scale.size:
        conv.w = conv.w * scale.reshape(-1, 1, 1, 1)
        conv.b = shift if conv.b is None else conv.b * scale + shift
        conv.scale_only = False
        conv.owner = node.name
        return True
    return False
