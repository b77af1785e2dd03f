"""Minimal protobuf wire-format reader for TensorFlow GraphDef files (no TensorFlow needed)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelError

# Wire types.
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5

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


#: Most elements a tensor stored in short form (a few values, repeated) may expand to, and the
#: most all such tensors of one graph may expand to together; tensors stored as raw bytes are
#: checked against the bytes present instead.
MAX_EXPANDED_ELEMENTS = 1 << 25

_expand_budget: ContextVar[list[int] | None] = ContextVar("_expand_budget", default=None)


class GraphDefError(ModelError):
    """A GraphDef file that cannot be read or converted; the message says why."""


class ProtobufDecodeError(GraphDefError):
    """The bytes are not a well-formed protobuf message of the expected kind."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one varint at `pos`; return (value, new position)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufDecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufDecodeError("varint longer than 10 bytes")


def _signed64(value: int) -> int:
    """Reinterpret an unsigned 64-bit varint as a two's-complement int64."""
    return value - (1 << 64) if value >= 1 << 63 else value


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field of one message.

    The value is an int for varints, bytes for fixed32/fixed64/length-delimited fields.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufDecodeError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            yield number, wire, value
            continue
        if wire == _LEN:
            size, pos = _varint(buf, pos)
        elif wire == _FIXED64:
            size = 8
        elif wire == _FIXED32:
            size = 4
        else:
            raise ProtobufDecodeError(f"unsupported wire type {wire} (field {number})")
        if pos + size > end:
            raise ProtobufDecodeError(f"truncated field {number}: needs {size} bytes")
        yield number, wire, buf[pos:pos + size]
        pos += size


def _packed(wire: int, value: int | bytes, kind: str) -> list[Any]:
    """Values of a repeated scalar field, packed (length-delimited) or not."""
    if kind == "varint":
        if wire == _VARINT:
            return [value]
        if wire != _LEN:
            raise ProtobufDecodeError("expected a varint field")
        out = []
        pos = 0
        while isinstance(value, bytes) and pos < len(value):
            item, pos = _varint(value, pos)
            out.append(item)
        return out
    fmt = {"f32": "<f", "f64": "<d"}[kind]
    size = struct.calcsize(fmt)
    if not isinstance(value, bytes) or wire == _VARINT or len(value) % size:
        raise ProtobufDecodeError(f"bad {kind} field")
    return [v[0] for v in struct.iter_unpack(fmt, value)]


def _text(value: int | bytes) -> str:
    """A length-delimited string field as text."""
    if not isinstance(value, bytes):
        raise ProtobufDecodeError("expected a string field")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufDecodeError("string field is not UTF-8") from exc


def _msg(value: int | bytes) -> bytes:
    """A length-delimited sub-message field."""
    if not isinstance(value, bytes):
        raise ProtobufDecodeError("expected a sub-message")
    return value


def parse_shape(buf: bytes) -> list[int] | None:
    """TensorShapeProto -> list of dims (-1 unknown), or None for unknown rank."""
    dims: list[int] = []
    unknown_rank = False
    for number, wire, value in iter_fields(buf):
        if number == 2:
            size = 0
            for n2, _w2, v2 in iter_fields(_msg(value)):
                if n2 == 1 and isinstance(v2, int):
                    size = _signed64(v2)
            dims.append(size)
        elif number == 3 and wire == _VARINT:
            unknown_rank = bool(value)
    return None if unknown_rank else dims


def parse_tensor(buf: bytes) -> np.ndarray:
    """TensorProto -> numpy array (content bytes or the typed *_val fields)."""
    dtype_enum = 1
    shape: list[int] = []
    content: bytes | None = None
    vals: list[Any] = []
    for number, wire, value in iter_fields(buf):
        if number == 1:
            dtype_enum = int(value) if isinstance(value, int) else -1
        elif number == 2:
            shape = parse_shape(_msg(value)) or []
        elif number == 4:
            content = _msg(value)
        elif number == 5:  # float_val
            vals += _packed(wire, value, "f32")
        elif number == 6:  # double_val
            vals += _packed(wire, value, "f64")
        elif number in (7, 11, 13, 16):  # int_val, bool_val, half_val (bits), uint32_val
            vals += _packed(wire, value, "varint")
        elif number in (10, 17):  # int64_val, uint64_val
            vals += _packed(wire, value, "varint")
        elif number == 8:  # string_val
            vals.append(_msg(value))
    if dtype_enum not in TF_DTYPES:
        # Strings, resources, variants: kept as an object array so the graph still parses;
        # the converter rejects them if the requested outputs depend on them.
        return np.array(vals if dtype_enum == 7 else [], dtype=object)
    dtype = TF_DTYPES[dtype_enum]
    if any(d < 0 for d in shape):
        raise ProtobufDecodeError(f"constant tensor with unknown shape {shape}")
    count = math.prod(shape)  # python ints: no overflow
    if content is not None:
        if len(content) != count * dtype.itemsize:
            raise ProtobufDecodeError(
                f"tensor_content has {len(content)} bytes, expected {count * dtype.itemsize}"
            )
        return np.frombuffer(content, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    if len(vals) > count:
        raise ProtobufDecodeError(f"tensor has {len(vals)} values for shape {shape}")
    _spend(count - len(vals), shape)
    if dtype == np.float16:
        arr = np.array(vals, dtype=np.uint16).view(np.float16)
    elif dtype.kind in "iu":
        # Varints of negative int32/int64 are 64-bit two's complement.
        arr = np.array([_signed64(v) for v in vals], dtype=np.int64).astype(dtype)
    else:
        arr = np.array(vals, dtype=dtype)
    if arr.size == count:
        return arr.reshape(shape)
    if arr.size == 0:
        return np.zeros(shape, dtype=dtype)
    # TF convention: a short value list is padded with its last value.
    return np.concatenate([arr, np.full(count - arr.size, arr[-1], dtype=dtype)]).reshape(shape)


def _spend(count: int, shape: list[int]) -> None:
    """Charge `count` implied (not stored) elements to the graph's budget; refuse absurd ones."""
    budget = _expand_budget.get()
    left = budget[0] if budget is not None else MAX_EXPANDED_ELEMENTS
    if count > left:
        raise ProtobufDecodeError(
            f"tensor of shape {shape} stores few values but implies {count} elements "
            f"(at most {MAX_EXPANDED_ELEMENTS} per graph)"
        )
    if budget is not None:
        budget[0] -= count


def _parse_list(buf: bytes) -> list[Any]:
    """AttrValue.ListValue -> python list (whichever field is populated)."""
    out: list[Any] = []
    for number, wire, value in iter_fields(buf):
        if number == 2:
            out.append(_msg(value))
        elif number == 3:
            out += [_signed64(v) for v in _packed(wire, value, "varint")]
        elif number == 4:
            out += _packed(wire, value, "f32")
        elif number == 5:
            out += [bool(v) for v in _packed(wire, value, "varint")]
        elif number == 6:
            out += _packed(wire, value, "varint")
        elif number == 7:
            out.append(parse_shape(_msg(value)))
        elif number == 8:
            out.append(parse_tensor(_msg(value)))
    return out


def parse_attr(buf: bytes) -> Any:
    """AttrValue -> python value: bytes, int, float, bool, dtype enum, shape, ndarray or list."""
    result: Any = None
    for number, wire, value in iter_fields(buf):
        if number == 1:
            result = _parse_list(_msg(value))
        elif number == 2:
            result = _msg(value)
        elif number == 3:
            result = _signed64(int(value)) if wire == _VARINT else None
        elif number == 4:
            if wire != _FIXED32 or not isinstance(value, bytes):
                raise ProtobufDecodeError("bad float attr")
            result = struct.unpack("<f", value)[0]
        elif number == 5:
            result = bool(value)
        elif number == 6:
            result = int(value) if wire == _VARINT else None
        elif number == 7:
            result = parse_shape(_msg(value))
        elif number == 8:
            result = parse_tensor(_msg(value))
        elif number == 9:
            result = _text(value)
    return result


@dataclass
class NodeDef:
    """One TensorFlow graph node: name, op type, inputs and decoded attributes."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attr: dict[str, Any] = field(default_factory=dict)


def parse_node(buf: bytes) -> NodeDef:
    """NodeDef message -> NodeDef."""
    node = NodeDef(name="", op="")
    for number, _wire, value in iter_fields(buf):
        if number == 1:
            node.name = _text(value)
        elif number == 2:
            node.op = _text(value)
        elif number == 3:
            node.inputs.append(_text(value))
        elif number == 5:
            key = ""
            attr_value: Any = None
            for n2, _w2, v2 in iter_fields(_msg(value)):
                if n2 == 1:
                    key = _text(v2)
                elif n2 == 2:
                    attr_value = parse_attr(_msg(v2))
            node.attr[key] = attr_value
    if not node.name or not node.op:
        raise ProtobufDecodeError("NodeDef without a name or op")
    return node


def parse_graphdef(data: bytes) -> list[NodeDef]:
    """Serialized GraphDef -> list of NodeDef (function library and versions are ignored)."""
    token = _expand_budget.set([MAX_EXPANDED_ELEMENTS])
    try:
        nodes = [parse_node(_msg(value)) for number, _w, value in iter_fields(data)
                 if number == 1]
    except (struct.error, IndexError, OverflowError, TypeError, ValueError) as exc:
        if isinstance(exc, GraphDefError):
            raise
        raise ProtobufDecodeError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        _expand_budget.reset(token)
    if not nodes:
        raise ProtobufDecodeError("no nodes found")
    return nodes
