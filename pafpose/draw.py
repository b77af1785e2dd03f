"""Skeleton drawing and the heatmap / PAF figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .human import Human

if TYPE_CHECKING:
    from .track import Person


def draw_humans(
    image: np.ndarray, humans: Sequence[Human], copy: bool = True, thickness: int | None = None
) -> np.ndarray:
    """Draw the skeletons of `humans` on a BGR image (a copy unless copy=False) and return it:
    each person's drawn limbs and parts in its skeleton's colours (limb k takes colour k)."""
    out = image.copy() if copy else image
    t = thickness or max(2, round(max(out.shape[:2]) / 300))
    for human in humans:
        colors = human.skeleton.colors
        pts = {i: (int(x + 0.5), int(y + 0.5)) for i, (x, y, s) in enumerate(human.keypoints)
               if s > 0}
        for k, (a, b) in enumerate(human.skeleton.drawn_limbs):
            if a in pts and b in pts:
                cv2.line(out, pts[a], pts[b], colors[k], t, cv2.LINE_AA)
        for i, p in pts.items():
            cv2.circle(out, p, t + 1, colors[i], -1, cv2.LINE_AA)
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


def id_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for a track id."""
    hue = (track_id * 47) % 180
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def annotate(image: np.ndarray, people: list[Person], fps: float | None = None,
             copy: bool = True) -> np.ndarray:
    """Draw skeletons, each person's id above its head, and optionally an FPS counter."""
    out = draw_humans(image, [p.human for p in people], copy=copy)
    scale = max(0.5, out.shape[0] / 720)
    thick = max(1, round(2 * scale))
    for person in people:
        if person.id is None:
            continue
        x, y, w, _ = person.human.bbox()
        org = (int(x + w / 2) - int(10 * scale), max(int(y) - int(8 * scale), int(18 * scale)))
        text = str(person.id)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (0, 0, 0), thick + 2,
                    cv2.LINE_AA)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, id_color(person.id),
                    thick, cv2.LINE_AA)
    if fps is not None:
        org = (int(10 * scale), int(30 * scale))
        label = f"{fps:.1f} FPS"
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2,
                    cv2.LINE_AA)
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 0), thick,
                    cv2.LINE_AA)
    return out
