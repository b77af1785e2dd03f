"""Decoder tests on synthetic network maps (and the real reference maps when present)."""

from __future__ import annotations

import importlib
import math
import threading
from typing import Any

import cv2
import numpy as np
import pytest

from pafpose.decode import DecodeParams, Decoder, Poses, decode, seed_kernel_1d
from pafpose.skeleton import LIMB_PAF_CHANNELS, LIMBS, NUM_PARTS, OPENPOSE_18

from .conftest import SHARED, need

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


def render(
    people: list[np.ndarray],
    h: int = H,
    w: int = W,
    sigma: float = 1.0,
    width: float = 1.0,
    amplitude: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Network-like maps at stride 8: Gaussian part peaks, unit PAF vectors along limbs.

    Parts are (x, y) in low-res cells (cell centres at integers); NaN = part absent. Where
    limbs of the same type overlap, the PAF is the mean of their vectors (as in training).
    """
    heat = np.zeros((19, h, w), np.float32)
    paf = np.zeros((38, h, w), np.float32)
    count = np.zeros((len(LIMBS), h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    for kp in people:
        for p, (x, y) in enumerate(kp):
            if not np.isnan(x):
                g = amplitude * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
                heat[p] = np.maximum(heat[p], g)
        for li, (a, b) in enumerate(LIMBS):
            if np.isnan(kp[a]).any() or np.isnan(kp[b]).any():
                continue
            d = kp[b] - kp[a]
            length = float(np.hypot(*d))
            u = d / length
            rx, ry = xx - kp[a][0], yy - kp[a][1]
            along = rx * u[0] + ry * u[1]
            across = np.abs(rx * u[1] - ry * u[0])
            on = (along >= -width) & (along <= length + width) & (across <= width)
            cx, cy = LIMB_PAF_CHANNELS[li]
            paf[cx][on] += u[0]
            paf[cy][on] += u[1]
            count[li][on] += 1
    for li, (cx, cy) in enumerate(LIMB_PAF_CHANNELS):
        on = count[li] > 0
        paf[cx][on] /= count[li][on]
        paf[cy][on] /= count[li][on]
    heat[18] = 1.0 - heat[:18].max(axis=0)
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


def test_one_person_all_parts_found_where_placed():
    kp = person(27.3, 24.6)
    poses = decode(*render([kp]))
    assert len(poses) == 1
    assert poses.map_size == (W * 4, H * 4)
    assert poses.keypoints.shape == (1, NUM_PARTS, 3) and poses.keypoints.dtype == np.float32
    # the score is the unsmoothed (replicated) heatmap value at the peak
    heat, _ = render([kp])
    xs, ys = poses.keypoints[0, :, 0].astype(int), poses.keypoints[0, :, 1].astype(int)
    assert np.array_equal(poses.keypoints[0, :, 2], heat[np.arange(NUM_PARTS), ys // 4, xs // 4])
    err = np.abs(poses.keypoints[0, :, :2] - expected_xy(kp, poses))
    assert err.max() <= SEED_TOL
    assert poses.scores.dtype == np.float32 and poses.scores[0] > 1.0


def test_two_people_with_crossing_forearms_are_separated():
    a, b = person(14.0, 25.0), person(36.0, 25.0)
    # Both right forearms (the same limb type, the same PAF channels) cross in an X.
    a[3], a[4] = (20.0, 17.0), (29.0, 26.0)
    b[3], b[4] = (29.0, 17.0), (20.0, 26.0)
    truth = [a, b]
    poses = decode(*render(truth))
    assert len(poses) == 2
    owners = match(poses, truth)
    assert sorted(owners) == [0, 1]
    for found, owner in zip(poses.keypoints, owners, strict=True):
        assert (found[:, 2] > 0).all()
        err = np.abs(found[:, :2] - expected_xy(truth[owner], poses))
        assert err.max() <= SEED_TOL, f"person {owner}: a part was given to the wrong person"


def test_person_cut_by_the_bottom_border_keeps_visible_parts():
    kp = person(27.0, 38.0)  # knees (y=44) and ankles (y=50) fall below the 46-row map
    kp[[9, 10, 12, 13]] = np.nan
    poses = decode(*render([kp]))
    assert len(poses) == 1
    present = poses.keypoints[0, :, 2] > 0
    assert present.tolist() == (~np.isnan(kp[:, 0])).tolist()
    err = np.abs(poses.keypoints[0, present, :2] - expected_xy(kp[present], poses))
    assert err.max() <= SEED_TOL
    assert (poses.keypoints[0, ~present] == 0).all()


def test_person_cut_by_the_left_border():
    kp = person(3.0, 24.0)  # right arm and right ear off the left edge
    off = kp[:, 0] < -0.5
    kp[off] = np.nan
    poses = decode(*render([kp]))
    assert len(poses) == 1
    present = poses.keypoints[0, :, 2] > 0
    assert present.tolist() == (~off).tolist()


def test_empty_maps_give_no_people():
    poses = decode(np.zeros((19, H, W), np.float32), np.zeros((38, H, W), np.float32))
    assert len(poses) == 0
    assert poses.keypoints.shape == (0, NUM_PARTS, 3)
    assert poses.scores.shape == (0,)


@pytest.mark.parametrize("params", [DecodeParams(), FAST], ids=["seed", "fast"])
def test_non_finite_values_are_treated_as_zero(params):
    kp = person(27.0, 24.0)
    heat, paf = render([kp])
    rng = np.random.default_rng(3)
    for arr in (heat, paf):
        flat = arr.reshape(-1)
        idx = rng.choice(flat.size, 60, replace=False)
        flat[idx[:20]], flat[idx[20:40]], flat[idx[40:]] = np.nan, np.inf, -np.inf
    poses = decode(heat, paf, params)
    assert np.isfinite(poses.keypoints).all() and np.isfinite(poses.scores).all()
    assert len(poses) == 1
    # all-NaN maps: nothing, no exception
    empty = decode(np.full((19, H, W), np.nan), np.full((38, H, W), np.inf), params)
    assert len(empty) == 0


def _seed_kernel_2d(size: int = 25, nsig: float = 3.0) -> np.ndarray:
    """The seed's 2-D kernel, built its way: sqrt of the outer product, normalised, float32."""
    interval = (2 * nsig + 1.0) / size
    grid = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, size + 1)
    w1 = np.diff([0.5 * (1 + math.erf(x / math.sqrt(2))) for x in grid])
    raw = np.sqrt(np.outer(w1, w1))
    return (raw / raw.sum()).astype(np.float32)


def _reference_peaks(heat: np.ndarray, r: int) -> set[tuple[int, int, int, float]]:
    """Straightforward seed pipeline: replicate, full 2-D zero-padded conv, 3x3 max, where."""
    kernel = _seed_kernel_2d()
    out = set()
    for c in range(NUM_PARTS):
        up = np.repeat(np.repeat(heat[c], r, axis=0), r, axis=1)
        sm = cv2.filter2D(up, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        mx = cv2.dilate(sm, np.ones((3, 3), np.uint8))  # border pixels ignored, as TF
        ys, xs = np.nonzero((sm == mx) & (sm > np.float32(0.05)))
        out |= {(c, int(y), int(x), float(up[y, x])) for y, x in zip(ys, xs, strict=True)}
    return out


def test_separable_kernel_is_the_seed_kernel():
    v = seed_kernel_1d()
    assert np.allclose(np.outer(v, v), _seed_kernel_2d(), rtol=1e-6, atol=1e-9)
    assert v.shape == (25,) and math.isclose(v.sum(), 1.0)


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


def test_concurrent_decodes_are_identical():
    people = [person(14, 24), person(38, 22, 0.8), person(27, 30, 0.6)]
    heat, paf = render(people)
    shared = Decoder()
    expected = shared(heat, paf)
    assert len(expected) == 3
    results: list[Poses] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        try:
            for i in range(10):
                got = shared(heat, paf) if (i + k) % 2 else decode(heat, paf)
                with lock:
                    results.append(got)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 40
    for got in results:
        assert np.array_equal(got.keypoints, expected.keypoints)
        assert np.array_equal(got.scores, expected.scores)


def test_min_parts_filter():
    kp = np.full((NUM_PARTS, 2), np.nan)
    kp[[1, 2, 3]] = person(27, 24)[[1, 2, 3]]  # neck, right shoulder, right elbow: 3 parts
    heat, paf = render([kp])
    assert len(decode(heat, paf)) == 0  # the seed needs 4 parts
    three = decode(heat, paf, DecodeParams(min_parts=3))
    assert len(three) == 1
    assert (three.keypoints[0, :, 2] > 0).sum() == 3


def test_min_score_filter_is_inclusive_threshold_on_the_reported_score():
    heat, paf = render([person(27, 24)], amplitude=0.5)
    base = decode(heat, paf, DecodeParams(min_score=0.0))
    assert len(base) == 1
    score = float(base.scores[0])
    below = float(np.nextafter(np.float32(score), np.float32(0)))
    above = float(np.nextafter(np.float32(score), np.float32(10)))
    assert len(decode(heat, paf, DecodeParams(min_score=below))) == 1
    assert len(decode(heat, paf, DecodeParams(min_score=score))) == 1  # score >= min_score
    assert len(decode(heat, paf, DecodeParams(min_score=above))) == 0


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


def test_seed_mode_with_refine_and_other_upsampling():
    kp = person(27.4, 24.2)
    heat, paf = render([kp])
    for params in (
        DecodeParams(refine=True),
        DecodeParams(upsample=8.0),
        DecodeParams(upsample=2.5),
        DecodeParams(upsample_method="linear"),
        DecodeParams(upsample_method="area", smooth="none"),
        DecodeParams(upsample=1.0, smooth="none"),
        DecodeParams(upsample=2.0, upsample_method="cubic", smooth="none"),
    ):
        poses = decode(heat, paf, params)
        assert len(poses) == 1, params
        assert (poses.keypoints[0, :, 2] > 0).all(), params
        err = np.abs(poses.keypoints[0, :, :2] - expected_xy(kp, poses))
        tol = SEED_TOL * max(1.0, params.upsample / 4)
        if params.upsample_method == "area" and params.smooth == "none":
            tol = params.upsample / 2  # peaks at low-res cell centres: +-half a cell
        assert err.max() <= tol, params


def test_merge_rule_is_off_by_default_as_in_the_compiled_seed():
    # Without a neck, the arms and the face start separate partial people; the ear-shoulder
    # limbs then join an arm to the face. OpenPose merges such disjoint partial people; the
    # compiled seed never does (its merge branch is dead code): it adds the ear to the arm
    # and keeps the face too, so an ear peak is shared by two people.
    kp = person(27.3, 24.6)
    kp[1] = np.nan
    heat, paf = render([kp])
    seed = decode(heat, paf)
    parts = [np.flatnonzero(k[:, 2] > 0).tolist() for k in seed.keypoints]
    assert parts == [[2, 3, 4, 16], [5, 6, 7, 17], [0, 14, 15, 16, 17]]
    merged = decode(heat, paf, DecodeParams(merge_disjoint=True))
    assert len(merged) == 1
    assert np.flatnonzero(merged.keypoints[0, :, 2] > 0).tolist() == [
        0, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17
    ]


@pytest.mark.parametrize(
    ("heat_shape", "paf_shape"),
    [
        ((H, W, 19), (38, H, W)),  # NHWC by mistake
        ((19, H, W), (H, W, 38)),
        ((19, H, W), (38, H, W + 1)),  # sizes differ
        ((19, H), (38, H, W)),
        ((17, H, W), (38, H, W)),
        ((19, H, W), (36, H, W)),
        ((19, 0, W), (38, 0, W)),
    ],
)
def test_wrong_shapes_raise_value_error(heat_shape, paf_shape):
    with pytest.raises(ValueError, match="heatmaps|pafs"):
        decode(np.zeros(heat_shape, np.float32), np.zeros(paf_shape, np.float32))


def test_bad_params_raise_value_error():
    for kwargs in (
        {"upsample": 0.0},
        {"upsample": float("nan")},
        {"upsample_method": "nearest"},
        {"smooth": "gauss"},
        {"nms_window": 2},
        {"paf_samples": 0},
    ):
        with pytest.raises(ValueError):
            DecodeParams(**kwargs)


def test_accepts_other_dtypes_and_18_channel_heatmaps():
    heat, paf = render([person(27, 24)])
    ref = decode(heat, paf)
    got = decode(heat[:18].astype(np.float64), paf.astype(np.float64))
    assert np.array_equal(got.keypoints, ref.keypoints)


def test_python_fallback_matches_compiled_grouping():
    # The compiled kernels are plain Python underneath (used as such without numba).
    mod = importlib.import_module("pafpose.decode.grouping")
    if not hasattr(mod.group_people, "py_func"):
        pytest.skip("numba not installed: the Python path is the only one")
    people = [person(14, 24), person(38, 22, 0.8)]
    heat, paf = render(people)
    dec = Decoder()
    peaks = dec.find_peaks(heat)
    starts = np.zeros(NUM_PARTS + 1, np.int64)
    np.cumsum(np.bincount(peaks.parts, minlength=NUM_PARTS), out=starts[1:])
    ops = dec._operators(H, W)
    uy, ux = ops.y.up, ops.x.up
    layout = mod.Layout.of(OPENPOSE_18)
    args = (
        peaks.xs, peaks.ys, peaks.scores, starts, paf, ops.replicate,
        uy.mat, uy.lo, uy.hi, ux.mat, ux.lo, ux.hi, H * 4, W * 4,
        layout.limbs, layout.limb_pafs, 17, np.float32(0.05), 10, 7, 0.5, 4, np.float32(0.3), False,
    )
    cids_jit, scores_jit = mod.group_people(*args)
    cids_py, scores_py = mod.group_people.py_func(*args)
    assert len(scores_jit) == 2
    assert np.array_equal(cids_jit, cids_py)
    assert np.array_equal(scores_jit, scores_py)


def test_real_reference_maps_match_the_seed():
    # Expected values come from the seed itself (its C++ grouping compiled, on TF-identical
    # maps); the network output is mobilenet_thin on the astronaut photo at 432x368.
    path = need(SHARED / "models" / "reference" / "mobilenet_thin__astronaut_432x368.npz")
    out = np.load(path)["output"][0].transpose(2, 0, 1)
    poses = Decoder()(out[:19], out[19:])
    assert len(poses) == 1
    assert poses.map_size == (216, 184)
    kp = poses.keypoints[0]
    found = np.flatnonzero(kp[:, 2] > 0).tolist()
    assert found == [0, 1, 2, 5, 14, 15, 16, 17]
    assert kp[found, :2].tolist() == [
        [95, 44], [89, 82], [62, 68], [134, 94], [86, 36], [105, 36], [74, 41], [116, 44]
    ]
    assert poses.scores[0] == np.float32(1.2870922)


def _piece_scene() -> tuple[np.ndarray, np.ndarray]:
    """People in map pixels: 0 has a neck but no left arm; 1 is a left arm + ear whose
    shoulder sits 0.5 px from 0's neck; 2 is a far person with a neck; 3 is a right arm."""
    kp = np.zeros((4, NUM_PARTS, 3), np.float32)
    kp[0, [0, 1, 2, 3, 4, 8, 11], :] = [[10, 5, .9], [10, 10, .8], [6, 10, .7], [5, 15, .6],
                                        [5, 20, .5], [8, 25, .9], [12, 25, .9]]
    kp[1, [5, 6, 7, 17], :] = [[10.5, 10, .6], [14, 15, .6], [15, 20, .5], [12, 5, .4]]
    kp[2, [0, 1, 8], :] = [[40, 5, .9], [40, 10, .9], [40, 25, .9]]
    kp[3, [2, 3, 4, 16], :] = [[45, 10, .5], [46, 15, .5], [46, 20, .5], [41, 5, .5]]
    return kp, np.array([1.0, 0.5, 0.9, 0.4], np.float32)


def test_attach_pieces_joins_an_arm_to_the_neck_it_sits_on():
    from pafpose.decode import attach_pieces

    kp, scores = _piece_scene()
    out, out_scores = attach_pieces(kp, scores, radius=2.0)
    # the left arm joins person 0; the right arm is 5 px from person 2's neck: too far
    assert len(out) == 3
    np.testing.assert_array_equal(out[0, [5, 6, 7, 17]], kp[1, [5, 6, 7, 17]])
    np.testing.assert_array_equal(out[0, [0, 1, 2, 3, 4, 8, 11]], kp[0, [0, 1, 2, 3, 4, 8, 11]])
    assert out_scores[0] == pytest.approx((1.0 * 7 + 0.5 * 4) / 11)
    np.testing.assert_array_equal(out[1:], kp[2:])
    # with a radius of 6 px the right arm joins person 2, which lacks its parts
    out, _ = attach_pieces(kp, scores, radius=6.0)
    assert len(out) == 2 and (out[1, [2, 3, 4, 16], 2] > 0).all()
    # an arm never joins a person who already has one of its parts
    kp[0, 5] = [7, 10, .5]
    out, _ = attach_pieces(kp, scores, radius=2.0)
    assert len(out) == 4


def test_attach_cells_off_in_the_seed_and_validated():
    assert DecodeParams().attach_cells == 0.0
    with pytest.raises(ValueError, match="attach_cells"):
        DecodeParams(attach_cells=-1.0)
    with pytest.raises(ValueError, match="attach_cells"):
        DecodeParams(attach_cells=float("nan"))


# --------------------------------------------------------------------------------------------
# Bounded work: peaks per part capped, any map decodes to a well-formed result
# --------------------------------------------------------------------------------------------


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


def _fuzz_maps(rng: np.random.Generator, h: int, w: int) -> dict[str, tuple[Any, Any]]:
    """Pathological map pairs of one size."""
    hs, ps = (19, h, w), (38, h, w)
    board = (np.indices((h, w)).sum(axis=0) % 2).astype(np.float32)
    mixed = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.5, 1.0], np.float32), size=hs)
    return {
        "random": (rng.random(hs, dtype=np.float32), rng.uniform(-1, 1, ps).astype(np.float32)),
        "zeros": (np.zeros(hs, np.float32), np.zeros(ps, np.float32)),
        "ones": (np.ones(hs, np.float32), np.ones(ps, np.float32)),
        "minus_ones": (-np.ones(hs, np.float32), -np.ones(ps, np.float32)),
        "checkerboard": (np.broadcast_to(board, hs), np.broadcast_to(board - 0.5, ps)),
        "nan": (np.full(hs, np.nan, np.float32), np.full(ps, np.nan, np.float32)),
        "inf": (np.full(hs, np.inf), np.full(ps, np.inf)),
        "-inf": (np.full(hs, -np.inf), np.full(ps, -np.inf)),
        "mixed_non_finite": (mixed, mixed[0:1].repeat(2, axis=0).repeat(19, axis=0)),
        "huge": (np.full(hs, 3e38, np.float32), rng.choice([-1e300, 1e300], ps)),
        "huge_random": (rng.uniform(-1e30, 1e30, hs), rng.uniform(-1e30, 1e30, ps)),
        "tiny": (np.full(hs, 1e-38, np.float32), np.full(ps, 1e-38, np.float32)),
        "uint8": (rng.integers(0, 256, hs, dtype=np.uint8), rng.integers(0, 2, ps, np.uint8)),
        "bool": (rng.random(hs) < 0.5, rng.random(ps) < 0.5),
    }


def test_fuzz_any_map_decodes_to_a_well_formed_result():
    from pafpose.presets import PRESETS

    rng = np.random.default_rng(11)
    settings = {preset.decode: name for name, preset in PRESETS.items()}  # distinct ones
    settings[DecodeParams(smooth="none")] = "lowres_peaks"
    settings[DecodeParams(max_peaks=3, merge_disjoint=True, attach_cells=2.0)] = "few_peaks"
    shapes = [(H, W), (1, 1), (1, 500), (500, 1), (2, 3)]
    for params, name in settings.items():
        dec = Decoder(params)
        for h, w in shapes:
            for kind, (heat, paf) in _fuzz_maps(rng, h, w).items():
                with np.errstate(all="ignore"):
                    poses = dec(heat, paf)
                where = f"{name} {kind} {h}x{w}"
                kp, n = poses.keypoints, len(poses)
                map_w, map_h = poses.map_size
                assert kp.shape == (n, NUM_PARTS, 3) and kp.dtype == np.float32, where
                assert poses.scores.shape == (n,) and np.isfinite(poses.scores).all(), where
                assert np.isfinite(kp).all(), where
                assert (kp[..., 0] >= 0).all() and (kp[..., 0] <= map_w - 1).all(), where
                assert (kp[..., 1] >= 0).all() and (kp[..., 1] <= map_h - 1).all(), where
                assert n <= params.max_peaks * len(LIMBS), where
                peaks = dec.find_peaks(heat)
                assert np.bincount(peaks.parts, minlength=19).max() <= params.max_peaks, where


@pytest.mark.parametrize(
    "heat, paf",
    [
        (np.zeros((19, H, W), np.complex64), np.zeros((38, H, W), np.float32)),
        (np.zeros((19, H, W), object), np.zeros((38, H, W), np.float32)),
        (np.full((19, H, W), "a"), np.zeros((38, H, W), np.float32)),
        (np.zeros((19, H, W), np.float32), np.zeros((38, H, W), "datetime64[s]")),
        (np.zeros((19, H * W), np.float32), np.zeros((38, H, W), np.float32)),
        (np.zeros((1, 19, H, W), np.float32), np.zeros((38, H, W), np.float32)),
        (np.zeros((H, W, 19), np.float32), np.zeros((H, W, 38), np.float32)),
        (np.zeros((19, 1, 0), np.float32), np.zeros((38, 1, 0), np.float32)),
        (np.float32(1.0), np.zeros((38, H, W), np.float32)),
        ([[[0.0]]] * 19, [[[0.0]]] * 37),
    ],
    ids=["complex", "object", "str", "datetime", "2d", "4d", "hwc", "empty", "scalar", "lists"],
)
def test_fuzz_wrong_shapes_and_dtypes_raise_only_value_error(heat, paf):
    with pytest.raises(ValueError, match="heatmaps|pafs"):
        decode(heat, paf)
