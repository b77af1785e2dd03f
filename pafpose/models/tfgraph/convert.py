"""The file-level API: walk the part of a GraphDef that the requested outputs need, convert it
node by node (constants folded, the rest through the op table) and write the ONNX model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from ...files import atomic_path
from ..graphdef import GraphDefError, NodeDef
from .builder import Builder, Value
from .fold import fold_constant
from .graph import Graph, data_inputs, default_outputs, load, malformed, split_ref, stage_table
from .ops import OPS


class Converter(Builder):
    """Builds one ONNX graph from the part of a TF graph that the requested outputs need."""

    def __init__(self, graph: Graph, input_name: str) -> None:
        super().__init__(input_name)
        self.graph = graph
        self.values: dict[tuple[str, int], Value] = {}

    def convert(self, outputs: Sequence[str]) -> list[Value]:
        """Convert every node needed by `outputs` and return the output values."""
        order = self.toposort([split_ref(o)[0] for o in outputs])
        for name in order:
            for ref in data_inputs(self.graph.nodes[name]):
                self.uses[split_ref(ref)[0]] += 1
        for out in outputs:
            self.uses[split_ref(out)[0]] += 1
        for name in order:
            node = self.graph.nodes[name]
            ins = [self.value(split_ref(r)) for r in data_inputs(node)]
            results = self.convert_node(node, ins)
            for i, val in enumerate(results):
                self.values[(name, i)] = val
        return [self.value(split_ref(out)) for out in outputs]

    def value(self, key: tuple[str, int]) -> Value:
        """The converted value of TF tensor (node, output index)."""
        if key not in self.values:
            node = self.graph.nodes[key[0]]
            raise self.unsupported(node, f"output {key[1]} is used but not converted")
        return self.values[key]

    def toposort(self, roots: Sequence[str]) -> list[str]:
        """Nodes needed by `roots` (data inputs only), dependencies first."""
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = in progress, 2 = done
        for root in roots:
            if root not in self.graph.nodes:
                raise GraphDefError(f"output node {root!r} is not in the graph")
            stack: list[tuple[str, bool]] = [(root, False)]
            while stack:
                name, expanded = stack.pop()
                if expanded:
                    state[name] = 2
                    order.append(name)
                    continue
                if state.get(name) == 2:
                    continue
                if state.get(name) == 1:
                    raise GraphDefError(f"cycle in graph at node {name!r}")
                state[name] = 1
                stack.append((name, True))
                for ref in reversed(data_inputs(self.graph.nodes[name])):
                    src = split_ref(ref)[0]
                    if src not in self.graph.nodes:
                        raise GraphDefError(f"node {name!r} reads missing node {src!r}")
                    if state.get(src) != 2:
                        if state.get(src) == 1:
                            raise GraphDefError(f"cycle in graph at node {src!r}")
                        stack.append((src, False))
        return order

    def convert_node(self, node: NodeDef, ins: list[Value]) -> list[Value]:
        """Dispatch one node: constant folding first, then the ONNX mapping."""
        if node.op == "Const":
            value = node.attr.get("value")
            if not isinstance(value, np.ndarray) or value.dtype == object:
                raise self.unsupported(node, "constant that is not a numeric tensor")
            return [Value(const=value)]
        if ins and all(v.const is not None for v in ins):
            folded = fold_constant(node, [np.asarray(v.const) for v in ins])
            if folded is not None:
                return [Value(const=folded)]
        handler = OPS.get(node.op)
        if handler is None:
            raise self.unsupported(node)
        return [handler(self, node, ins)]


def convert_graphdef(
    pb_path: str | Path,
    outputs: Sequence[str] | None = None,
    input_name: str = "image",
    *,
    stage: int | None = None,
) -> onnx.ModelProto:
    """Convert a frozen TF GraphDef to an ONNX model (NHWC float32 input and outputs).

    A malformed file raises GraphDefError (a ValueError) naming the file, nothing else.
    """
    if stage is not None and outputs is not None:
        raise ValueError("give either outputs or stage, not both")
    with malformed(pb_path):
        graph = load(pb_path)
        table = stage_table(graph) if stage is not None else {}
    if stage is not None and stage not in table:
        raise ValueError(f"{pb_path}: no stage {stage} (stages found: {sorted(table)})")
    names = []
    if stage is None:
        names = list(outputs) if outputs is not None else default_outputs(graph)
        if not names:
            raise GraphDefError(f"{pb_path}: no outputs to convert")
    exposed = [n[:-2] if n.endswith(":0") else n for n in names]
    if len(set(exposed)) != len(exposed) or input_name in exposed:
        raise ValueError(f"outputs must be distinct and not the input: {names}")
    with malformed(pb_path):
        conv = Converter(graph, input_name)
        if stage is not None:
            out_name = f"Openpose/stage{stage}_heatmaps_pafs"
            conv.names.add(out_name)
            heat, paf = conv.convert(table[stage])
            both = [conv.dyn(v, True, f"{out_name}/{n}")
                    for v, n in ((heat, "heat"), (paf, "paf"))]
            cat = Value(conv.emit("Concat", both, out_name + "/concat", axis=1), nchw=True)
            model = conv.finish([(out_name, cat)])
        else:
            conv.names.update(exposed)
            values = conv.convert(names)
            model = conv.finish(list(zip(exposed, values, strict=True)))
        onnx.checker.check_model(model)
    return model


def convert_file(
    pb_path: str | Path,
    onnx_path: str | Path,
    outputs: Sequence[str] | None = None,
    *,
    stage: int | None = None,
) -> Path:
    """Convert a GraphDef and write the ONNX model atomically; return the written path."""
    model = convert_graphdef(pb_path, outputs, stage=stage)
    target = Path(onnx_path)
    with atomic_path(target) as tmp:
        tmp.write_bytes(model.SerializeToString())
    return target
