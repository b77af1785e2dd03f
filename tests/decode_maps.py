"""Synthetic network maps for the decoder tests: template people, rendered heatmaps and PAFs."""

from __future__ import annotations

import math

import numpy as np

from pafpose.decode import DecodeParams, Poses
from pafpose.skeleton import OPENPOSE_18, Skeleton

H, W = 46, 54  # low-res maps of a 432x368 input (stride 8)

#: A standing person facing the camera, in low-res cells relative to the hips' centre.
TEMPLATE = np.array(
    [
        (0, -12), (0, -9), (-3, -9), (-4, -5), (-4.5, -1), (3, -9), (4, -5), (4.5, -1),
        (-2, 0), (-2, 6), (-2, 12), (2, 0), (2, 6), (2, 12),
        (-1, -13.2), (1, -13.2), (-2.2, -12.4), (2.2, -12.4),
    ],
    dtype=np.float64,
)

# Small fixed offsets break the template's symmetry: a Gaussian centred exactly between two
# cells gives mathematically tied pixels, where float rounding decides which become peaks.
_JITTER = 0.23 * np.sin(np.arange(2 * 18) * 1.7).reshape(18, 2)

FAST = DecodeParams(upsample_method="cubic", smooth="none", refine=True, upsample=2.0)


def person(cx: float, cy: float, scale: float = 1.0) -> np.ndarray:
    """(18, 2) part positions (low-res cells, x right, y down) of a template person."""
    return (TEMPLATE + _JITTER) * scale + (cx, cy)


#: Parts OpenPose-18 lacks, in low-res cells relative to the hips' centre: BODY_25's mid-hip
#: and feet (toes out to the sides, heels behind the ankles) and MPI's head top and chest
#: (off the cell centres, as _JITTER: no tied pixels).
EXTRA_PARTS = {
    "MidHip": (0.17, 0.21), "LBigToe": (3.43, 13.62), "LSmallToe": (4.61, 13.19),
    "LHeel": (1.83, 13.07), "RBigToe": (-3.38, 13.64), "RSmallToe": (-4.58, 13.23),
    "RHeel": (-1.77, 13.11), "Head": (0.19, -14.57), "Chest": (-0.14, -4.83),
}


def person_of(skeleton: Skeleton, cx: float, cy: float, scale: float = 1.0) -> np.ndarray:
    """(parts, 2) positions of a template person in a skeleton's part order (low-res cells)."""
    base = person(0.0, 0.0)
    xy = [EXTRA_PARTS[name] if name in EXTRA_PARTS else base[OPENPOSE_18.index(name)]
          for name in skeleton.parts]
    return np.asarray(xy, np.float64) * scale + (cx, cy)


def render(
    people: list[np.ndarray],
    h: int = H,
    w: int = W,
    sigma: float = 1.0,
    width: float = 1.0,
    amplitude: float = 1.0,
    skeleton: Skeleton = OPENPOSE_18,
) -> tuple[np.ndarray, np.ndarray]:
    """Network-like maps at stride 8: Gaussian part peaks, unit PAF vectors along limbs.

    Parts are (x, y) in low-res cells (cell centres at integers); NaN = part absent. Where
    limbs of the same type overlap, the PAF is the mean of their vectors (as in training).
    """
    heat = np.zeros((skeleton.num_heatmaps, h, w), np.float32)
    paf = np.zeros((skeleton.num_pafs, h, w), np.float32)
    count = np.zeros((skeleton.num_limbs, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for kp in people:
        for p, (x, y) in enumerate(kp):
            if not np.isnan(x):
                g = amplitude * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
                heat[p] = np.maximum(heat[p], g)
        for li, (a, b) in enumerate(skeleton.limbs):
            if np.isnan(kp[a]).any() or np.isnan(kp[b]).any():
                continue
            d = kp[b] - kp[a]
            length = float(np.hypot(*d))
            u = d / length
            rx, ry = xx - kp[a][0], yy - kp[a][1]
            along = rx * u[0] + ry * u[1]
            across = np.abs(rx * u[1] - ry * u[0])
            on = (along >= -width) & (along <= length + width) & (across <= width)
            cx, cy = skeleton.limb_pafs[li]
            paf[cx][on] += u[0]
            paf[cy][on] += u[1]
            count[li][on] += 1
    for li, (cx, cy) in enumerate(skeleton.limb_pafs):
        on = count[li] > 0
        paf[cx][on] /= count[li][on]
        paf[cy][on] /= count[li][on]
    if skeleton.background:
        heat[-1] = 1.0 - heat[:-1].max(axis=0)
    return heat, paf


def expected_xy(kp: np.ndarray, poses: Poses, h: int = H, w: int = W) -> np.ndarray:
    """Where a low-res position lands in the upsampled map (pixel centres aligned)."""
    rx, ry = poses.map_size[0] / w, poses.map_size[1] / h
    return (kp + 0.5) * (rx, ry) - 0.5


def match(poses: Poses, truth: list[np.ndarray]) -> list[int]:
    """Index of the ground-truth person nearest (by neck) to each decoded person."""
    out = []
    for found in poses.keypoints:
        dist = [np.hypot(*(found[1, :2] - expected_xy(t, poses)[1])) for t in truth]
        out.append(int(np.argmin(dist)))
    return out


# Seed mode reports integer pixels of the smoothed map: +-0.5 px quantisation plus a small
# bias of the smoothed replicated map; 1 px of the upsampled map is 2 input pixels at ratio 4.
SEED_TOL = 1.0


def seed_kernel_2d(size: int = 25, nsig: float = 3.0) -> np.ndarray:
    """The seed's 2-D kernel, built its way: sqrt of the outer product, normalised, float32."""
    interval = (2 * nsig + 1.0) / size
    grid = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, size + 1)
    w1 = np.diff([0.5 * (1 + math.erf(x / math.sqrt(2))) for x in grid])
    raw = np.sqrt(np.outer(w1, w1))
    return (raw / raw.sum()).astype(np.float32)
