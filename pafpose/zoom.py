"""Adaptive zoom: small people of a first pass run again at a higher scale, their maps fused.

Multi-scale inference gains mostly on small people, and pays for every pixel of every scale.
The zoom spends the larger scale only where it helps: the people of a first pass (the base
view) whose size in network pixels is under a fraction of the network height get a *region*:
their box padded by context (the network's receptive field wants to see around a body),
overlapping regions merged, their number and total network area bounded. Each region is cut
from the image, run at `scale` times the base resolution, and its maps resampled onto the part
of the canvas (the base view's upsampled map grid) it covers. There they are averaged with the
base maps, the weight falling to zero towards the region's inner edges (where the crop cut the
network's context); outside every region the base maps are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .multiscale import cubic_taps, resample_taps, unflip_channels
from .preprocess import View, padded_size
from .skeleton import OPENPOSE_18, Skeleton


@dataclass(frozen=True)
class ZoomParams:
    """When and how far to zoom (see the module docstring; the reasons are in the README)."""

    #: Network scale of a region relative to the base view.
    scale: float = 2.0
    #: A person is small when the longer side of its keypoint box is under this fraction of
    #: the base network height (OpenPose's height: 368 px), i.e. under ~1/3 of its input.
    small: float = 1 / 3
    #: Context around a small person, a fraction of its box's longer side (at least
    #: `min_context` of the network height in base pixels), on every side.
    context: float = 0.5
    min_context: float = 1 / 16
    #: At most this many regions, their network inputs at most `max_area` times the base view's.
    max_regions: int = 4
    max_area: float = 1.5
    #: A region that would not fit the area left is run at a lower scale, down to this one.
    min_scale: float = 1.4
    #: Weight of the zoomed maps inside a region (0.5: the average of the two scales).
    weight: float = 0.5
    #: Also run each region mirrored (its maps averaged with the plain region's).
    flip: bool = False

    def __post_init__(self) -> None:
        """Validate the fields."""
        if not (math.isfinite(self.scale) and self.scale > 1):
            raise ValueError(f"zoom scale must be > 1, got {self.scale!r}")
        if not 1 <= self.min_scale <= self.scale:
            raise ValueError("zoom min_scale must be between 1 and scale")
        if not 0 < self.weight <= 1:
            raise ValueError(f"zoom weight must be in (0, 1], got {self.weight!r}")
        if self.max_regions < 0 or self.max_area < 0 or self.small < 0 or self.context < 0:
            raise ValueError("zoom bounds must be >= 0")


@dataclass(frozen=True)
class ZoomView:
    """One zoomed region: a crop (x0, y0, x1, y1) of the image (pixels, x1/y1 exclusive) run at
    `scale` times the base view's resolution; `feather` image pixels of its inner edges blend
    the zoomed maps in."""

    box: tuple[int, int, int, int]
    scale: float
    content_size: tuple[int, int]
    feather: float
    people: int = 1
    #: Network runs: 1, or 2 with the mirrored region.
    runs: int = 1
    #: Weight of its maps inside the region (ZoomParams.weight).
    weight: float = 0.5

    @property
    def input_size(self) -> tuple[int, int]:
        """(w, h) of the padded network input."""
        return padded_size(self.content_size)

    @property
    def crop_size(self) -> tuple[int, int]:
        """(w, h) of the crop in image pixels."""
        x0, y0, x1, y1 = self.box
        return x1 - x0, y1 - y0


def person_boxes(keypoints: np.ndarray) -> np.ndarray:
    """(N, 4) boxes x0, y0, x1, y1 (image pixels) of the found parts of (N, parts, 3) people."""
    boxes = np.zeros((len(keypoints), 4), np.float64)
    for i, kp in enumerate(keypoints):
        found = kp[kp[:, 2] > 0]
        if len(found):
            boxes[i] = (*found[:, :2].min(axis=0), *(found[:, :2].max(axis=0) + 1))
    return boxes


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def zoom_regions(boxes: np.ndarray, base: View, params: ZoomParams) -> list[ZoomView]:
    """The regions to zoom into for people boxes (image pixels) found in the base view.

    A person is small when its box's longer side is under `params.small` of the base network
    height; its region is its box padded by `context` times that side on every side (at
    least `min_context` of the network height), clipped to the image;
    overlapping regions are merged (repeatedly). Regions are taken smallest person first, at
    most `max_regions`, their padded network inputs within `max_area` times the base input's
    area; one that does not fit at `scale` is run at the scale that fits, if >= `min_scale`.
    """
    if params.max_regions == 0 or len(boxes) == 0:
        return []
    iw, ih = base.image_size
    ratio = base.content_size[1] / ih  # base network pixels per image pixel
    net_h = base.content_size[1]
    regions: list[list[float]] = []  # x0, y0, x1, y1, feather, smallest size, people
    for x0, y0, x1, y1 in boxes:
        size = max(x1 - x0, y1 - y0)
        if size <= 0 or size * ratio >= params.small * net_h:
            continue
        pad = max(params.context * size, params.min_context * net_h / ratio)
        regions.append([max(0.0, x0 - pad), max(0.0, y0 - pad), min(float(iw), x1 + pad),
                        min(float(ih), y1 + pad), pad / 2, size, 1])
    merged = True
    while merged:
        merged = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                a, b = regions[i], regions[j]
                if _overlap(a, b):
                    regions[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                                  max(a[3], b[3]), min(a[4], b[4]), min(a[5], b[5]), a[6] + b[6]]
                    del regions[j]
                    merged = True
                    break
            if merged:
                break
    budget = params.max_area * math.prod(base.input_size)
    views: list[ZoomView] = []
    for x0, y0, x1, y1, feather, _, people in sorted(regions, key=lambda r: r[5]):
        if len(views) == params.max_regions:
            break
        box = (int(math.floor(x0)), int(math.floor(y0)), int(math.ceil(x1)), int(math.ceil(y1)))
        w, h = box[2] - box[0], box[3] - box[1]
        scale = params.scale
        for _ in range(4):  # the padded area fits (padding to 16 / 64 adds a little)
            content = (max(1, round(w * ratio * scale)), max(1, round(h * ratio * scale)))
            area = math.prod(padded_size(content)) * (1 + params.flip)
            if area <= budget or scale < params.min_scale:
                break
            scale *= min(0.99, math.sqrt(budget / area))
        if scale < params.min_scale or area > budget:
            continue
        budget -= area
        views.append(ZoomView(box, scale, content, feather, int(people), 1 + params.flip,
                              params.weight))
    return views


# --------------------------------------------------------------------------------------------
# Fusing a zoomed view's maps into the canvas
# --------------------------------------------------------------------------------------------


def _canvas_span(base: View, n_canvas: int, axis: int, lo: int, hi: int) -> tuple[int, np.ndarray]:
    """First canvas pixel whose centre falls in image pixels [lo, hi) along an axis, and the
    image positions (continuous) of those canvas pixels."""
    step = base.input_size[axis] / n_canvas * base.image_size[axis] / base.content_size[axis]
    pos = (np.arange(n_canvas) + 0.5) * step  # canvas pixel centres in image coordinates
    inside = np.nonzero((pos >= lo) & (pos < hi))[0]
    if len(inside) == 0:
        return 0, pos[:0]
    return int(inside[0]), pos[inside]


def _ramp(pos: np.ndarray, lo: int, hi: int, limit: int, feather: float) -> np.ndarray:
    """Blend weight along one axis: 1 inside, falling to 0 at an edge of the crop that is not
    an edge of the image."""
    w = np.ones(len(pos), np.float32)
    if feather <= 0:
        return w
    if lo > 0:
        w = np.minimum(w, np.clip((pos - lo) / feather, 0, 1))
    if hi < limit:
        w = np.minimum(w, np.clip((hi - pos) / feather, 0, 1))
    return w.astype(np.float32)


def fuse_zoom(
    heat: np.ndarray, paf: np.ndarray, maps: list[np.ndarray], view: ZoomView, base: View,
    skeleton: Skeleton = OPENPOSE_18,
) -> None:
    """Blend the maps (heatmaps then PAFs) of a zoomed view (plain, then mirrored if two) into
    the canvas heat (19, H, W) and paf (38, H, W) maps of the base view, in place."""
    n_heat = skeleton.num_heatmaps
    x0, y0, x1, y1 = view.box
    n_h, n_w = heat.shape[1], heat.shape[2]
    c0, xs = _canvas_span(base, n_w, 0, x0, x1)
    r0, ys = _canvas_span(base, n_h, 1, y0, y1)
    if len(xs) == 0 or len(ys) == 0:
        return
    cw, ch = view.crop_size
    (zw, zh), (pw, ph) = view.content_size, view.input_size
    zoomed = np.zeros((maps[0].shape[0], len(ys), len(xs)), np.float32)
    for m, flip in zip(maps, (False, True)[:len(maps)], strict=True):
        # image position -> crop (mirrored) -> zoomed input -> its map pixel
        x = (cw - (xs - x0)) if flip else xs - x0
        xi, xw = cubic_taps(x * (zw / cw) * (m.shape[2] / pw) - 0.5, m.shape[2])
        yi, yw = cubic_taps((ys - y0) * (zh / ch) * (m.shape[1] / ph) - 0.5, m.shape[1])
        on_canvas = resample_taps(np.ascontiguousarray(m, dtype=np.float32), yi, yw, xi, xw)
        if flip:
            on_canvas = np.concatenate(unflip_channels(on_canvas[:n_heat],
                                                       on_canvas[n_heat:], skeleton))
        zoomed += on_canvas / len(maps)
    iw, ih = base.image_size
    alpha = (view.weight * _ramp(ys, y0, y1, ih, view.feather)[:, None]
             * _ramp(xs, x0, x1, iw, view.feather)[None, :])
    rows, cols = slice(r0, r0 + len(ys)), slice(c0, c0 + len(xs))
    for target, part in ((heat, zoomed[:n_heat]), (paf, zoomed[n_heat:])):
        region = target[:, rows, cols]
        region += alpha * (part - region)
