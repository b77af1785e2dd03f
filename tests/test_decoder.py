"""Decoder and decode: whole maps to people, input checks, threads, any map well-formed."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np
import pytest

from pafpose.decode import DecodeParams, Decoder, Poses, decode
from pafpose.errors import InputError
from pafpose.skeleton import LIMBS, NUM_PARTS, Skeleton

from .conftest import SHARED, need
from .decode_maps import (
    FAST,
    SEED_TOL,
    H,
    W,
    expected_xy,
    person,
    render,
)


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


def test_accepts_other_dtypes_and_18_channel_heatmaps():
    heat, paf = render([person(27, 24)])
    ref = decode(heat, paf)
    got = decode(heat[:18].astype(np.float64), paf.astype(np.float64))
    assert np.array_equal(got.keypoints, ref.keypoints)


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


# --------------------------------------------------------------------------------------------
# The skeleton is data: another layout decodes with the same code
# --------------------------------------------------------------------------------------------

#: Three parts in a chain, two limbs, no background channel.
CHAIN = Skeleton(
    name="chain3",
    parts=("Top", "Middle", "Bottom"),
    limbs=((0, 1), (1, 2)),
    limb_pafs=((2, 3), (0, 1)),
    limbs_starting_person=2,
    flip=(0, 1, 2),
    drawn_limbs=((0, 1), (1, 2)),
    coco17=(0,) + (-1,) * 16,
    colors=((255, 0, 0), (0, 255, 0), (0, 0, 255)),
    background=False,
)


def test_a_three_part_skeleton_decodes_its_people():
    truth = [np.array([[12.3, 10.2], [12.6, 20.4], [13.1, 30.3]]),
             np.array([[38.4, 8.7], [37.2, 18.1], [36.6, 29.5]])]
    heat, paf = render(truth, skeleton=CHAIN)
    assert heat.shape == (3, H, W) and paf.shape == (4, H, W)
    params = DecodeParams(min_parts=3)
    poses = decode(heat, paf, params, CHAIN)
    assert len(poses) == 2 and poses.keypoints.shape == (2, 3, 3)
    assert (poses.keypoints[:, :, 2] > 0).all()
    for found in poses.keypoints:
        owner = int(np.argmin([np.hypot(*(found[1, :2] - expected_xy(t, poses)[1]))
                               for t in truth]))
        assert np.abs(found[:, :2] - expected_xy(truth[owner], poses)).max() <= SEED_TOL
    dec = Decoder(params, CHAIN)
    assert dec.skeleton is CHAIN
    assert np.bincount(dec.find_peaks(heat).parts).tolist() == [2, 2, 2]
    # the channel counts come from the skeleton: OpenPose-18 maps are refused
    with pytest.raises(InputError, match="heatmaps"):
        dec(*render([person(27, 24)]))
    with pytest.raises(InputError, match="pafs"):
        dec(heat, np.zeros((38, H, W), np.float32))
    # only limbs within limbs_starting_person start a person
    alone = decode(heat, paf, DecodeParams(min_parts=2),
                   dataclasses.replace(CHAIN, limbs_starting_person=0))
    assert len(alone) == 0


def test_attach_cells_needs_a_neck_and_shoulders():
    with pytest.raises(InputError, match="attach_cells"):
        Decoder(DecodeParams(attach_cells=2.0), CHAIN)
