"""A tiny protobuf encoder for TensorFlow GraphDefs: synthetic graphs for the converter and
parser tests, written byte by byte without TensorFlow."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(num: int, wire: int) -> bytes:
    return _varint(num << 3 | wire)


def _int(num: int, value: int) -> bytes:
    return _key(num, 0) + _varint(value)


def _bytes(num: int, payload: bytes | str) -> bytes:
    payload = payload.encode() if isinstance(payload, str) else payload
    return _key(num, 2) + _varint(len(payload)) + payload


_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.int32): 3, np.dtype(np.int64): 9}


def _tensor(arr: np.ndarray, fill: bool = False, typed: bool = False) -> bytes:
    """TensorProto; fill=True stores a single float_val to be broadcast (TF's short form);
    typed=True stores every value in float_val / int_val / int64_val (packed), as TensorFlow
    does for the scalars of a frozen graph."""
    shape = b"".join(_bytes(2, _int(1, d)) for d in arr.shape)
    msg = _int(1, _DTYPES[arr.dtype]) + _bytes(2, shape)
    if fill:
        return msg + _bytes(5, struct.pack("<f", float(arr.reshape(-1)[0])))
    if typed:
        values = arr.reshape(-1).tolist()
        if arr.dtype == np.float32:
            return msg + _bytes(5, struct.pack(f"<{len(values)}f", *values))
        return msg + _bytes(10 if arr.dtype == np.int64 else 7,
                            b"".join(_varint(int(v)) for v in values))
    return msg + _bytes(4, arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def _attr(value: object) -> bytes:
    """AttrValue from a python value (bytes/str -> s, bool -> b, int -> i, list -> ints,
    ("type", enum), ("shape", dims), ("fill" or "typed", array), array -> tensor)."""
    if isinstance(value, bool):
        return _int(5, int(value))
    if isinstance(value, int):
        return _int(3, value)
    if isinstance(value, float):
        return _key(4, 5) + struct.pack("<f", value)
    if isinstance(value, str | bytes):
        return _bytes(2, value)
    if isinstance(value, list):
        return _bytes(1, _bytes(3, b"".join(_varint(v) for v in value)))
    if isinstance(value, tuple) and value[0] == "type":
        return _int(6, value[1])
    if isinstance(value, tuple) and value[0] == "shape":  # TensorShapeProto, -1 = unknown
        return _bytes(7, b"".join(_bytes(2, _int(1, d)) for d in value[1]))
    if isinstance(value, tuple) and value[0] in ("fill", "typed"):
        return _bytes(8, _tensor(value[1], **{value[0]: True}))
    if isinstance(value, np.ndarray):
        return _bytes(8, _tensor(value))
    raise TypeError(value)


def _node(name: str, op: str, inputs: Sequence[str] = (), **attrs: object) -> bytes:
    msg = _bytes(1, name) + _bytes(2, op) + b"".join(_bytes(3, i) for i in inputs)
    for key, value in attrs.items():
        msg += _bytes(5, _bytes(1, key) + _bytes(2, _attr(value)))
    return msg


def _graph(*nodes: bytes) -> bytes:
    return b"".join(_bytes(1, n) for n in nodes)


def _const(name: str, arr: np.ndarray, fill: bool = False, typed: bool = False) -> bytes:
    value = ("fill", arr) if fill else ("typed", arr) if typed else arr
    return _node(name, "Const", value=value, dtype=("type", _DTYPES[arr.dtype]))


def _placeholder() -> bytes:
    return _node("image", "Placeholder", dtype=("type", 1))
