"""Building ONNX models node by node: fresh tensor names, initializers, nodes, and the closing
steps every converter needs (output Identities dropped, output shapes declared). Nothing here
knows the source format (TensorFlow, Caffe)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelError

__all__ = ["OPSET", "GraphBuilder", "drop_identities", "onnx_dtype", "with_output_shapes"]

#: ONNX opset of the converted models.
OPSET = 17


def onnx_dtype(dtype: np.dtype) -> int:
    """numpy dtype -> ONNX TensorProto data type."""
    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


class GraphBuilder:
    """Accumulates the nodes and initializers of one ONNX graph under unique names."""

    def __init__(self) -> None:
        self.items: list[Any] = []  # ONNX nodes (subclasses may add items of their own)
        self.inits: dict[str, np.ndarray] = {}
        self.names: set[str] = set()

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

    def make_model(self, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
                   outputs: Sequence[str], graph_name: str, producer: str,
                   labels: Sequence[str]) -> onnx.ModelProto:
        """The ModelProto of `nodes` (output Identities folded away, unused initializers
        dropped, output shapes inferred; `labels` name the dynamic dims of 4-D outputs)."""
        nodes = drop_identities(nodes, set(outputs))
        used = {i for n in nodes for i in n.input}
        inits = [numpy_helper.from_array(a, n) for n, a in self.inits.items() if n in used]
        graph_outputs = [helper.make_empty_tensor_value_info(name) for name in outputs]
        graph = helper.make_graph(nodes, graph_name, inputs, graph_outputs, inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name=producer)
        model.ir_version = 8
        return with_output_shapes(model, labels)


def with_output_shapes(model: onnx.ModelProto,
                       labels: Sequence[str] = ("N", "height", "width", "channels"),
                       ) -> onnx.ModelProto:
    """Declare output types and shapes from ONNX shape inference (symbolic where dynamic);
    the dynamic dims of 4-D outputs are named after `labels` ("N" as it is, others prefixed
    with the output's name)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    for out, inf in zip(model.graph.output, inferred.graph.output, strict=True):
        tensor = inf.type.tensor_type
        if not tensor.elem_type or not tensor.HasField("shape"):
            raise ModelError(f"could not infer the type of output {out.name!r}")
        out.type.CopyFrom(inf.type)
        dims = out.type.tensor_type.shape.dim
        names = list(labels) if len(dims) == 4 else []
        for i, dim in enumerate(dims):
            if not dim.HasField("dim_value") and (
                    not dim.dim_param or dim.dim_param.startswith("unk__")):
                label = names[i] if names else f"d{i}"
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


def inferred_shapes(model: onnx.ModelProto, input_shape: Sequence[int]) -> dict[str, list[int]]:
    """Shape of every tensor of `model` (node outputs and graph outputs; 0 where unknown) for
    one input of `input_shape`, by ONNX shape inference on a copy with that input fixed."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for dim, size in zip(fixed.graph.input[0].type.tensor_type.shape.dim, input_shape,
                         strict=True):
        dim.Clear()
        dim.dim_value = int(size)
    inferred = onnx.shape_inference.infer_shapes(fixed)
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
