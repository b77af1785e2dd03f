"""Read Caffe nets (a deploy .prototxt and its .caffemodel) with the `protobuf` package, no Caffe.

The part of Caffe's caffe.proto that a deploy net of convolutions, activations, pooling and
concatenation needs is declared here as a `protoschema.Schema`, with Caffe's field numbers:
NetParameter with both the current `layer` (100) and the legacy V1 `layers` (2) field,
LayerParameter / V1LayerParameter, BlobProto (`shape`, or the legacy num/channels/height/width),
and the parameters of Convolution, Pooling, Concat, ReLU, PReLU and Input layers. The text-format
prototxt is parsed by `google.protobuf.text_format` with the same schema. Undeclared fields
(training settings, other layer types' parameters) are skipped in both.

Blob values (`data`, Caffe's packed floats) are declared as bytes: a packed repeated float field
is one length-delimited run of little-endian floats on the wire, so it is read with one
`np.frombuffer` instead of a Python float per weight (and written back the same way).

The result is plain Python: `CaffeNet` (inputs and `Layer`s in prototxt order) and the weights
of a caffemodel as {layer name: [numpy arrays]}.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from ..errors import ModelError
from .protoschema import MANY, ONE, Field, Schema

__all__ = ["SCHEMA", "CaffeNet", "CaffeError", "Layer", "blob_array", "read_caffemodel",
           "read_prototxt", "write_caffemodel"]


class CaffeError(ModelError):
    """A Caffe prototxt or caffemodel that cannot be read or converted; the message says why."""


def _packed(name: str, number: int, kind: str) -> Field:
    return Field(name, number, MANY, kind, packed=True)


def _default(name: str, number: int, kind: str, default: str) -> Field:
    return Field(name, number, ONE, kind, default=default)


#: V1LayerParameter's enum of layer types (the legacy `layers` field).
V1_TYPES = {"NONE": 0, "ABSVAL": 35, "ACCURACY": 1, "ARGMAX": 30, "BNLL": 2, "CONCAT": 3,
            "CONTRASTIVE_LOSS": 37, "CONVOLUTION": 4, "DATA": 5, "DECONVOLUTION": 39,
            "DROPOUT": 6, "DUMMY_DATA": 32, "EUCLIDEAN_LOSS": 7, "ELTWISE": 25, "EXP": 38,
            "FLATTEN": 8, "HDF5_DATA": 9, "HDF5_OUTPUT": 10, "HINGE_LOSS": 28, "IM2COL": 11,
            "IMAGE_DATA": 12, "INFOGAIN_LOSS": 13, "INNER_PRODUCT": 14, "LRN": 15,
            "MEMORY_DATA": 29, "MULTINOMIAL_LOGISTIC_LOSS": 16, "MVN": 34, "POOLING": 17,
            "POWER": 26, "RELU": 18, "SIGMOID": 19, "SIGMOID_CROSS_ENTROPY_LOSS": 27,
            "SILENCE": 36, "SOFTMAX": 20, "SOFTMAX_LOSS": 21, "SPLIT": 22, "SLICE": 33,
            "TANH": 23, "WINDOW_DATA": 24, "THRESHOLD": 31}
#: The V1 types this reader maps to today's type names (others keep their V1 name).
_V1_NAMES = {"CONCAT": "Concat", "CONVOLUTION": "Convolution", "DROPOUT": "Dropout",
             "POOLING": "Pooling", "RELU": "ReLU", "SPLIT": "Split"}

# Field numbers as in Caffe's src/caffe/proto/caffe.proto (proto2).
_MESSAGES: dict[str, list[Any]] = {
    "BlobShape": [_packed("dim", 1, "int64")],
    "BlobProto": [
        ("shape", 7, ONE, "BlobShape"),
        ("data", 5, MANY, "bytes"),  # packed float; see the module docstring
        ("double_data", 8, MANY, "bytes"),  # packed double
        ("num", 1, ONE, "int32"), ("channels", 2, ONE, "int32"),
        ("height", 3, ONE, "int32"), ("width", 4, ONE, "int32"),
    ],
    "FillerParameter": [
        _default("type", 1, "string", "constant"), ("value", 2, ONE, "float"),
        ("min", 3, ONE, "float"), _default("max", 4, "float", "1"),
        ("mean", 5, ONE, "float"), _default("std", 6, "float", "1"),
        _default("sparse", 7, "int32", "-1"),
    ],
    "ParamSpec": [("name", 1, ONE, "string"), _default("lr_mult", 3, "float", "1"),
                  _default("decay_mult", 4, "float", "1")],
    "ConvolutionParameter": [
        ("num_output", 1, ONE, "uint32"), _default("bias_term", 2, "bool", "true"),
        ("pad", 3, MANY, "uint32"), ("kernel_size", 4, MANY, "uint32"),
        ("stride", 6, MANY, "uint32"), ("dilation", 18, MANY, "uint32"),
        ("pad_h", 9, ONE, "uint32"), ("pad_w", 10, ONE, "uint32"),
        ("kernel_h", 11, ONE, "uint32"), ("kernel_w", 12, ONE, "uint32"),
        ("stride_h", 13, ONE, "uint32"), ("stride_w", 14, ONE, "uint32"),
        _default("group", 5, "uint32", "1"),
        ("weight_filler", 7, ONE, "FillerParameter"), ("bias_filler", 8, ONE, "FillerParameter"),
        ("engine", 15, ONE, "Engine"), _default("axis", 16, "int32", "1"),
    ],
    "PoolingParameter": [
        _default("pool", 1, "PoolMethod", "MAX"), ("pad", 4, ONE, "uint32"),
        ("pad_h", 9, ONE, "uint32"), ("pad_w", 10, ONE, "uint32"),
        ("kernel_size", 2, ONE, "uint32"), ("kernel_h", 5, ONE, "uint32"),
        ("kernel_w", 6, ONE, "uint32"), _default("stride", 3, "uint32", "1"),
        ("stride_h", 7, ONE, "uint32"), ("stride_w", 8, ONE, "uint32"),
        ("engine", 11, ONE, "Engine"), ("global_pooling", 12, ONE, "bool"),
        _default("round_mode", 13, "RoundMode", "CEIL"),
    ],
    "ConcatParameter": [_default("axis", 2, "int32", "1"),
                        _default("concat_dim", 1, "uint32", "1")],
    "ReLUParameter": [("negative_slope", 1, ONE, "float"), ("engine", 2, ONE, "Engine")],
    "PReLUParameter": [("filler", 1, ONE, "FillerParameter"),
                       ("channel_shared", 2, ONE, "bool")],
    "InputParameter": [("shape", 1, MANY, "BlobShape")],
    "LayerParameter": [
        ("name", 1, ONE, "string"), ("type", 2, ONE, "string"),
        ("bottom", 3, MANY, "string"), ("top", 4, MANY, "string"),
        ("param", 6, MANY, "ParamSpec"), ("blobs", 7, MANY, "BlobProto"),
        ("concat_param", 104, ONE, "ConcatParameter"),
        ("convolution_param", 106, ONE, "ConvolutionParameter"),
        ("input_param", 143, ONE, "InputParameter"),
        ("pooling_param", 121, ONE, "PoolingParameter"),
        ("prelu_param", 131, ONE, "PReLUParameter"),
        ("relu_param", 123, ONE, "ReLUParameter"),
    ],
    "V1LayerParameter": [
        ("bottom", 2, MANY, "string"), ("top", 3, MANY, "string"), ("name", 4, ONE, "string"),
        ("type", 5, ONE, "V1LayerType"), ("blobs", 6, MANY, "BlobProto"),
        ("concat_param", 9, ONE, "ConcatParameter"),
        ("convolution_param", 10, ONE, "ConvolutionParameter"),
        ("pooling_param", 19, ONE, "PoolingParameter"),
        ("relu_param", 30, ONE, "ReLUParameter"),
    ],
    "NetParameter": [
        ("name", 1, ONE, "string"), ("input", 3, MANY, "string"),
        ("input_shape", 8, MANY, "BlobShape"), ("input_dim", 4, MANY, "int32"),
        ("layer", 100, MANY, "LayerParameter"), ("layers", 2, MANY, "V1LayerParameter"),
    ],
}
_ENUMS = {
    "PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2},
    "RoundMode": {"CEIL": 0, "FLOOR": 1},
    "Engine": {"DEFAULT": 0, "CAFFE": 1, "CUDNN": 2},
    "V1LayerType": V1_TYPES,
}

#: The schema of the messages above (NetParameter is what a prototxt and a caffemodel hold).
SCHEMA = Schema("pafpose.caffe", "proto2", _MESSAGES, enums=_ENUMS)
_NetParameter, _BlobProto = SCHEMA.classes("NetParameter", "BlobProto")


# --------------------------------------------------------------------------- to plain Python


@dataclass
class Layer:
    """One layer of a deploy net: name, type name, bottoms, tops and its parameter message."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    params: Any  # the LayerParameter / V1LayerParameter message (its *_param fields)


@dataclass
class CaffeNet:
    """A parsed deploy prototxt: the network's inputs (name -> NCHW dims) and its layers."""

    name: str
    inputs: dict[str, list[int]]
    layers: list[Layer] = field(default_factory=list)


def _layer(message: Any, legacy: bool) -> Layer:
    kind = message.type
    if legacy:
        v1 = {number: name for name, number in V1_TYPES.items()}.get(kind, f"V1 type {kind}")
        kind = _V1_NAMES.get(v1, v1)
    return Layer(message.name, kind, list(message.bottom), list(message.top), message)


def _layers(net: Any) -> list[Layer]:
    """The layers of a NetParameter, from `layer` (100) or the legacy `layers` (2)."""
    return [_layer(m, False) for m in net.layer] + [_layer(m, True) for m in net.layers]


def _inputs(net: Any, layers: list[Layer]) -> dict[str, list[int]]:
    """Input blobs and their declared dims: `input` + input_shape / input_dim, or Input layers."""
    names = list(net.input)
    shapes = [list(s.dim) for s in net.input_shape]
    if not shapes and net.input_dim:
        dims = list(net.input_dim)
        shapes = [dims[i:i + 4] for i in range(0, len(dims), 4)]
    inputs = {n: (shapes[i] if i < len(shapes) else []) for i, n in enumerate(names)}
    for layer in layers:
        if layer.type == "Input":
            declared = [list(s.dim) for s in layer.params.input_param.shape]
            for i, top in enumerate(layer.tops):
                inputs[top] = declared[min(i, len(declared) - 1)] if declared else []
    return inputs


def _nearest_layer(text: str, line: int) -> str:
    """The name of the last layer opened at or before `line` (1-based) of a prototxt."""
    names = re.findall(r'\bname\s*:\s*"([^"]*)"', "\n".join(text.splitlines()[:line]))
    return f" (in or after layer {names[-1]!r})" if len(names) > 1 else ""


def read_prototxt(path: str | Path) -> CaffeNet:
    """Parse a text-format deploy prototxt; a malformed one raises CaffeError naming the place."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaffeError(f"cannot read prototxt {path.name}: {exc}") from None
    net = _NetParameter()
    try:
        # Fields this schema does not declare (training settings such as `include`, `param`
        # rules or `transform_param`, other layer types' parameters) do not change what the
        # supported layers compute, and are skipped.
        text_format.Parse(text, net, allow_unknown_field=True)
    except text_format.ParseError as exc:
        where = _nearest_layer(text, exc.GetLine() or 0)
        detail = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise CaffeError(f"prototxt {path.name} is malformed{where}: {detail}") from None
    layers = _layers(net)
    if not layers:
        raise CaffeError(f"prototxt {path.name} declares no layers")
    return CaffeNet(net.name, _inputs(net, layers), layers)


def blob_array(blob: Any) -> tuple[np.ndarray, list[int]]:
    """A BlobProto's values (float32, flat) and its declared shape (shape.dim or legacy NCHW)."""
    if blob.double_data:
        values = np.frombuffer(b"".join(blob.double_data), dtype="<f8").astype(np.float32)
    else:
        raw = b"".join(blob.data)
        if len(raw) % 4:
            raise ValueError(f"{len(raw)} bytes of float data is not a whole number of floats")
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=False)
    if blob.HasField("shape"):
        shape = list(blob.shape.dim)
    else:
        shape = [blob.num, blob.channels, blob.height, blob.width]
    return values, shape


def read_caffemodel(path: str | Path) -> dict[str, list[tuple[np.ndarray, list[int]]]]:
    """The weights of a binary caffemodel: layer name -> [(flat float32 values, shape)]."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaffeError(f"cannot read caffemodel {path.name}: {exc}") from None
    try:
        net = _NetParameter.FromString(data)
    except DecodeError as exc:
        layer = _cut_layer(data)
        where = f" (it ends inside layer {layer!r})" if layer else f" ({exc})"
        raise CaffeError(f"caffemodel {path.name} is truncated or not a Caffe model"
                         f"{where}") from None
    weights = {}
    for layer in _layers(net):
        try:
            weights[layer.name] = [blob_array(b) for b in layer.params.blobs]
        except ValueError as exc:
            raise CaffeError(f"caffemodel {path.name}, layer {layer.name!r}: {exc}") from None
    if not weights:
        raise CaffeError(f"caffemodel {path.name} holds no layers (truncated or not a Caffe "
                         "model)")
    return weights


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A protobuf varint at `pos`: (value, position after it); IndexError past the end."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes):
    """(field number, wire type, start, end) of each field of a protobuf message in `data`;
    `end` may lie past the data's end when the data is cut short. Stops at what is no field."""
    pos = 0
    sizes = {1: 8, 5: 4}
    while pos < len(data):
        try:
            key, pos = _varint(data, pos)
            number, wire = key >> 3, key & 7
            if wire == 0:
                start, (_, end) = pos, _varint(data, pos)
            elif wire == 2:
                length, start = _varint(data, pos)
                end = start + length
            elif wire in sizes:
                start, end = pos, pos + sizes[wire]
            else:
                return
        except IndexError:
            return
        yield number, wire, start, end
        pos = end


def _cut_layer(data: bytes) -> str | None:
    """The name of the layer a cut-short caffemodel ends in (None when that is not the case)."""
    for number, wire, start, end in _fields(data):
        if number in (100, 2) and wire == 2 and end > len(data):
            name_field = 1 if number == 100 else 4
            for n, w, s, e in _fields(data[start:]):
                if n == name_field and w == 2 and e <= len(data) - start:
                    return data[start + s:start + e].decode("utf-8", "replace")
            return None
    return None


def write_caffemodel(path: str | Path, net: CaffeNet,
                     weights: Mapping[str, Sequence[np.ndarray]], legacy: bool = False) -> None:
    """Write a binary caffemodel holding `weights` for the net's layers (packed float data):
    today's `layer` field with shaped blobs, or with `legacy` the V1 `layers` field with 4-D
    num/channels/height/width blobs. For tests and speed measurements with made-up weights."""
    from ..files import atomic_path

    message = _NetParameter(name=net.name)
    v1_types = {name: v1 for v1, name in _V1_NAMES.items()}
    for layer in net.layers:
        ends = {"name": layer.name, "bottom": layer.bottoms, "top": layer.tops}
        if legacy:
            if layer.type not in v1_types:
                raise CaffeError(f"layer {layer.name!r}: type {layer.type!r} has no V1 form")
            out = message.layers.add(type=V1_TYPES[v1_types[layer.type]], **ends)
        else:
            out = message.layer.add(type=layer.type, **ends)
        for array in weights.get(layer.name, ()):
            blob = out.blobs.add()
            if legacy:
                dims = [1] * (4 - array.ndim) + [int(d) for d in array.shape]
                blob.num, blob.channels, blob.height, blob.width = dims
            else:
                blob.shape.dim.extend(int(d) for d in array.shape)
            blob.data.append(np.ascontiguousarray(array, dtype="<f4").tobytes())
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(message.SerializeToString())
