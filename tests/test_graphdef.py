"""The GraphDef reader (models/graphdef.py): TensorFlow messages decoded with `protobuf`."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pafpose.errors import ModelError
from pafpose.models.graphdef import MAX_EXPANDED_ELEMENTS, GraphDefError, parse_graphdef

from .graphdef_bytes import _bytes, _graph, _int, _key, _node, _varint


def _shape(*dims: int) -> bytes:
    return b"".join(_bytes(2, _int(1, d)) for d in dims)


def _tensor_attr(dtype: int, dims: tuple[int, ...], *fields: bytes) -> bytes:
    """AttrValue holding a TensorProto with the given dtype, shape and value fields."""
    return _bytes(8, _int(1, dtype) + _bytes(2, _shape(*dims)) + b"".join(fields))


def _const(value: bytes, name: str = "n") -> bytes:
    """A graph of one Const node whose `value` is the given encoded AttrValue."""
    return _graph(_bytes(1, name) + _bytes(2, "Const") + _bytes(5, _bytes(1, "value") + _bytes(
        2, value)))


def _one_node(**attrs: bytes) -> dict:
    """Parse a graph of one node whose attributes are given as encoded AttrValues."""
    msg = _bytes(1, "n") + _bytes(2, "Const")
    for key, value in attrs.items():
        msg += _bytes(5, _bytes(1, key) + _bytes(2, value))
    (node,) = parse_graphdef(_graph(msg))
    return node.attr


def test_nodes_inputs_and_scalar_attrs() -> None:
    data = _graph(_node("image", "Placeholder", dtype=("type", 1)),
                  _node("out", "Relu", ["image", "^ctl"], T=("type", 1), name_s="abc",
                        k=-3, x=0.5, flag=True, strides=[1, 2, 2, 1]))
    image, out = parse_graphdef(data)
    assert (image.name, image.op, image.inputs, image.attr) == (
        "image", "Placeholder", [], {"dtype": 1})
    assert out.inputs == ["image", "^ctl"]
    assert out.attr == {"T": 1, "name_s": b"abc", "k": -3, "x": 0.5, "flag": True,
                        "strides": [1, 2, 2, 1]}


def test_lists_shapes_and_placeholders() -> None:
    floats = _bytes(1, _bytes(4, struct.pack("<2f", 1.5, -2.0)))
    negative = _bytes(1, _bytes(3, _varint(-1) + _varint(7)))
    shapes = _bytes(1, _bytes(7, _shape(1, -1, 3)) + _bytes(7, _int(3, 1)))
    attr = _one_node(f=floats, i=negative, shapes=shapes, unknown=_bytes(7, _int(3, 1)),
                     ph=_bytes(9, "T"), empty=b"")
    assert attr == {"f": [1.5, -2.0], "i": [-1, 7], "shapes": [[1, -1, 3], None],
                    "unknown": None, "ph": "T", "empty": None}


def test_tensors_in_every_stored_form() -> None:
    content = np.arange(6, dtype=np.float32).reshape(2, 3)
    attr = _one_node(
        raw=_tensor_attr(1, (2, 3), _bytes(4, content.tobytes())),
        splat=_tensor_attr(1, (2, 2), _bytes(5, struct.pack("<2f", 1.0, 2.0))),
        ints=_tensor_attr(3, (3,), _bytes(7, _varint(-5) + _varint(4))),
        longs=_tensor_attr(9, (2,), _bytes(10, _varint(-(1 << 40)) + _varint(3))),
        half=_tensor_attr(19, (2,), _bytes(13, _varint(0x3C00) + _varint(0xC000))),
        flags=_tensor_attr(10, (2,), _bytes(11, _varint(1) + _varint(0))),
        zeros=_tensor_attr(1, (2,)),
        text=_tensor_attr(7, (1,), _bytes(8, b"hi")),
    )
    np.testing.assert_array_equal(attr["raw"], content)
    np.testing.assert_array_equal(attr["splat"], [[1, 2], [2, 2]])
    assert attr["ints"].dtype == np.int32 and attr["ints"].tolist() == [-5, 4, 4]
    assert attr["longs"].dtype == np.int64 and attr["longs"].tolist() == [-(1 << 40), 3]
    assert attr["half"].dtype == np.float16 and attr["half"].tolist() == [1.0, -2.0]
    assert attr["flags"].tolist() == [True, False]
    assert attr["zeros"].dtype == np.float32 and attr["zeros"].tolist() == [0, 0]
    assert attr["text"].dtype == object and attr["text"].tolist() == [b"hi"]


@pytest.mark.parametrize(("data", "match"), [
    (b"", "no nodes"),
    (b"node { name: 'x' op: 'Const' }\n", "protobuf"),
    (_graph(_node("n", "Const"))[:-2], "protobuf"),
    (_graph(_bytes(1, "n")), "without a name or op"),
    (_graph(_bytes(1, b"\xff\xfe") + _bytes(2, "Const")), "protobuf"),  # not UTF-8
    (_graph(_node("n", "Const")) + _key(1, 7), "protobuf"),  # no such wire type
    (_const(_tensor_attr(1, (4,), _bytes(4, b"\0" * 12))), "tensor_content has 12 bytes"),
    (_const(_tensor_attr(1, (3,), _bytes(5, struct.pack("<4f", 1, 2, 3, 4)))), "4 values"),
    (_const(_tensor_attr(1, (2, -1))), "unknown shape"),
])
def test_malformed_bytes_raise_graphdef_error(data: bytes, match: str) -> None:
    with pytest.raises(GraphDefError, match=match) as info:
        parse_graphdef(data)
    assert isinstance(info.value, ModelError) and isinstance(info.value, ValueError)


def test_short_form_tensors_share_one_budget_per_graph() -> None:
    half = MAX_EXPANDED_ELEMENTS // 2 + 2  # two of them imply more than the budget
    big = _tensor_attr(1, (half,), _bytes(5, struct.pack("<f", 1.0)))  # 1 value, `half` implied
    assert parse_graphdef(_const(big))[0].attr["value"].shape == (half,)
    with pytest.raises(GraphDefError, match="elements"):
        parse_graphdef(_const(big, "a") + _const(big, "b"))
