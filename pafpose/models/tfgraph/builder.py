"""The ONNX graph under construction: fresh tensor names, initializers, nodes, the NHWC/NCHW
layout of each value, Convs kept open for folding, and the final ModelProto.

Naming, emitting and the closing steps come from `..onnxbuild` (shared with the Caffe converter);
the layout bookkeeping here is what an NHWC source graph needs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..graphdef import GraphDefError, NodeDef
from ..onnxbuild import OPSET, GraphBuilder, onnx_dtype
from .graph import UnsupportedOpError

__all__ = ["NCHW_TO_NHWC", "NHWC_AXIS_TO_NCHW", "NHWC_TO_NCHW", "OPSET", "Builder",
           "DeferredConv", "Value", "onnx_dtype"]

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_AXIS_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


@dataclass
class Value:
    """A TF tensor during conversion: a numpy constant, or an ONNX tensor name and its layout."""

    name: str = ""
    const: np.ndarray | None = None
    nchw: bool = False  # stored NCHW in ONNX while TF sees it as NHWC


@dataclass
class DeferredConv:
    """A Conv whose weights and bias may still change through folding; emitted at the end."""

    x: str
    w: np.ndarray  # OIHW
    attrs: dict[str, Any]
    out: str
    owner: str  # TF node whose output this conv currently represents
    b: np.ndarray | None = None
    scale_only: bool = False  # depthwise 1x1, stride 1, multiplier 1: y[c] = s[c] * x[c]
    removed: bool = False


class Builder(GraphBuilder):
    """Accumulates ONNX nodes and initializers for one model with a single NHWC image input."""

    def __init__(self, input_name: str) -> None:
        super().__init__()
        self.input_name = input_name
        self.items: list[onnx.NodeProto | DeferredConv] = []
        self.convs: dict[str, DeferredConv] = {}
        self.uses: Counter[str] = Counter()
        self.transposed: dict[tuple[str, bool], str] = {}
        self.has_input = False

    def dyn(self, v: Value, nchw: bool, base: str) -> str:
        """ONNX name of `v` in the requested layout (NCHW only applies to 4-D tensors)."""
        if v.const is not None:
            arr = v.const
            if nchw:
                arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape).transpose(NHWC_TO_NCHW)
            return self.const(arr, base + "/const")
        if v.nchw == nchw:
            return v.name
        key = (v.name, nchw)
        if key not in self.transposed:
            perm = NHWC_TO_NCHW if nchw else NCHW_TO_NHWC
            self.transposed[key] = self.emit(
                "Transpose", [v.name], v.name + ("/nchw" if nchw else "/nhwc"), perm=list(perm)
            )
        return self.transposed[key]

    def as4d(self, node: NodeDef, v: Value) -> str:
        """An NCHW input for a spatial op (Conv, Pool, Resize, BatchNorm)."""
        if v.const is not None and v.const.ndim != 4:
            raise UnsupportedOpError(
                f"non-4-D constant input to TensorFlow op {node.op!r} at node {node.name!r}"
            )
        return self.dyn(v, True, node.name + "/input")

    def single_use(self, tf_name: str) -> bool:
        """True when a TF node's output feeds exactly one consumer and is not a graph output."""
        return self.uses[tf_name] == 1

    def unsupported(self, node: NodeDef, what: str = "") -> UnsupportedOpError:
        """The error for an op (or op variant) that cannot be converted."""
        extra = f" ({what})" if what else ""
        return UnsupportedOpError(
            f"unsupported TensorFlow op {node.op!r} at node {node.name!r}{extra}"
        )

    def finish(self, outputs: list[tuple[str, Value]]) -> onnx.ModelProto:
        """Materialize deferred Convs and wrap the graph as a ModelProto."""
        for name, v in outputs:
            if v.const is not None:
                raise GraphDefError(f"output {name!r} is a constant; nothing to convert")
            src = self.dyn(v, False, name)
            self.items.append(helper.make_node("Identity", [src], [name], name=name + "/output"))
        nodes: list[onnx.NodeProto] = []
        for item in self.items:
            if isinstance(item, DeferredConv):
                if item.removed:
                    continue
                ins = [item.x, self.const(item.w.astype(np.float32), item.out + "/W")]
                if item.b is not None:
                    ins.append(self.const(item.b.astype(np.float32), item.out + "/B"))
                kernel = list(item.w.shape[2:])
                nodes.append(helper.make_node("Conv", ins, [item.out], name=item.out,
                                              kernel_shape=kernel, **item.attrs))
            else:
                nodes.append(item)
        inputs = []
        if self.has_input:
            inputs.append(helper.make_tensor_value_info(
                self.input_name, TensorProto.FLOAT, ["N", "H", "W", 3]))
        return self.make_model(nodes, inputs, [n for n, _ in outputs], "pafpose_tfgraph",
                               "pafpose.models.tfgraph", ("N", "height", "width", "channels"))
