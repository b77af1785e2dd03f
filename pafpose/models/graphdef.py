"""Read a TensorFlow GraphDef (.pb) with the `protobuf` package, without TensorFlow.

The few TensorFlow messages a frozen graph needs (GraphDef, NodeDef, AttrValue, TensorProto,
TensorShapeProto) are declared here as a `protoschema.Schema`, with the field numbers of
TensorFlow's graph.proto, node_def.proto, attr_value.proto, tensor.proto and tensor_shape.proto
(DataType values are plain ints). Fields not declared (function library, versions, debug info)
are skipped by the parser. The result is plain Python: a list of `NodeDef` whose attributes are
bytes, int, float, bool, a shape list, a numpy array or a list of these.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from ..errors import ModelError
from .protoschema import MANY, ONE, Schema

__all__ = ["MAX_EXPANDED_ELEMENTS", "TF_DTYPES", "GraphDefError", "NodeDef", "parse_graphdef"]

#: TensorFlow DataType enum -> numpy dtype (the types that can appear in a frozen graph here).
TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.float64),
    3: np.dtype(np.int32),
    4: np.dtype(np.uint8),
    5: np.dtype(np.int16),
    6: np.dtype(np.int8),
    9: np.dtype(np.int64),
    10: np.dtype(np.bool_),
    17: np.dtype(np.uint16),
    19: np.dtype(np.float16),
    22: np.dtype(np.uint32),
    23: np.dtype(np.uint64),
}
_DT_STRING = 7

#: Most elements a tensor stored in short form (a few values, repeated) may expand to, and the
#: most all such tensors of one graph may expand to together; tensors stored as raw bytes are
#: checked against the bytes present instead.
MAX_EXPANDED_ELEMENTS = 1 << 25

_expand_budget: ContextVar[list[int] | None] = ContextVar("_expand_budget", default=None)


class GraphDefError(ModelError):
    """A GraphDef file that cannot be read or converted; the message says why."""


# --------------------------------------------------------------------------- the messages

_PACKAGE = "pafpose.tf"

#: The kinds of value an attribute holds: (field name, number, type) in AttrValue and ListValue.
_ATTR_VALUES = [("s", 2, "bytes"), ("i", 3, "int64"), ("f", 4, "float"), ("b", 5, "bool"),
                ("type", 6, "int32"),  # DataType
                ("shape", 7, "TensorShapeProto"), ("tensor", 8, "TensorProto")]

# message name -> [(field name, number, label, type: a scalar name or a message name)].
# Field numbers as in TensorFlow's .proto files (proto3; repeated scalars are packed).
_MESSAGES: dict[str, list[tuple[str, int, int, str]]] = {
    "TensorShapeProto.Dim": [("size", 1, ONE, "int64"), ("name", 2, ONE, "string")],
    "TensorShapeProto": [("dim", 2, MANY, "TensorShapeProto.Dim"),
                         ("unknown_rank", 3, ONE, "bool")],
    "TensorProto": [
        ("dtype", 1, ONE, "int32"),  # DataType
        ("tensor_shape", 2, ONE, "TensorShapeProto"),
        ("tensor_content", 4, ONE, "bytes"),
        ("float_val", 5, MANY, "float"),
        ("double_val", 6, MANY, "double"),
        ("int_val", 7, MANY, "int32"),
        ("string_val", 8, MANY, "bytes"),
        ("int64_val", 10, MANY, "int64"),
        ("bool_val", 11, MANY, "bool"),
        ("half_val", 13, MANY, "int32"),  # the float16 bits
        ("uint32_val", 16, MANY, "uint32"),
        ("uint64_val", 17, MANY, "uint64"),
    ],
    # ListValue repeats AttrValue's fields 2-8; all of AttrValue's fields form the oneof `value`
    # (`func` = 10, a NameAttrList, is not used here).
    "AttrValue.ListValue": [(name, n, MANY, kind) for name, n, kind in _ATTR_VALUES],
    "AttrValue": [("list", 1, ONE, "AttrValue.ListValue"),
                  *((name, n, ONE, kind) for name, n, kind in _ATTR_VALUES),
                  ("placeholder", 9, ONE, "string")],
    "NodeDef.AttrEntry": [("key", 1, ONE, "string"), ("value", 2, ONE, "AttrValue")],
    "NodeDef": [("name", 1, ONE, "string"), ("op", 2, ONE, "string"),
                ("input", 3, MANY, "string"), ("device", 4, ONE, "string"),
                ("attr", 5, MANY, "NodeDef.AttrEntry")],  # map<string, AttrValue>
    "GraphDef": [("node", 1, MANY, "NodeDef")],
}

#: The schema of the messages above (GraphDef is the one a .pb file holds).
SCHEMA = Schema(_PACKAGE, "proto3", _MESSAGES, map_entries=frozenset({"NodeDef.AttrEntry"}),
                oneofs={"AttrValue": "value"})
(_GraphDef,) = SCHEMA.classes("GraphDef")


# --------------------------------------------------------------------------- to plain Python


@dataclass
class NodeDef:
    """One TensorFlow graph node: name, op type, inputs and decoded attributes."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attr: dict[str, Any] = field(default_factory=dict)


def parse_shape(shape: Any) -> list[int] | None:
    """TensorShapeProto -> list of dims (-1 unknown), or None for unknown rank."""
    return None if shape.unknown_rank else [d.size for d in shape.dim]


def _spend(count: int, shape: list[int]) -> None:
    """Charge `count` implied (not stored) elements to the graph's budget; refuse absurd ones."""
    budget = _expand_budget.get()
    left = budget[0] if budget is not None else MAX_EXPANDED_ELEMENTS
    if count > left:
        raise GraphDefError(
            f"tensor of shape {shape} stores few values but implies {count} elements "
            f"(at most {MAX_EXPANDED_ELEMENTS} per graph)"
        )
    if budget is not None:
        budget[0] -= count


def _stored_values(tensor: Any, dtype: np.dtype) -> np.ndarray:
    """The values of a TensorProto's typed *_val field for `dtype` (TF reads only that one)."""
    if dtype == np.float16:
        return np.array(tensor.half_val, dtype=np.uint16).view(np.float16)
    source = {"f": tensor.double_val if dtype == np.float64 else tensor.float_val,
              "b": tensor.bool_val,
              "i": tensor.int64_val if dtype == np.int64 else tensor.int_val,
              "u": {np.dtype(np.uint32): tensor.uint32_val,
                    np.dtype(np.uint64): tensor.uint64_val}.get(dtype, tensor.int_val)}[dtype.kind]
    # Through int64 so that out-of-range values wrap as TensorFlow's casts do.
    wide = np.int64 if dtype.kind in "iu" and dtype != np.uint64 else dtype
    return np.array(source, dtype=wide).astype(dtype)


def parse_tensor(tensor: Any) -> np.ndarray:
    """TensorProto -> numpy array (content bytes or the typed *_val fields)."""
    if tensor.dtype not in TF_DTYPES:
        # Strings, resources, variants: kept as an object array so the graph still parses;
        # the converter rejects them if the requested outputs depend on them.
        return np.array(list(tensor.string_val) if tensor.dtype == _DT_STRING else [],
                        dtype=object)
    dtype = TF_DTYPES[tensor.dtype]
    shape = parse_shape(tensor.tensor_shape) or []
    if any(d < 0 for d in shape):
        raise GraphDefError(f"constant tensor with unknown shape {shape}")
    count = math.prod(shape)  # python ints: no overflow
    content = tensor.tensor_content
    if content:
        if len(content) != count * dtype.itemsize:
            raise GraphDefError(
                f"tensor_content has {len(content)} bytes, expected {count * dtype.itemsize}"
            )
        return np.frombuffer(content, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    arr = _stored_values(tensor, dtype)
    if arr.size > count:
        raise GraphDefError(f"tensor has {arr.size} values for shape {shape}")
    _spend(count - arr.size, shape)
    if arr.size == count:
        return arr.reshape(shape)
    if arr.size == 0:
        return np.zeros(shape, dtype=dtype)
    # TF convention: a short value list is padded with its last value.
    return np.concatenate([arr, np.full(count - arr.size, arr[-1], dtype=dtype)]).reshape(shape)


def _parse_list(values: Any) -> list[Any]:
    """AttrValue.ListValue -> python list (whichever field is populated)."""
    return [*values.s, *values.i, *values.f, *values.b, *values.type,
            *(parse_shape(s) for s in values.shape), *(parse_tensor(t) for t in values.tensor)]


def parse_attr(attr: Any) -> Any:
    """AttrValue -> python value: bytes, int, float, bool, dtype enum, shape, ndarray or list."""
    kind = attr.WhichOneof("value")
    if kind is None:
        return None
    if kind == "list":
        return _parse_list(attr.list)
    if kind == "shape":
        return parse_shape(attr.shape)
    if kind == "tensor":
        return parse_tensor(attr.tensor)
    return getattr(attr, kind)


def _node(node: Any) -> NodeDef:
    """NodeDef message -> NodeDef."""
    if not node.name or not node.op:
        raise GraphDefError("NodeDef without a name or op")
    return NodeDef(name=node.name, op=node.op, inputs=list(node.input),
                   attr={key: parse_attr(value) for key, value in node.attr.items()})


def parse_graphdef(data: bytes) -> list[NodeDef]:
    """Serialized GraphDef -> list of NodeDef; malformed bytes raise GraphDefError."""
    try:
        graph = _GraphDef.FromString(data)
    except DecodeError as exc:
        raise GraphDefError(f"not a well-formed protobuf message: {exc}") from exc
    token = _expand_budget.set([MAX_EXPANDED_ELEMENTS])
    try:
        nodes = [_node(node) for node in graph.node]
    except (OverflowError, TypeError, ValueError) as exc:
        if isinstance(exc, GraphDefError):
            raise
        raise GraphDefError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        _expand_budget.reset(token)
    if not nodes:
        raise GraphDefError("no nodes found")
    return nodes
