"""Peak finding: the seed's smoothing + NMS exactly, sub-pixel refinement, the cap per part."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pafpose.decode import DecodeParams, Decoder, decode
from pafpose.skeleton import LIMBS, NUM_PARTS

from .decode_maps import (
    FAST,
    H,
    W,
    expected_xy,
    person,
    render,
    seed_kernel_2d,
)


def _reference_peaks(heat: np.ndarray, r: int) -> set[tuple[int, int, int, float]]:
    """Straightforward seed pipeline: replicate, full 2-D zero-padded conv, 3x3 max, where."""
    kernel = seed_kernel_2d()
    out = set()
    for c in range(NUM_PARTS):
        up = np.repeat(np.repeat(heat[c], r, axis=0), r, axis=1)
        sm = cv2.filter2D(up, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        mx = cv2.dilate(sm, np.ones((3, 3), np.uint8))  # border pixels ignored, as TF
        ys, xs = np.nonzero((sm == mx) & (sm > np.float32(0.05)))
        out |= {(c, int(y), int(x), float(up[y, x])) for y, x in zip(ys, xs, strict=True)}
    return out


@pytest.mark.parametrize("r", [4, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_peaks_equal_reference_seed_pipeline(r, seed):
    rng = np.random.default_rng(seed)
    h, w = 23, 30
    yy, xx = np.mgrid[0:h, 0:w]
    heat = rng.normal(0.0, 0.01, (19, h, w)).astype(np.float32)
    for c in range(NUM_PARTS):
        for _ in range(int(rng.integers(0, 5))):
            x0, y0 = rng.uniform(-1, w), rng.uniform(-1, h)
            s, a = rng.uniform(0.5, 2.0), rng.uniform(0.03, 1.0)
            heat[c] += (a * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * s * s))).astype(
                np.float32
            )
    peaks = Decoder(DecodeParams(upsample=float(r))).find_peaks(heat)
    mine = {
        (int(c), int(y), int(x), float(s))
        for c, y, x, s in zip(peaks.parts, peaks.ys, peaks.xs, peaks.scores, strict=True)
    }
    ref = _reference_peaks(heat, r)
    assert len(ref) > 20
    assert mine == ref
    # ordered as the seed enumerates them: part, then row, then column
    order = np.lexsort((peaks.xs, peaks.ys, peaks.parts))
    assert (order == np.arange(order.size)).all()


def test_refined_cubic_mode_is_closer_to_the_true_peak():
    rng = np.random.default_rng(5)
    integer = DecodeParams(upsample_method="cubic", smooth="none", refine=False, upsample=2.0)
    err_int, err_ref = [], []
    for _ in range(5):
        kp = person(rng.uniform(22, 32), rng.uniform(22, 26), rng.uniform(0.8, 1.1))
        heat, paf = render([kp])
        for params, errs in ((integer, err_int), (FAST, err_ref)):
            poses = decode(heat, paf, params)
            assert len(poses) == 1 and (poses.keypoints[0, :, 2] > 0).all()
            assert poses.map_size == (W * 2, H * 2)
            errs.append(np.abs(poses.keypoints[0, :, :2] - expected_xy(kp, poses)))
    err_int, err_ref = np.concatenate(err_int), np.concatenate(err_ref)
    assert err_ref.mean() < 0.5 * err_int.mean()
    assert err_ref.max() < 0.2  # pixels of the stride-4 map
    frac = err_ref - np.round(err_ref)
    assert np.abs(frac).max() > 0  # really sub-pixel


def test_max_peaks_keeps_the_strongest_peaks_in_raster_order():
    heat = np.zeros((19, H, W), np.float32)
    amp = np.random.default_rng(5).permutation(np.linspace(0.2, 1.0, 100)).astype(np.float32)
    ys, xs = np.divmod(np.arange(100), 10)
    heat[3, 4 * ys + 3, 5 * xs + 3] = amp  # 100 isolated peaks of distinct heights
    params = DecodeParams(smooth="none", upsample=1.0, max_peaks=7)
    peaks = Decoder(params).find_peaks(heat)
    assert peaks.parts.tolist() == [3] * 7
    assert sorted(peaks.scores.tolist()) == pytest.approx(sorted(amp)[-7:])
    raster = (peaks.ys * W + peaks.xs).tolist()
    assert raster == sorted(raster)
    assert len(Decoder(DecodeParams(smooth="none", upsample=1.0)).find_peaks(heat).parts) == 100
    assert DecodeParams().max_peaks == 127  # OpenPose's POSE_MAX_PEOPLE
    with pytest.raises(ValueError, match="max_peaks"):
        DecodeParams(max_peaks=0)


def test_all_ones_maps_are_bounded_by_max_peaks():
    # Smoothed all-ones maps are one big plateau: every pixel is a peak (~40,000 per part).
    heat, paf = np.ones((19, H, W), np.float32), np.ones((38, H, W), np.float32)
    dec = Decoder(DecodeParams(max_peaks=20))
    assert np.bincount(dec.find_peaks(heat).parts).tolist() == [20] * NUM_PARTS
    poses = dec(heat, paf)
    assert 0 < len(poses) <= 20 * len(LIMBS)
