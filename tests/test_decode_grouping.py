"""Grouping: limb scoring, matching, people assembly, filters, attach_pieces."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from pafpose.decode import DecodeParams, Decoder, decode
from pafpose.skeleton import NUM_PARTS, OPENPOSE_18

from .decode_maps import (
    SEED_TOL,
    H,
    W,
    expected_xy,
    match,
    person,
    render,
)


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
