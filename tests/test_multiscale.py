"""Multi-scale and flip: views, mirrored maps, resampling onto the canvas, fusion."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from pafpose import PoseEstimator
from pafpose.decode import decode
from pafpose.errors import InputError
from pafpose.multiscale import (
    FLIP_HEATMAP_CHANNELS,
    FLIP_PAF_CHANNELS,
    FLIP_PAF_SIGNS,
    canvas_size,
    cubic_matrix,
    flip_maps,
    flip_permutations,
    fuse,
    resample,
    scale_views,
)
from pafpose.preprocess import View, prepare, to_image_coords
from pafpose.skeleton import FLIP_PARTS, LIMB_PAF_CHANNELS, LIMBS

# ---- multi-scale and flip on real maps -----------------------------------------------------


def _mirror(humans, width):
    """OpenPose-18 keypoints of people as seen in the mirrored image, sorted by nose x."""
    out = []
    for h in humans:
        k = h.keypoints[list(FLIP_PARTS)].copy()
        k[:, 0] = np.where(k[:, 2] > 0, width - 1 - k[:, 0], 0)
        out.append(k)
    return out


@pytest.mark.parametrize("flip, tol", [(True, 0.05), (False, 11.0)])
def test_flipped_image_gives_mirrored_people(thin_pb, astronaut, flip, tol):
    """With flip averaging the result is mirror-symmetric by construction (to float
    rounding); without it the network itself decides: its confident parts agree within a
    stride-8 cell of the input (8 x 512/368 = 11 image pixels)."""
    est = PoseEstimator("mobilenet_thin", flip=flip, progress=False)
    plain = est.inference(astronaut)
    mirrored = est.inference(np.ascontiguousarray(astronaut[:, ::-1]))
    assert len(plain) == len(mirrored) == 1
    want = _mirror(mirrored, astronaut.shape[1])[0]
    got = plain[0].keypoints
    both = (got[:, 2] > 0) & (want[:, 2] > 0)
    assert both.sum() >= 8 and (got[:, 2] > 0).sum() - both.sum() <= 1
    sure = both if flip else both & (got[:, 2] > 0.3) & (want[:, 2] > 0.3)
    assert sure.sum() >= 6
    assert np.abs(got[sure, :2] - want[sure, :2]).max() <= tol
    assert np.isclose(plain[0].score, mirrored[0].score, atol=0.05 if flip else 0.2)


def test_one_scale_on_the_canvas_equals_single_scale(estimator, astronaut):
    """Resampling one view onto the canvas is the decoder's cubic upsampling, exactly."""
    single = estimator.inference(astronaut)
    image_size = (astronaut.shape[1], astronaut.shape[0])
    p = estimator.preset
    base, views = scale_views(image_size, p.resize, p.size, (1.0,), False)
    assert views == [base]
    maps = estimator.network(prepare(astronaut, base.content_size, p.interpolation))
    canvas = canvas_size(base, estimator.decode_params.upsample)
    heat, paf = fuse([maps], views, base, canvas)
    poses = decode(heat, paf, dataclasses.replace(estimator.decode_params, upsample=1.0))
    kp = to_image_coords(poses.keypoints, poses.map_size, base, p.coords)
    assert len(kp) == len(single) == 1
    np.testing.assert_allclose(kp[0], single[0].keypoints, atol=1e-3)
    # and through the estimator: two identical scales take the multi-view path, same people
    twice = PoseEstimator("mobilenet_thin", scales=(1.0, 1.0), precision=estimator.precision,
                          progress=False)
    result = twice.run(astronaut)
    np.testing.assert_allclose(result.humans[0].keypoints, single[0].keypoints, atol=1e-3)
    assert result.heatmaps.shape[1:] == (92, 92)  # the canvas: 368 / 4, cropped to the image


def test_multiscale_and_flip_find_the_astronaut(thin_pb, astronaut):
    est = PoseEstimator("mobilenet_thin", scales=(0.5, 1.0, 1.5), flip=True, progress=False)
    humans = est.inference(astronaut)
    assert len(humans) == 1
    nose, reye, leye = humans[0].keypoints[[0, 14, 15]]
    assert np.hypot(*(nose[:2] - (222, 125))) < 10
    assert reye[0] < nose[0] < leye[0]


@pytest.mark.parametrize("shape, r", [((7, 9), 2), ((5, 6), 4), ((4, 3), 3)])
# ---- unit tests on synthetic input ---------------------------------------------------------


def test_cubic_matrix_is_cv2_resize(shape, r):
    rng = np.random.default_rng(0)
    src = rng.random(shape, dtype=np.float32)
    h, w = shape
    ay = cubic_matrix((np.arange(h * r) + 0.5) / r - 0.5, h)
    ax = cubic_matrix((np.arange(w * r) + 0.5) / r - 0.5, w)
    ref = cv2.resize(src, (w * r, h * r), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(ay @ src @ ax.T, ref, atol=1e-5)


def test_flip_maps_swaps_sides_and_negates_x():
    heat = np.zeros((19, 4, 10), np.float32)
    pafs = np.zeros((38, 4, 10), np.float32)
    heat[2, 1, 3] = 1.0  # a right shoulder at column 3
    heat[18] = 0.5
    cx, cy = LIMB_PAF_CHANNELS[LIMBS.index((1, 2))]  # neck -> right shoulder
    pafs[cx, 1, 3], pafs[cy, 1, 3] = -0.6, 0.8
    fh, fp = flip_maps(heat, pafs)
    assert fh[5, 1, 6] == 1.0 and fh[2].sum() == 0  # now a left shoulder at column 6
    np.testing.assert_array_equal(fh[18], heat[18])
    mx, my = LIMB_PAF_CHANNELS[LIMBS.index((1, 5))]  # neck -> left shoulder
    assert (fp[mx, 1, 6], fp[my, 1, 6]) == (0.6, 0.8)
    assert np.count_nonzero(fp) == 2
    back_h, back_p = flip_maps(fh, fp)
    np.testing.assert_array_equal(back_h, heat)
    np.testing.assert_array_equal(back_p, pafs)


def test_resample_of_a_mirrored_view_mirrors_back():
    view = View((64, 32), (64, 32))
    maps = np.random.default_rng(1).random((57, 4, 8), dtype=np.float32)
    flipped = dataclasses.replace(view, flip=True)
    out = resample(maps[:, :, ::-1], flipped, view, (8, 4))
    np.testing.assert_allclose(out, maps, atol=1e-6)
    # a perfectly mirror-equivariant network: the mirrored image's maps are flip_maps(maps)
    mirrored = np.concatenate(flip_maps(maps[:19], maps[19:]))
    heat, paf = fuse([maps, mirrored], [view, flipped], view, (8, 4))
    np.testing.assert_allclose(np.concatenate([heat, paf]), maps, atol=1e-6)


def test_flip_permutations_of_a_skeleton():
    heat, paf, sign = flip_permutations(FLIP_PARTS, LIMBS, LIMB_PAF_CHANNELS)
    np.testing.assert_array_equal(heat, FLIP_HEATMAP_CHANNELS)
    np.testing.assert_array_equal(paf, FLIP_PAF_CHANNELS)
    np.testing.assert_array_equal(sign, FLIP_PAF_SIGNS)
    assert heat[-1] == len(FLIP_PARTS)  # the background stays
    np.testing.assert_array_equal(heat[heat], np.arange(len(heat)))  # mirroring twice: identity
    np.testing.assert_array_equal(paf[paf], np.arange(len(paf)))
    # a two-part, one-limb skeleton whose parts are each other's mirror
    heat, paf, sign = flip_permutations((1, 0), ((0, 1), (1, 0)), ((0, 1), (2, 3)))
    assert heat.tolist() == [1, 0, 2] and paf.tolist() == [2, 3, 0, 1]
    assert sign.tolist() == [-1, 1, -1, 1]


def test_bad_scales_are_input_errors():
    with pytest.raises(InputError, match="scales must be positive"):
        scale_views((640, 480), "height", 368, (1.0, float("nan")), False)
