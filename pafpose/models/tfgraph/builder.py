"""The ONNX graph under construction: fresh tensor names, initializers, nodes, the NHWC/NCHW
layout of each value, Convs kept open for folding, and the final ModelProto.

Naming, emitting and the closing steps (`drop_identities`, `with_output_shapes`) know nothing of
TensorFlow; the layout bookkeeping is what an NHWC source graph needs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..graphdef import GraphDefError, NodeDef
from .graph import UnsupportedOpError

#: ONNX opset of the converted models.
OPSET = 17

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


def onnx_dtype(dtype: np.dtype) -> int:
    """numpy dtype -> ONNX TensorProto data type."""
    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


class Builder:
    """Accumulates ONNX nodes and initializers for one model with a single NHWC image input."""

    def __init__(self, input_name: str) -> None:
        self.input_name = input_name
        self.items: list[onnx.NodeProto | DeferredConv] = []
        self.inits: dict[str, np.ndarray] = {}
        self.convs: dict[str, DeferredConv] = {}
        self.uses: Counter[str] = Counter()
        self.transposed: dict[tuple[str, bool], str] = {}
        self.names: set[str] = set()
        self.has_input = False

    def fresh(self, base: str) -> str:
        """A tensor name not used yet, derived from `base`."""
        name, i = base, 0
        while name in self.names:
            i += 1
            name = f"{base}__{i}"
        self.names.add(name)
        return name

    def const(self, array: np.ndarray, base: str) -> str:
        """Register an initializer and return its name."""
        name = self.fresh(base)
        self.inits[name] = np.ascontiguousarray(array)
        return name

    def emit(self, op: str, inputs: Sequence[str], base: str, **attrs: Any) -> str:
        """Append one single-output ONNX node and return its output name."""
        out = self.fresh(base)
        self.items.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

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
        graph_outputs = []
        for name, v in outputs:
            if v.const is not None:
                raise GraphDefError(f"output {name!r} is a constant; nothing to convert")
            src = self.dyn(v, False, name)
            self.items.append(helper.make_node("Identity", [src], [name], name=name + "/output"))
            graph_outputs.append(helper.make_empty_tensor_value_info(name))
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
        nodes = drop_identities(nodes, {n for n, _ in outputs})
        used = {i for n in nodes for i in n.input}
        inits = [numpy_helper.from_array(a, n) for n, a in self.inits.items() if n in used]
        inputs = []
        if self.has_input:
            inputs.append(helper.make_tensor_value_info(
                self.input_name, TensorProto.FLOAT, ["N", "H", "W", 3]))
        graph = helper.make_graph(nodes, "pafpose_tfgraph", inputs, graph_outputs, inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="pafpose.models.tfgraph")
        model.ir_version = 8
        return with_output_shapes(model)


def with_output_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Declare output types and shapes from ONNX shape inference (symbolic where dynamic)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    for out, inf in zip(model.graph.output, inferred.graph.output, strict=True):
        tensor = inf.type.tensor_type
        if not tensor.elem_type or not tensor.HasField("shape"):
            raise GraphDefError(f"could not infer the type of output {out.name!r}")
        out.type.CopyFrom(inf.type)
        dims = out.type.tensor_type.shape.dim
        labels = ["N", "height", "width", "channels"] if len(dims) == 4 else []
        for i, dim in enumerate(dims):
            if not dim.HasField("dim_value") and (
                    not dim.dim_param or dim.dim_param.startswith("unk__")):
                label = labels[i] if labels else f"d{i}"
                dim.dim_param = label if label == "N" else f"{out.name}:{label}"
    return model


def drop_identities(nodes: list[onnx.NodeProto], keep: set[str]) -> list[onnx.NodeProto]:
    """Remove output Identity nodes by renaming their producer's output to the output name."""
    producers = {o: n for n in nodes for o in n.output}
    readers = Counter(i for n in nodes for i in n.input)
    result = []
    renamed: dict[str, str] = {}
    for n in nodes:
        if n.op_type == "Identity" and n.output[0] in keep:
            src = n.input[0]
            prod = producers.get(src)
            if prod is not None and readers[src] == 1 and src not in keep:
                renamed[src] = n.output[0]
                continue
        result.append(n)
    for n in result:
        for lst in (n.input, n.output):
            for i, name in enumerate(lst):
                if name in renamed:
                    lst[i] = renamed[name]
    return result
