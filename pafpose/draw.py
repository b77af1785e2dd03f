"""Skeleton drawing and the heatmap / PAF figure."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .human import Human
from .skeleton import DRAWN_LIMBS, PART_COLORS


def draw_humans(
    image: np.ndarray, humans: Sequence[Human], copy: bool = True, thickness: int | None = None
) -> np.ndarray:
    """Draw the skeletons of `humans` on a BGR image (a copy unless copy=False) and return it."""
    out = image.copy() if copy else image
    t = thickness or max(2, round(max(out.shape[:2]) / 300))
    for human in humans:
        pts = {i: (int(x + 0.5), int(y + 0.5)) for i, (x, y, s) in enumerate(human.keypoints)
               if s > 0}
        for k, (a, b) in enumerate(DRAWN_LIMBS):
            if a in pts and b in pts:
                cv2.line(out, pts[a], pts[b], PART_COLORS[k], t, cv2.LINE_AA)
        for i, p in pts.items():
            cv2.circle(out, p, t + 1, PART_COLORS[i], -1, cv2.LINE_AA)
    return out


def _overlay(image: np.ndarray, values: np.ndarray, title: str) -> np.ndarray:
    """Blend a map (any size, values >= 0) resized to the image over it with a colour map."""
    h, w = image.shape[:2]
    v = cv2.resize(np.nan_to_num(values).astype(np.float32), (w, h),
                   interpolation=cv2.INTER_LINEAR)
    v = np.clip(v / max(float(v.max()), 1e-6) * 255, 0, 255).astype(np.uint8)
    out = cv2.addWeighted(image, 0.5, cv2.applyColorMap(v, cv2.COLORMAP_JET), 0.5, 0)
    return _title(out, title)


def _title(image: np.ndarray, title: str) -> np.ndarray:
    scale = max(0.5, image.shape[1] / 800)
    cv2.putText(image, title, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    return image


def maps_figure(
    image: np.ndarray, humans: Sequence[Human], heatmaps: np.ndarray, pafs: np.ndarray
) -> np.ndarray:
    """The seed's 2x2 figure: result, max part heatmap, max |PAF-x|, max |PAF-y| over the image."""
    result = _title(draw_humans(image, humans), "Result")
    heat = _overlay(image, heatmaps[:-1].max(axis=0), "Heatmap")
    paf_x = _overlay(image, np.abs(pafs[0::2]).max(axis=0), "PAF-x")
    paf_y = _overlay(image, np.abs(pafs[1::2]).max(axis=0), "PAF-y")
    return np.vstack([np.hstack([result, heat]), np.hstack([paf_x, paf_y])])
