"""What a network's input and outputs mean: its skeleton, input convention, output tensors,
stride and grouping defaults (`NetworkLayout`), read from an ONNX model's metadata.

A converted model declares its layout in ONNX `metadata_props` (string keys and values):

* ``pafpose.skeleton``: ``openpose18`` | ``body25`` | ``mpi15`` (skeleton.SKELETONS);
* ``pafpose.input``: what the network takes from a BGR uint8 image, as float32: ``bgr255``
  (raw BGR 0..255), ``bgr/256-0.5`` (OpenPose's Caffe models) or ``(bgr-128)/256``
  (Lightweight OpenPose); the padding (black) goes through the same conversion;
* ``pafpose.output``: ``heatmaps+pafs`` (one tensor, heatmaps with the background first, then
  the PAFs; NCHW or NHWC) or ``heatmaps,pafs`` (two tensors: heatmaps, then PAFs);
* ``pafpose.stride``: the network's output stride (``8``).

A model without these keys is read as tf-pose-estimation's convention: openpose18, bgr255,
heatmaps+pafs, 8. The grouping defaults follow from the layout (`grouping_defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ModelError
from .skeleton import BODY_25, MPI_15, OPENPOSE_18, SKELETONS, Skeleton

if TYPE_CHECKING:
    import onnx

#: Metadata keys of a model's layout.
SKELETON_KEY, INPUT_KEY, OUTPUT_KEY, STRIDE_KEY = (
    "pafpose.skeleton", "pafpose.input", "pafpose.output", "pafpose.stride")
LAYOUT_KEYS: tuple[str, ...] = (SKELETON_KEY, INPUT_KEY, OUTPUT_KEY, STRIDE_KEY)

#: Input conventions: name -> (scale, offset), the network input being pixel * scale + offset.
INPUTS: dict[str, tuple[float, float]] = {
    "bgr255": (1.0, 0.0),
    "bgr/256-0.5": (1 / 256, -0.5),
    "(bgr-128)/256": (1 / 256, -0.5),
}


def normalize_input(tensor: np.ndarray, convention: str = "bgr255") -> np.ndarray:
    """A float32 tensor of BGR 0..255 converted in place to an input convention (INPUTS)."""
    try:
        scale, offset = INPUTS[convention]
    except KeyError:
        raise ModelError(f"unknown input convention {convention!r}; known: "
                         f"{', '.join(INPUTS)}") from None
    if scale != 1.0:
        tensor *= np.float32(scale)
    if offset != 0.0:
        tensor += np.float32(offset)
    return tensor


#: Output layouts: one blob (heatmaps, then PAFs) or two tensors (heatmaps, PAFs).
OUTPUTS: tuple[str, ...] = ("heatmaps+pafs", "heatmaps,pafs")
#: Output strides the preprocessing supports (inputs are padded to a multiple of 16).
STRIDES: tuple[int, ...] = (1, 2, 4, 8, 16)

#: OpenPose's default grouping (BODY_25 and COCO models), as DecodeParams fields: peak
#: threshold 0.05, PAF samples counted above 0.05, more than 95 % of them (all 10 of our
#: samples), at least 3 parts, a mean score of 0.4 per part.
OPENPOSE_GROUPING: tuple[tuple[str, float], ...] = (
    ("heat_threshold", 0.05), ("paf_threshold", 0.05), ("paf_min_count", 10),
    ("min_parts", 3), ("min_score", 0.4))
#: OpenPose's MPI defaults: a peak threshold of 0.6 and PAF samples counted above 0.01.
OPENPOSE_MPI_GROUPING: tuple[tuple[str, float], ...] = (
    ("heat_threshold", 0.6), ("paf_threshold", 0.01), ("paf_min_count", 10),
    ("min_parts", 3), ("min_score", 0.4))
#: Lightweight OpenPose's own decoder: peaks above 0.1, more than 80 % of the samples (9 of
#: 10) above 0.05, at least 3 parts, a mean score of 0.2.
LIGHTWEIGHT_GROUPING: tuple[tuple[str, float], ...] = (
    ("heat_threshold", 0.1), ("paf_threshold", 0.05), ("paf_min_count", 9),
    ("min_parts", 3), ("min_score", 0.2))


def grouping_defaults(skeleton: Skeleton, input: str) -> tuple[tuple[str, float], ...]:
    """The grouping thresholds (DecodeParams field, value) of a model of this layout: OpenPose's
    for BODY_25, MPI and OpenPose-18 Caffe models, Lightweight OpenPose's for its input
    convention; none (the preset's, i.e. the seed's) for tf-pose-estimation's models."""
    if skeleton == BODY_25:
        return OPENPOSE_GROUPING
    if skeleton == MPI_15:
        return OPENPOSE_MPI_GROUPING
    return {"bgr/256-0.5": OPENPOSE_GROUPING, "(bgr-128)/256": LIGHTWEIGHT_GROUPING}.get(input, ())


@dataclass(frozen=True)
class NetworkLayout:
    """How to feed a pose network and read its outputs (see the module docstring)."""

    skeleton: Skeleton = OPENPOSE_18
    input: str = "bgr255"
    output: str = "heatmaps+pafs"
    stride: int = 8
    #: The model's grouping thresholds (DecodeParams field, value), applied over the preset's.
    grouping: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        """Validate the fields (ModelError, one line)."""
        if self.input not in INPUTS:
            raise ModelError(f"unknown input convention {self.input!r}; known: "
                             f"{', '.join(INPUTS)}")
        if self.output not in OUTPUTS:
            raise ModelError(f"unknown output layout {self.output!r}; known: {', '.join(OUTPUTS)}")
        if self.stride not in STRIDES:
            raise ModelError(f"unsupported stride {self.stride!r}; supported: "
                             f"{', '.join(map(str, STRIDES))}")

    @property
    def output_channels(self) -> tuple[int, ...]:
        """Channels of each output tensor the network must have."""
        s = self.skeleton
        if self.output == "heatmaps,pafs":
            return (s.num_heatmaps, s.num_pafs)
        return (s.num_heatmaps + s.num_pafs,)

    def describe_outputs(self) -> str:
        """What the outputs must hold, for messages ('78 channels (26 heatmaps + 52 PAFs)')."""
        s = self.skeleton
        if self.output == "heatmaps,pafs":
            return f"two outputs of {s.num_heatmaps} heatmaps and {s.num_pafs} PAFs"
        return (f"{s.num_heatmaps + s.num_pafs} channels ({s.num_heatmaps} heatmaps + "
                f"{s.num_pafs} PAFs)")

    def normalize(self, tensor: np.ndarray) -> np.ndarray:
        """The network input from a float32 tensor of BGR 0..255 (converted in place)."""
        return normalize_input(tensor, self.input)

    def metadata(self) -> dict[str, str]:
        """The metadata_props entries that declare this layout."""
        return {SKELETON_KEY: self.skeleton.name, INPUT_KEY: self.input,
                OUTPUT_KEY: self.output, STRIDE_KEY: str(self.stride)}


#: tf-pose-estimation's convention: the layout of a model that declares none.
DEFAULT_LAYOUT = NetworkLayout()


def layout_from_metadata(meta: dict[str, str], source: str = "model") -> NetworkLayout:
    """The layout declared by metadata_props entries (absent keys: today's convention);
    ModelError, one line naming `source` and the key, for a value pafpose does not know."""
    values = {**DEFAULT_LAYOUT.metadata(), **{k: meta[k] for k in LAYOUT_KEYS if k in meta}}
    for key, known in ((SKELETON_KEY, tuple(SKELETONS)), (INPUT_KEY, tuple(INPUTS)),
                       (OUTPUT_KEY, OUTPUTS), (STRIDE_KEY, tuple(map(str, STRIDES)))):
        if values[key] not in known:
            raise ModelError(f"{source}: unknown {key} {values[key]!r} (known: "
                             f"{', '.join(known)})")
    skeleton, input_ = SKELETONS[values[SKELETON_KEY]], values[INPUT_KEY]
    return NetworkLayout(skeleton, input_, values[OUTPUT_KEY], int(values[STRIDE_KEY]),
                         grouping_defaults(skeleton, input_))


def layout_of(model: onnx.ModelProto, source: str = "model") -> NetworkLayout:
    """The layout an ONNX model declares in its metadata_props."""
    meta = {p.key: p.value for p in model.metadata_props if p.key in LAYOUT_KEYS}
    return layout_from_metadata(meta, source)


def read_layout(path: str | Path) -> NetworkLayout:
    """The layout of a model file: an ONNX file's declared one; today's convention for other
    files (an OpenVINO IR built from an ONNX file: read that file instead)."""
    import onnx

    p = Path(path)
    if p.suffix.lower() != ".onnx":
        return DEFAULT_LAYOUT
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception:  # a damaged file: the runtime's check names the problem
        return DEFAULT_LAYOUT
    return layout_of(model, f"model file {p}")
