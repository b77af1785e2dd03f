"""Multi-scale and flip test-time augmentation: views of one image, their maps fused on one grid.

One image becomes one or more *views* (preprocess.View): the image resized (a scale), optionally
mirrored, padded for the network. Each view's stride-8 maps are resampled onto one *canvas* (the
upsampled map grid of the scale-1 view) and averaged, as in OpenPose. A mirrored view's maps are
mirrored back, their left/right heatmap channels swapped, and the PAFs of left/right limbs
swapped with their x component negated.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from .defaults import STRIDE
from .errors import InputError
from .jit import jit
from .preprocess import Ceiling, View, content_size
from .skeleton import FLIP_PARTS, LIMB_PAF_CHANNELS, LIMBS, OPENPOSE_18, Skeleton


def scale_views(
    image_size: tuple[int, int], resize: str, size: tuple[int, int] | int | None,
    scales: tuple[float, ...], flip: bool, ceiling: Ceiling | None = None,
) -> tuple[View, list[View]]:
    """The base (scale 1) view and the views to run, each scale plain then mirrored."""
    base = View(image_size, content_size(image_size, resize, size, 1.0, ceiling))
    views = []
    for s in scales:
        if not (math.isfinite(s) and s > 0):
            raise InputError(f"scales must be positive numbers, got {s!r}")
        cs = content_size(image_size, resize, size, s, ceiling)
        views.append(View(image_size, cs))
        if flip:
            views.append(View(image_size, cs, flip=True))
    return base, views


# --------------------------------------------------------------------------------------------
# Mirroring maps back
# --------------------------------------------------------------------------------------------


def flip_permutations(
    flip_parts: Sequence[int], limbs: Sequence[tuple[int, int]],
    limb_paf_channels: Sequence[tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a skeleton: the channel of the mirrored maps holding each heatmap channel (parts
    + background), each PAF channel, and the sign of each PAF channel (x negated)."""
    num_pafs = 2 * len(limb_paf_channels)
    heat = np.array([*flip_parts, len(flip_parts)], dtype=np.int64)  # background stays
    paf = np.arange(num_pafs)
    sign = np.ones(num_pafs, np.float32)
    for (a, b), (cx, cy) in zip(limbs, limb_paf_channels, strict=True):
        mirror = list(limbs).index((flip_parts[a], flip_parts[b]))
        mx, my = limb_paf_channels[mirror]
        paf[cx], paf[cy] = mx, my
        sign[cx] = -1.0
    return heat, paf, sign


#: Channel of the mirrored maps that holds each heatmap / PAF channel, and the PAF signs
#: (OpenPose-18).
FLIP_HEATMAP_CHANNELS, FLIP_PAF_CHANNELS, FLIP_PAF_SIGNS = flip_permutations(
    FLIP_PARTS, LIMBS, LIMB_PAF_CHANNELS)


@functools.cache
def skeleton_flips(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """flip_permutations of a skeleton (its flip partners, limbs and PAF channels), kept."""
    return flip_permutations(skeleton.flip, skeleton.limbs, skeleton.limb_pafs)


def unflip_channels(
    heatmaps: np.ndarray, pafs: np.ndarray, skeleton: Skeleton = OPENPOSE_18
) -> tuple[np.ndarray, np.ndarray]:
    """Maps of a mirrored image, already mirrored back spatially: swap left/right channels."""
    heat, paf, sign = skeleton_flips(skeleton)
    return heatmaps[heat], pafs[paf] * sign[:, None, None]


def flip_maps(
    heatmaps: np.ndarray, pafs: np.ndarray, skeleton: Skeleton = OPENPOSE_18
) -> tuple[np.ndarray, np.ndarray]:
    """The maps of the mirrored image from those of the image (same-size, unpadded maps)."""
    return unflip_channels(heatmaps[:, :, ::-1], pafs[:, :, ::-1], skeleton)


# --------------------------------------------------------------------------------------------
# Resampling onto the canvas
# --------------------------------------------------------------------------------------------


def _cubic(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """OpenCV's cubic convolution kernel (a = -0.75)."""
    t = np.abs(t)
    near = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    far = ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
    return np.where(t <= 1.0, near, np.where(t < 2.0, far, 0.0))


def cubic_taps(positions: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Cubic sampling of a 1-D signal of n_in pixels at fractional pixel positions.

    Returns (n, 4) source indices and (n, 4) float32 weights: OpenCV's INTER_CUBIC (edge
    pixels replicated), so that positions (o + 0.5) / r - 0.5 reproduce cv2.resize by r.
    """
    # Rounding to 1e-6 px snaps near-integer positions (float error of the geometry) to
    # integers: else weights of ~1e-30 appear, whose products are slow denormal floats.
    positions = np.round(np.asarray(positions, dtype=np.float64), 6)
    base = np.floor(positions)
    frac = (positions - base)[:, None] - np.arange(-1, 3)[None, :]
    idx = np.clip(base.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)
    weights = _cubic(frac)
    weights[np.abs(weights) < 1e-9] = 0.0
    return idx, weights.astype(np.float32)


def cubic_matrix(positions: np.ndarray, n_in: int) -> np.ndarray:
    """The (len(positions), n_in) matrix of cubic_taps."""
    idx, weights = cubic_taps(positions, n_in)
    mat = np.zeros((len(idx), n_in), np.float32)
    np.add.at(mat, (np.repeat(np.arange(len(idx)), 4), idx.ravel()), weights.ravel())
    return mat


@jit
def resample_taps(maps, yi, yw, xi, xw):  # noqa: ANN001, ANN202
    """out[c, o, q] = sum_k yw[o, k] sum_j xw[q, j] maps[c, yi[o, k], xi[q, j]] (separable)."""
    n_c, h = maps.shape[0], maps.shape[1]
    out_h, out_w = yi.shape[0], xi.shape[0]
    rows = np.empty((h, out_w), np.float32)
    out = np.zeros((n_c, out_h, out_w), np.float32)
    for c in range(n_c):
        for i in range(h):
            for q in range(out_w):
                acc = np.float32(0.0)
                for k in range(4):
                    acc += xw[q, k] * maps[c, i, xi[q, k]]
                rows[i, q] = acc
        for o in range(out_h):
            dst = out[c, o]
            for k in range(4):
                weight = yw[o, k]
                src = rows[yi[o, k]]
                for q in range(out_w):
                    dst[q] += weight * src[q]
    return out


def canvas_size(base: View, upsample: float, stride: int = STRIDE) -> tuple[int, int]:
    """(w, h) of the canvas: the base view's stride-8 maps upsampled as the decoder would."""
    pw, ph = base.input_size
    return max(int(pw // stride * upsample), 1), max(int(ph // stride * upsample), 1)


def _axis_positions(n_out: int, base: View, view: View, axis: int, map_len: int) -> np.ndarray:
    """Map pixel position of `view` under each of the n_out canvas pixels along one axis."""
    # canvas pixel -> base input (continuous) -> image -> this view's input -> its map pixel
    base_pos = (np.arange(n_out) + 0.5) * (base.input_size[axis] / n_out)
    pos = base_pos * (view.content_size[axis] / base.content_size[axis])
    if axis == 0 and view.flip:
        pos = view.content_size[0] - pos
    return pos * (map_len / view.input_size[axis]) - 0.5


def resample(
    maps: np.ndarray, view: View, base: View, canvas: tuple[int, int]
) -> np.ndarray:
    """(C, h, w) maps of a view -> (C, H, W) on the canvas (w, h) of the base view (cubic).

    Mirrored views are mirrored back spatially here; their channels are not swapped.
    """
    cw, ch = canvas
    yi, yw = cubic_taps(_axis_positions(ch, base, view, 1, maps.shape[1]), maps.shape[1])
    xi, xw = cubic_taps(_axis_positions(cw, base, view, 0, maps.shape[2]), maps.shape[2])
    return resample_taps(np.ascontiguousarray(maps, dtype=np.float32), yi, yw, xi, xw)


def fuse(
    maps: list[np.ndarray], views: list[View], base: View, canvas: tuple[int, int],
    skeleton: Skeleton = OPENPOSE_18,
) -> tuple[np.ndarray, np.ndarray]:
    """Average the maps (heatmaps then PAFs: (57, h, w) for OpenPose-18) of several views on
    the canvas: heatmaps (19, H, W) and PAFs (38, H, W)."""
    if not maps or len(maps) != len(views):
        raise ValueError("fuse needs one map array per view")
    n_heat = skeleton.num_heatmaps
    heat_sum = np.zeros((n_heat, canvas[1], canvas[0]), np.float32)
    paf_sum = np.zeros((skeleton.num_pafs, canvas[1], canvas[0]), np.float32)
    for m, view in zip(maps, views, strict=True):
        on_canvas = resample(m, view, base, canvas)
        heat, paf = on_canvas[:n_heat], on_canvas[n_heat:]
        if view.flip:
            heat, paf = unflip_channels(heat, paf, skeleton)
        heat_sum += heat
        paf_sum += paf
    n = np.float32(len(maps))
    return heat_sum / n, paf_sum / n

