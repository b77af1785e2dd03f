"""Network inputs made from an image, and keypoints mapped back from the maps to the image.

An image is resized for the network (a resize mode and size, within a ceiling on the input),
optionally mirrored, and placed at the top-left of an input padded to a multiple of 16: a
*view* of the image. multiscale.py runs several views and fuses their maps.

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

from .errors import ImageTooLargeError, InputError
from .layout import normalize_input

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
            raise InputError(f"the network input ceiling must be at least {MIN_INPUT_SIDE} px a "
                             f"side and {MIN_INPUT_SIDE ** 2} px, got max side {self.max_side} "
                             f"and max pixels {self.max_pixels}")
        if not (math.isfinite(self.max_upscale) and self.max_upscale >= 1):
            raise InputError(f"max_upscale must be >= 1, got {self.max_upscale!r}")

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

    tensor: np.ndarray  # (1, Hp, Wp, 3) float32 BGR in the model's input convention
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
            raise InputError("resize='stretch' needs a (width, height) size")
        tw, th = size
    elif resize == "height":
        if not isinstance(size, int):
            raise InputError("resize='height' needs an integer network height")
        th = size
        tw = w * size / h
    elif resize == "native":
        tw, th = w, h
    else:
        raise InputError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    if ceiling is not None and resize != "stretch":
        return ceiling.fit(image_size, (tw * scale, th * scale))
    return max(1, round(tw * scale)), max(1, round(th * scale))


def prepare(
    image: np.ndarray, size: tuple[int, int], interpolation: str = "cubic", flip: bool = False,
    convention: str = "bgr255",
) -> Prepared:
    """Resize a BGR image to size (w, h), mirror it if asked, pad to 16 (black), convert to the
    model's input convention (layout.INPUTS; the padding too): the network input."""
    h, w = image.shape[:2]
    cw, ch = size
    if (cw, ch) != (w, h):
        if interpolation == "auto" and cw <= w and ch <= h:
            flag = cv2.INTER_AREA
        elif interpolation in INTERPOLATIONS:
            flag = cv2.INTER_CUBIC
        else:
            raise InputError(f"interpolation must be one of {INTERPOLATIONS}")
        image = cv2.resize(image, (cw, ch), interpolation=flag)
    if flip:
        image = image[:, ::-1]
    pw, ph = View((w, h), (cw, ch)).input_size
    tensor = np.zeros((1, ph, pw, 3), np.float32)
    tensor[0, :ch, :cw] = image
    return Prepared(normalize_input(tensor, convention), (cw, ch), (w, h), flip)


def preprocess(image: np.ndarray, target_size: tuple[int, int] | None) -> Prepared:
    """Resize (cubic, ignoring aspect, as the seed) to target_size or keep the size; pad to 16."""
    size = tuple(target_size) if target_size is not None else (image.shape[1], image.shape[0])
    return prepare(image, size, "cubic")


def to_image_coords(
    keypoints: np.ndarray, map_size: tuple[int, int], view: View, coords: str = "center"
) -> np.ndarray:
    """Map (N, parts, 3) keypoints in map pixels (map_size covers the padded input) to the image.

    With "center" coordinates, parts are kept inside the image (a peak in a map cell that
    straddles the image's edge and the padding would otherwise land a few pixels outside).
    Parts found deeper in the padding than 16 input pixels (the padding of any ordinary photo)
    are dropped: they are not in the image.
    """
    if coords not in COORDS:
        raise InputError(f"coords must be one of {COORDS}, got {coords!r}")
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
