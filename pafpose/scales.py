"""Network inputs made from an image, and their maps brought back onto one grid.

One image becomes one or more *views*: the image resized (a scale), optionally mirrored, placed
at the top-left of an input padded to a multiple of 16. Each view's stride-8 maps are resampled
onto one *canvas* (the upsampled map grid of the scale-1 view) and averaged: multi-scale and
flip test-time augmentation as in OpenPose. A mirrored view's maps are mirrored back, their
left/right heatmap channels swapped, and the PAFs of left/right limbs swapped with their x
component negated.

Coordinates: the network's map pixel i covers input pixels [8i, 8i + 8), so its centre is
input position 8 (i + 0.5) in continuous coordinates (pixel k spans [k, k + 1)); OpenCV's
resize (and the decoder's cubic/linear upsampling) keeps that half-pixel convention. Keypoints
are reported as pixel indices (COCO's convention): continuous position - 0.5. The seed instead
multiplies map pixels by image size / map size ("seed" convention), which is ~1 px off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import ImageTooLargeError
from .jit import jit
from .skeleton import FLIP_PARTS, LIMB_PAF_CHANNELS, LIMBS, NUM_HEATMAPS, NUM_PAFS

#: Network inputs are padded to a multiple of this (total stride 8; 16 keeps every internal
#: resize of the network exact).
PAD_MULTIPLE = 16
#: Network inputs are padded to at least this width and height: on a narrower input every map
#: cell touches the network's zero padding, and even a blank image shows ~16 "people".
MIN_INPUT_SIDE = 64
#: Default ceiling of the network input: its area (w x h) and its longest side. It holds the
#: `accurate` preset's largest view (height 736) of photos up to ~3.4:1; a larger input is
#: letterboxed: the image shrunk to fit, aspect kept, the rest padded.
DEFAULT_MAX_INPUT_PIXELS = 2_000_000
DEFAULT_MAX_INPUT_SIDE = 2560
#: An image is never enlarged more than this for the network (a 3x40 image is not blown up to
#: 28x368).
MAX_UPSCALE = 4.0
#: How an image is resized to the network: "stretch" to a given (w, h) ignoring the aspect
#: (the seed), "height" to a given height keeping the aspect (OpenPose), "native" kept as is.
RESIZE_MODES: tuple[str, ...] = ("stretch", "height", "native")
#: Input interpolation: "cubic" always (the seed), or "auto": area when shrinking (as the
#: training pipeline resized its images), cubic when enlarging.
INTERPOLATIONS: tuple[str, ...] = ("cubic", "auto")
#: Map pixel -> image pixel: "seed" (x * image_w / map_w) or "center" (half-pixel exact).
COORDS: tuple[str, ...] = ("seed", "center")


def _ceil_to(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class View:
    """Where one network input comes from: the image resized to content_size, maybe mirrored."""

    image_size: tuple[int, int]  # (w, h) of the original image
    content_size: tuple[int, int]  # (w, h) of the resized image inside the padded input
    flip: bool = False

    @property
    def input_size(self) -> tuple[int, int]:
        """(w, h) of the padded network input."""
        return padded_size(self.content_size)


def padded_size(size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) of the network input holding content of `size`: a multiple of 16, >= 64."""
    return tuple(max(_ceil_to(max(c, 1), PAD_MULTIPLE), MIN_INPUT_SIDE)  # type: ignore[return-value]
                 for c in size)


@dataclass(frozen=True)
class Ceiling:
    """Bounds of the network input: area, longest side, and enlargement of the image."""

    max_pixels: int = DEFAULT_MAX_INPUT_PIXELS
    max_side: int = DEFAULT_MAX_INPUT_SIDE
    max_upscale: float = MAX_UPSCALE

    def __post_init__(self) -> None:
        """Validate the bounds."""
        if self.max_side < MIN_INPUT_SIDE or self.max_pixels < MIN_INPUT_SIDE ** 2:
            raise ValueError(f"the network input ceiling must be at least {MIN_INPUT_SIDE} px a "
                             f"side and {MIN_INPUT_SIDE ** 2} px, got max side {self.max_side} "
                             f"and max pixels {self.max_pixels}")
        if not (math.isfinite(self.max_upscale) and self.max_upscale >= 1):
            raise ValueError(f"max_upscale must be >= 1, got {self.max_upscale!r}")

    def check(self, size: tuple[int, int]) -> None:
        """Raise ImageTooLargeError when an explicit network size (w, h) is above the ceiling."""
        w, h = padded_size(size)
        if w * h > self.max_pixels or max(w, h) > self.max_side:
            raise ImageTooLargeError(
                f"network input {size[0]}x{size[1]} is above the ceiling of {self.max_side} px "
                f"a side and {self.max_pixels} px (--max-input-side, --max-input-pixels)")

    def fit(self, image_size: tuple[int, int], size: tuple[float, float]) -> tuple[int, int]:
        """Content size (w, h) for a wanted resize of the image, shrunk (aspect kept) to fit."""
        w, h = image_size
        tw, th = size
        f = min(1.0, self.max_upscale * w / tw, self.max_upscale * h / th)  # not blown up
        f = min(f, self.max_side / max(tw, th))  # longest side
        for _ in range(4):  # the padded area fits (padding to 16 / 64 may add a little)
            pw, ph = padded_size((max(1, round(tw * f)), max(1, round(th * f))))
            if pw * ph <= self.max_pixels:
                break
            f *= min(0.99, math.sqrt(self.max_pixels / (pw * ph)))
        return max(1, round(tw * f)), max(1, round(th * f))


@dataclass(frozen=True)
class Prepared:
    """A network input and how it maps back to the image."""

    tensor: np.ndarray  # (1, Hp, Wp, 3) float32, raw BGR 0..255
    content_size: tuple[int, int]  # (w, h) of the resized image inside the padded input
    image_size: tuple[int, int]  # (w, h) of the original image
    flip: bool = False  # the content is the mirrored image

    @property
    def view(self) -> View:
        """The geometry of this input."""
        return View(self.image_size, self.content_size, self.flip)


def content_size(
    image_size: tuple[int, int], resize: str, size: tuple[int, int] | int | None,
    scale: float = 1.0, ceiling: Ceiling | None = None,
) -> tuple[int, int]:
    """(w, h) the image is resized to for a resize mode, its size parameter and a scale.

    With a ceiling, "height" and "native" sizes are shrunk to fit it (aspect kept); a
    "stretch" size is the caller's explicit choice and is checked once, up front.
    """
    w, h = image_size
    if resize == "stretch":
        if not isinstance(size, tuple):
            raise ValueError("resize='stretch' needs a (width, height) size")
        tw, th = size
    elif resize == "height":
        if not isinstance(size, int):
            raise ValueError("resize='height' needs an integer network height")
        th = size
        tw = w * size / h
    elif resize == "native":
        tw, th = w, h
    else:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    if ceiling is not None and resize != "stretch":
        return ceiling.fit(image_size, (tw * scale, th * scale))
    return max(1, round(tw * scale)), max(1, round(th * scale))


def prepare(
    image: np.ndarray, size: tuple[int, int], interpolation: str = "cubic", flip: bool = False
) -> Prepared:
    """Resize a BGR image to size (w, h), mirror it if asked, pad to 16: the network input."""
    h, w = image.shape[:2]
    cw, ch = size
    if (cw, ch) != (w, h):
        if interpolation == "auto" and cw <= w and ch <= h:
            flag = cv2.INTER_AREA
        elif interpolation in INTERPOLATIONS:
            flag = cv2.INTER_CUBIC
        else:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}")
        image = cv2.resize(image, (cw, ch), interpolation=flag)
    if flip:
        image = image[:, ::-1]
    pw, ph = View((w, h), (cw, ch)).input_size
    tensor = np.zeros((1, ph, pw, 3), np.float32)
    tensor[0, :ch, :cw] = image
    return Prepared(tensor, (cw, ch), (w, h), flip)


def to_image_coords(
    keypoints: np.ndarray, map_size: tuple[int, int], view: View, coords: str = "center"
) -> np.ndarray:
    """Map (N, 18, 3) keypoints in map pixels (map_size covers the padded input) to the image.

    With "center" coordinates, parts are kept inside the image (a peak in a map cell that
    straddles the image's edge and the padding would otherwise land a few pixels outside).
    Parts found deeper in the padding than 16 input pixels (the padding of any ordinary photo)
    are dropped: they are not in the image.
    """
    if coords not in COORDS:
        raise ValueError(f"coords must be one of {COORDS}, got {coords!r}")
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    if len(kp) == 0:
        return kp
    found = kp[:, :, 2] > 0
    for axis in (0, 1):
        # map pixel -> padded input pixels -> image pixels
        step = view.input_size[axis] / map_size[axis]
        scale = view.image_size[axis] / view.content_size[axis]
        if coords == "seed":
            pos = kp[:, :, axis] * (step * scale)
        else:
            pos = (kp[:, :, axis] + 0.5) * (step * scale) - 0.5
        found &= pos <= view.image_size[axis] - 0.5 + PAD_MULTIPLE * scale
        if coords != "seed":
            pos = np.clip(pos, 0, view.image_size[axis] - 1)
        kp[:, :, axis] = pos
    kp[~found] = 0
    return kp


# --------------------------------------------------------------------------------------------
# Mirroring maps back
# --------------------------------------------------------------------------------------------


def _flip_permutations() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    heat = np.array([*FLIP_PARTS, NUM_HEATMAPS - 1], dtype=np.int64)  # background stays
    paf = np.arange(NUM_PAFS)
    sign = np.ones(NUM_PAFS, np.float32)
    for (a, b), (cx, cy) in zip(LIMBS, LIMB_PAF_CHANNELS, strict=True):
        mirror = LIMBS.index((FLIP_PARTS[a], FLIP_PARTS[b]))
        mx, my = LIMB_PAF_CHANNELS[mirror]
        paf[cx], paf[cy] = mx, my
        sign[cx] = -1.0
    return heat, paf, sign


#: Channel of the mirrored maps that holds each heatmap / PAF channel, and the PAF signs.
FLIP_HEATMAP_CHANNELS, FLIP_PAF_CHANNELS, FLIP_PAF_SIGNS = _flip_permutations()


def unflip_channels(heatmaps: np.ndarray, pafs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maps of a mirrored image, already mirrored back spatially: swap left/right channels."""
    return (heatmaps[FLIP_HEATMAP_CHANNELS],
            pafs[FLIP_PAF_CHANNELS] * FLIP_PAF_SIGNS[:, None, None])


def flip_maps(heatmaps: np.ndarray, pafs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The maps of the mirrored image from those of the image (same-size, unpadded maps)."""
    return unflip_channels(heatmaps[:, :, ::-1], pafs[:, :, ::-1])


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
def _resample_taps(maps, yi, yw, xi, xw):  # noqa: ANN001, ANN202
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


def canvas_size(base: View, upsample: float, stride: int = 8) -> tuple[int, int]:
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
    return _resample_taps(np.ascontiguousarray(maps, dtype=np.float32), yi, yw, xi, xw)


def fuse(
    maps: list[np.ndarray], views: list[View], base: View, canvas: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Average the (57, h, w) maps of several views on the canvas: (19, H, W), (38, H, W)."""
    if not maps or len(maps) != len(views):
        raise ValueError("fuse needs one map array per view")
    heat_sum = np.zeros((NUM_HEATMAPS, canvas[1], canvas[0]), np.float32)
    paf_sum = np.zeros((NUM_PAFS, canvas[1], canvas[0]), np.float32)
    for m, view in zip(maps, views, strict=True):
        on_canvas = resample(m, view, base, canvas)
        heat, paf = on_canvas[:NUM_HEATMAPS], on_canvas[NUM_HEATMAPS:]
        if view.flip:
            heat, paf = unflip_channels(heat, paf)
        heat_sum += heat
        paf_sum += paf
    n = np.float32(len(maps))
    return heat_sum / n, paf_sum / n


def scale_views(
    image_size: tuple[int, int], resize: str, size: tuple[int, int] | int | None,
    scales: tuple[float, ...], flip: bool, ceiling: Ceiling | None = None,
) -> tuple[View, list[View]]:
    """The base (scale 1) view and the views to run, each scale plain then mirrored."""
    base = View(image_size, content_size(image_size, resize, size, 1.0, ceiling))
    views = []
    for s in scales:
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"scales must be positive numbers, got {s!r}")
        cs = content_size(image_size, resize, size, s, ceiling)
        views.append(View(image_size, cs))
        if flip:
            views.append(View(image_size, cs, flip=True))
    return base, views
