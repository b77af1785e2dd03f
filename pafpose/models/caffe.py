"""Convert a Caffe deploy net (prototxt + caffemodel) to ONNX in pure Python, without Caffe.

Layers: Convolution (any kernel, stride, pad, dilation, group, with or without bias), ReLU
(leaky when negative_slope is set), PReLU (one slope per channel, or one shared), Pooling MAX
(Caffe rounds the output size up: ONNX MaxPool with ceil_mode; FLOOR rounding as well), Concat,
and the pass-through Dropout / Split. That covers OpenPose's BODY_25, COCO and MPI nets.

The ONNX model has one NCHW float32 input `image` [1, 3, height, width] (height and width
dynamic) and one output `net_output`: the net's last blob, heatmaps (background included) then
PAFs. Its metadata_props declare the layout pafpose reads (`pafpose.skeleton` from the output's
channel count, `pafpose.input` = OpenPose's x/256 - 0.5, done outside the graph,
`pafpose.output`, `pafpose.stride`). A problem is one CaffeError (a ModelError) naming the layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from .caffeproto import CaffeError, CaffeNet, Layer, read_caffemodel, read_prototxt
from .onnxbuild import GraphBuilder

__all__ = ["CONVERTER_VERSION", "INPUT_CONVENTION", "SKELETON_BY_CHANNELS", "CaffeError",
           "convert_caffe", "layout_metadata", "random_weights", "weight_shapes"]

#: Bump when the converter's output changes, so cached conversions are rebuilt.
CONVERTER_VERSION = "caffe-1"
#: OpenPose's Caffe models read BGR as x / 256 - 0.5 (the interface's name for it).
INPUT_CONVENTION = "bgr/256-0.5"
#: Output channels (heatmaps incl. background + PAFs) -> the skeleton of OpenPose's models.
SKELETON_BY_CHANNELS = {78: "body25", 57: "openpose18", 44: "mpi15"}
INPUT_NAME, OUTPUT_NAME = "image", "net_output"
#: Layer types that hand their input through unchanged at inference.
_PASS_THROUGH = {"Dropout", "Split"}

Blob = tuple[str, int, int]  # ONNX tensor name, channels, stride from the input


def _pair(param: Any, many: str, h: str | None, w: str | None,
          default: int) -> tuple[int, int]:
    """(h, w) of a Caffe kernel/stride/pad/dilation: the *_h/*_w fields, else the repeated or
    single field, else `default`."""
    if h and w and (param.HasField(h) or param.HasField(w)):
        return int(getattr(param, h)), int(getattr(param, w))
    values = getattr(param, many)
    if isinstance(values, int):  # Pooling declares these as one optional value
        return (values, values) if param.HasField(many) else (default, default)
    values = list(values)
    if not values:
        return default, default
    return (int(values[0]), int(values[-1])) if len(values) <= 2 else (-1, -1)


def _strip(shape: Sequence[int]) -> list[int]:
    """A shape without its leading 1s (Caffe's legacy blobs are padded to 4-D with them)."""
    dims = [int(d) for d in shape]
    while dims and dims[0] == 1:
        dims = dims[1:]
    return dims


def _concat_axis(layer: Layer) -> int:
    p = layer.params.concat_param
    axis = int(p.axis) if p.HasField("axis") or not p.HasField("concat_dim") else int(
        p.concat_dim)
    return axis + 4 if axis < 0 else axis


class _Converter(GraphBuilder):
    """Walks a Caffe net layer by layer and emits the ONNX nodes."""

    def __init__(self, net: CaffeNet, weights: dict[str, list[tuple[np.ndarray, list[int]]]],
                 source: str) -> None:
        super().__init__()
        self.net, self.weights, self.source = net, weights, source
        self.blobs: dict[str, Blob] = {}
        self.names.update({INPUT_NAME, OUTPUT_NAME})

    def error(self, layer: Layer, what: str) -> CaffeError:
        """The one-line error of a layer."""
        return CaffeError(f"{self.source}: layer {layer.name!r} ({layer.type}): {what}")

    def blob(self, layer: Layer, i: int, expected: tuple[int, ...], what: str) -> np.ndarray:
        """Blob `i` of a layer from the caffemodel, checked against the shape the net implies."""
        blobs = self.weights.get(layer.name)
        if not blobs:
            raise self.error(layer, "the caffemodel holds no weights for it (another net's "
                             "weights, or a truncated file)")
        if i >= len(blobs):
            raise self.error(layer, f"the caffemodel holds {len(blobs)} blob(s), the prototxt "
                             f"needs {what} too")
        values, declared = blobs[i]
        size = int(np.prod(expected))
        shape_ok = not any(declared) or _strip(declared) == _strip(expected)
        if values.size != size or not shape_ok:
            shown = declared if any(declared) else f"{values.size} values"
            raise self.error(layer, f"{what} blob has shape {list(shown)}, the prototxt "
                             f"implies {list(expected)}")
        return values.reshape(expected)

    def bottoms(self, layer: Layer) -> list[Blob]:
        missing = [b for b in layer.bottoms if b not in self.blobs]
        if missing:
            raise self.error(layer, f"reads blob {missing[0]!r}, which no earlier layer makes")
        if not layer.bottoms:
            raise self.error(layer, "has no input (bottom)")
        return [self.blobs[b] for b in layer.bottoms]

    def walk(self) -> str:
        """Convert every layer; return the name of the net's one output blob."""
        inputs = dict(self.net.inputs)
        if len(inputs) != 1:
            raise CaffeError(f"{self.source}: the net has {len(inputs)} inputs "
                             f"({', '.join(inputs) or 'none declared'}); pafpose needs one image")
        (name, dims), = inputs.items()
        if len(dims) >= 2 and dims[1] != 3:
            raise CaffeError(f"{self.source}: input {name!r} has {dims[1]} channels, not 3 (BGR)")
        self.blobs[name] = (INPUT_NAME, 3, 1)
        last_read: dict[str, int] = {}
        for index, layer in enumerate(self.net.layers):
            if layer.type == "Input":
                continue
            for b in layer.bottoms:
                last_read[b] = index
            self.layer(layer)
        produced = {t: i for i, layer in enumerate(self.net.layers) for t in layer.tops}
        dangling = [t for t, i in produced.items() if last_read.get(t, -1) < i
                    and t not in self.net.inputs]
        if len(dangling) != 1:
            raise CaffeError(f"{self.source}: the net has {len(dangling)} outputs "
                             f"({', '.join(dangling)}); pafpose needs one (heatmaps then PAFs)")
        return dangling[0]

    def convert(self) -> onnx.ModelProto:
        """The ONNX model of the whole net."""
        output = self.walk()
        out, channels, stride = self.blobs[output]
        skeleton = SKELETON_BY_CHANNELS.get(channels)
        if skeleton is None:
            known = ", ".join(f"{c} ({s})" for c, s in SKELETON_BY_CHANNELS.items())
            raise CaffeError(f"{self.source}: output blob {output!r} has {channels} "
                             f"channels; pafpose knows OpenPose's layouts of {known}")
        self.items.append(helper.make_node("Identity", [out], [OUTPUT_NAME], name="output"))
        image = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                              [1, 3, "height", "width"])
        model = self.make_model(self.items, [image], [OUTPUT_NAME], "pafpose_caffe",
                                "pafpose.models.caffe", ("N", "channels", "height", "width"))
        for key, value in layout_metadata(skeleton, stride).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        return model

    def layer(self, layer: Layer) -> None:
        """Convert one layer and register its tops."""
        handler = _HANDLERS.get(layer.type)
        if handler is None and layer.type not in _PASS_THROUGH:
            supported = ", ".join(sorted([*_HANDLERS, *_PASS_THROUGH]))
            raise self.error(layer, f"unsupported Caffe layer type (supported: {supported})")
        ins = self.bottoms(layer)
        if len(ins) != 1 and layer.type != "Concat":
            raise self.error(layer, f"has {len(ins)} inputs (bottoms); pafpose converts this "
                             "layer type with one")
        result = ins[0] if handler is None else handler(self, layer, ins)
        for top in layer.tops:
            self.blobs[top] = result

    def convolution(self, layer: Layer, ins: list[Blob]) -> Blob:
        p = layer.params.convolution_param
        (x, channels, stride), = ins
        kernel = _pair(p, "kernel_size", "kernel_h", "kernel_w", 0)
        strides = _pair(p, "stride", "stride_h", "stride_w", 1)
        pads = _pair(p, "pad", "pad_h", "pad_w", 0)
        dilations = _pair(p, "dilation", None, None, 1)
        group = int(p.group)
        out = int(p.num_output)
        if min(*kernel, *strides, *dilations) < 1 or min(pads) < 0 or out < 1 or group < 1 \
                or channels % group or out % group:
            raise self.error(layer, f"unsupported convolution (kernel {kernel}, stride "
                             f"{strides}, pad {pads}, dilation {dilations}, group {group}, "
                             f"{channels} -> {out} channels)")
        w = self.blob(layer, 0, (out, channels // group, *kernel), "weights")
        names = [x, self.const(w, layer.name + "/W")]
        if p.bias_term:
            names.append(self.const(self.blob(layer, 1, (out,), "bias"), layer.name + "/B"))
        y = self.emit("Conv", names, layer.name, kernel_shape=list(kernel),
                      strides=list(strides), pads=[*pads, *pads], dilations=list(dilations),
                      group=group)
        return y, out, stride * strides[0]

    def relu(self, layer: Layer, ins: list[Blob]) -> Blob:
        (x, channels, stride), = ins
        slope = float(layer.params.relu_param.negative_slope)
        if slope:
            return self.emit("LeakyRelu", [x], layer.name, alpha=slope), channels, stride
        return self.emit("Relu", [x], layer.name), channels, stride

    def prelu(self, layer: Layer, ins: list[Blob]) -> Blob:
        (x, channels, stride), = ins
        shared = layer.params.prelu_param.channel_shared
        slope = self.blob(layer, 0, (1,) if shared else (channels,), "slope")
        slope = slope.reshape((1, 1, 1) if shared else (channels, 1, 1))
        y = self.emit("PRelu", [x, self.const(slope, layer.name + "/slope")], layer.name)
        return y, channels, stride

    def pooling(self, layer: Layer, ins: list[Blob]) -> Blob:
        p = layer.params.pooling_param
        (x, channels, stride), = ins
        if p.pool != 0 or p.global_pooling:
            kind = "global pooling" if p.global_pooling else "AVE/STOCHASTIC pooling"
            raise self.error(layer, f"{kind} is not supported (MAX only)")
        kernel = _pair(p, "kernel_size", "kernel_h", "kernel_w", 0)
        strides = _pair(p, "stride", "stride_h", "stride_w", 1)
        pads = _pair(p, "pad", "pad_h", "pad_w", 0)
        if min(*kernel, *strides) < 1 or any(pd >= k for pd, k in zip(pads, kernel, strict=True)):
            raise self.error(layer, f"unsupported pooling (kernel {kernel}, stride {strides}, "
                             f"pad {pads})")
        y = self.emit("MaxPool", [x], layer.name, kernel_shape=list(kernel),
                      strides=list(strides), pads=[*pads, *pads],
                      ceil_mode=int(p.round_mode == 0))  # Caffe's default CEIL
        return y, channels, stride * strides[0]

    def concat(self, layer: Layer, ins: list[Blob]) -> Blob:
        axis = _concat_axis(layer)
        if not 0 < axis < 4:
            raise self.error(layer, f"concatenation along axis {axis} is not supported")
        if len({s for _, _, s in ins}) != 1:
            raise self.error(layer, "concatenates blobs of different strides")
        y = self.emit("Concat", [n for n, _, _ in ins], layer.name, axis=axis)
        channels = sum(c for _, c, _ in ins) if axis == 1 else ins[0][1]
        return y, channels, ins[0][2]


_HANDLERS = {"Convolution": _Converter.convolution, "ReLU": _Converter.relu,
             "PReLU": _Converter.prelu, "Pooling": _Converter.pooling,
             "Concat": _Converter.concat}


class _ShapeWalker(_Converter):
    """Walks a net without weights, recording the blob shapes each layer needs."""

    def __init__(self, net: CaffeNet) -> None:
        super().__init__(net, {}, "prototxt")
        self.shapes: dict[str, list[tuple[int, ...]]] = {}

    def blob(self, layer: Layer, i: int, expected: tuple[int, ...], what: str) -> np.ndarray:
        self.shapes.setdefault(layer.name, []).append(expected)
        return np.zeros(expected, np.float32)

    def const(self, array: np.ndarray, base: str) -> str:
        return self.fresh(base)


def weight_shapes(net: CaffeNet) -> dict[str, list[tuple[int, ...]]]:
    """The blob shapes each layer of a net needs (conv weights OIHW and bias, PReLU slopes)."""
    walker = _ShapeWalker(net)
    walker.walk()
    return walker.shapes


def random_weights(net: CaffeNet, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Made-up weights for a net (He-initialised convolutions, small biases, PReLU slopes near
    0.25), so activations stay in range through a hundred layers: for tests and speed
    measurements, where random weights run as fast as trained ones."""
    rng = np.random.default_rng(seed)
    weights: dict[str, list[np.ndarray]] = {}
    for name, shapes in weight_shapes(net).items():
        arrays = []
        for shape in shapes:
            if len(shape) == 4:
                std = np.sqrt(2.0 / (shape[1] * shape[2] * shape[3]))
                arrays.append(rng.normal(0, std, shape).astype(np.float32))
            elif len(arrays):  # a convolution's bias
                arrays.append(rng.normal(0, 0.05, shape).astype(np.float32))
            else:  # PReLU slopes
                arrays.append(rng.uniform(0.1, 0.4, shape).astype(np.float32))
        weights[name] = arrays
    return weights


def layout_metadata(skeleton: str, stride: int) -> dict[str, str]:
    """The layout keys of a converted OpenPose Caffe model's metadata_props."""
    return {"pafpose.skeleton": skeleton, "pafpose.input": INPUT_CONVENTION,
            "pafpose.output": "heatmaps+pafs", "pafpose.stride": str(stride)}


def convert_caffe(prototxt: str | Path, caffemodel: str | Path) -> onnx.ModelProto:
    """Convert a Caffe deploy prototxt and its caffemodel to an ONNX model (see the module
    docstring); any problem raises CaffeError (a ModelError) naming the file and the layer."""
    net = read_prototxt(prototxt)
    weights = read_caffemodel(caffemodel)
    model = _Converter(net, weights, Path(caffemodel).name).convert()
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid model"
        raise CaffeError(f"{Path(caffemodel).name}: the converted model is invalid: "
                         f"{first}") from None
    return model
