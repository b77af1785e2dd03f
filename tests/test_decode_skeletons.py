"""The decoder on synthetic BODY_25 and MPI-15 maps: crossing people, feet, cut people; every
part must join the person it was drawn for (the skeleton is data: the same decoder)."""

from __future__ import annotations

import numpy as np
import pytest

from pafpose.decode import DecodeParams, decode
from pafpose.layout import OPENPOSE_GROUPING, OPENPOSE_MPI_GROUPING
from pafpose.presets import decode_params, get_preset
from pafpose.skeleton import BODY_25, MPI_15, Skeleton

from .decode_maps import SEED_TOL, H, W, expected_xy, match, person_of, render

#: The settings the estimator uses for these models: the seed's decoder, and the default
#: (balanced) pipeline with OpenPose's grouping thresholds of each model.
SETTINGS = {
    "seed": {BODY_25: DecodeParams(), MPI_15: DecodeParams()},
    "balanced+openpose": {
        BODY_25: decode_params(get_preset("balanced"), OPENPOSE_GROUPING),
        MPI_15: decode_params(get_preset("balanced"), OPENPOSE_MPI_GROUPING),
    },
}
SKELETONS = [pytest.param(BODY_25, id="body25"), pytest.param(MPI_15, id="mpi15")]


@pytest.fixture(params=list(SETTINGS))
def setting(request) -> str:
    return request.param


def _decode_and_check(truth: list[np.ndarray], skeleton: Skeleton, params: DecodeParams):
    """Decode the rendered people; each found person is one drawn person, with exactly the
    drawn (not NaN) parts, each where it was drawn (within the decoder's quantisation)."""
    poses = decode(*render(truth, skeleton=skeleton), params, skeleton)
    assert len(poses) == len(truth)
    assert poses.keypoints.shape[1:] == (skeleton.num_parts, 3)
    owners = match(poses, truth)
    assert sorted(owners) == list(range(len(truth)))
    ratio = poses.map_size[0] / W
    for found, owner in zip(poses.keypoints, owners, strict=True):
        drawn = ~np.isnan(truth[owner][:, 0])
        assert (found[:, 2] > 0).tolist() == drawn.tolist(), f"person {owner}: parts differ"
        for p in np.flatnonzero(drawn):
            dist = [np.hypot(*(found[p, :2] - expected_xy(t[p], poses))) for t in truth]
            name = f"person {owner}: {skeleton.parts[p]}"
            assert int(np.nanargmin(dist)) == owner, f"{name} joined the wrong person"
            x, y = truth[owner][p]
            # the seed's smoothing (zero padding) pulls peaks near the border inwards
            border = min(x, y, W - 1 - x, H - 1 - y) < 3 and params.smooth == "seed"
            assert dist[owner] <= (2 * ratio if border else SEED_TOL * 1.5), f"{name} moved"
    return poses


@pytest.mark.parametrize("skeleton", SKELETONS)
def test_two_people_with_crossing_forearms(skeleton, setting):
    a, b = person_of(skeleton, 14.0, 25.0), person_of(skeleton, 36.0, 25.0)
    # both right forearms (the same limb type, the same PAF channels) cross in an X
    elbow, wrist = skeleton.index("RElbow"), skeleton.index("RWrist")
    a[elbow], a[wrist] = (20.0, 17.0), (29.0, 26.0)
    b[elbow], b[wrist] = (29.0, 17.0), (20.0, 26.0)
    _decode_and_check([a, b], skeleton, SETTINGS[setting][skeleton])


def _move_right_foot(kp: np.ndarray, knee: tuple[float, float], ankle: tuple[float, float]):
    """Put a BODY_25 person's right knee and ankle elsewhere; the foot follows the ankle."""
    shift = np.asarray(ankle) - kp[BODY_25.index("RAnkle")]
    for name in ("RBigToe", "RSmallToe", "RHeel"):
        kp[BODY_25.index(name)] += shift
    kp[BODY_25.index("RKnee")], kp[BODY_25.index("RAnkle")] = knee, ankle


def test_body25_crossing_shins_keep_each_persons_feet(setting):
    a, b = person_of(BODY_25, 20.0, 25.0), person_of(BODY_25, 34.0, 25.0)
    # the right shins cross in an X: each right foot lands beside the other person (positions
    # off the cell centres, so no two smoothed pixels tie)
    _move_right_foot(a, (23.13, 31.21), (31.27, 38.09))
    _move_right_foot(b, (31.18, 31.06), (23.22, 38.14))
    poses = _decode_and_check([a, b], BODY_25, SETTINGS[setting][BODY_25])
    assert (poses.keypoints[:, 19:25, 2] > 0).all()  # both people have their six foot points


def test_body25_feet_of_two_people_side_by_side(setting):
    # 9 cells apart: A's left toes and B's right toes almost touch
    a, b = person_of(BODY_25, 20.5, 24.0), person_of(BODY_25, 29.5, 24.0)
    _decode_and_check([a, b], BODY_25, SETTINGS[setting][BODY_25])


@pytest.mark.parametrize("skeleton", SKELETONS)
def test_person_cut_by_the_bottom_border(skeleton, setting):
    kp = person_of(skeleton, 27.0, 36.0)  # ankles (and feet) below the 46-row map
    kp[kp[:, 1] > H - 0.5] = np.nan
    assert np.isnan(kp[:, 0]).any() and not np.isnan(kp[skeleton.index("RKnee")]).any()
    other = person_of(skeleton, 9.0, 22.0, 0.8)
    _decode_and_check([kp, other], skeleton, SETTINGS[setting][skeleton])


@pytest.mark.parametrize("skeleton", SKELETONS)
def test_person_cut_by_the_right_border(skeleton, setting):
    kp = person_of(skeleton, W - 3.0, 24.0)  # the left arm (and ear) off the right edge
    kp[kp[:, 0] > W - 0.5] = np.nan
    assert np.isnan(kp[skeleton.index("LWrist")]).all()
    _decode_and_check([kp, person_of(skeleton, 18.0, 24.0)], skeleton,
                      SETTINGS[setting][skeleton])
