"""Adaptive zoom: regions around small people, their bounds, and fusing zoomed maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pafpose.multiscale import flip_maps
from pafpose.preprocess import View
from pafpose.skeleton import COCO17_FROM_OPENPOSE18, NUM_HEATMAPS, NUM_PAFS
from pafpose.zoom import ZoomParams, ZoomView, fuse_zoom, person_boxes, zoom_regions

# A 640x480 photo seen at the balanced network height 368: 0.767 network px per image px, so
# a person is small (under 1/3 of 368 network px) below 160 image px.
BASE = View((640, 480), (491, 368))
PARAMS = ZoomParams()


def _box(cx: float, cy: float, h: float) -> list[float]:
    """A standing person's box: half as wide as tall."""
    return [cx - h / 4, cy - h / 2, cx + h / 4, cy + h / 2]


def test_person_boxes_span_the_found_parts():
    kp = np.zeros((2, 18, 3), np.float32)
    kp[0, 0] = (10, 20, 0.9)
    kp[0, 10] = (30, 120, 0.5)
    kp[0, 5] = (500, 500, 0.0)  # not found: ignored
    assert person_boxes(kp).tolist() == [[10, 20, 31, 121], [0, 0, 0, 0]]


def test_small_people_get_a_region_large_ones_do_not():
    small, large = _box(100, 200, 80), _box(400, 240, 300)
    regions = zoom_regions(np.array([small, large]), BASE, PARAMS)
    assert len(regions) == 1
    (r,) = regions
    x0, y0, x1, y1 = r.box
    # the person's box padded by half its height (context) on every side, within the image
    assert (x0, y0, x1, y1) == (40, 120, 160, 280)
    assert r.scale == PARAMS.scale and r.people == 1
    # run at twice the base view's resolution
    ratio = 368 / 480
    assert r.content_size == (round(120 * ratio * 2), round(160 * ratio * 2))
    # a person just under / over the threshold (1/3 of the network height)
    edge = 368 / 3 / ratio
    assert len(zoom_regions(np.array([_box(300, 240, edge - 2)]), BASE, PARAMS)) == 1
    assert zoom_regions(np.array([_box(300, 240, edge + 2)]), BASE, PARAMS) == []
    assert zoom_regions(np.zeros((0, 4)), BASE, PARAMS) == []
    assert zoom_regions(np.zeros((1, 4)), BASE, PARAMS) == []  # a person without parts


def test_regions_are_clipped_to_the_image():
    (r,) = zoom_regions(np.array([_box(20, 40, 60)]), BASE, PARAMS)
    assert r.box[:2] == (0, 0)


def test_overlapping_regions_merge_distant_ones_do_not():
    near = [_box(100, 200, 80), _box(150, 210, 60)]
    far = [_box(550, 100, 60)]
    regions = zoom_regions(np.array(near + far), BASE, PARAMS)
    assert sorted(r.people for r in regions) == [1, 2]
    merged = next(r for r in regions if r.people == 2)
    # the merged region holds both padded boxes
    assert merged.box[0] <= 100 - 20 - 40 and merged.box[2] >= 150 + 15 + 30
    # a chain: A and B apart, C overlapping both
    chain = [_box(100, 100, 60), _box(220, 100, 60), _box(160, 100, 60)]
    assert [r.people for r in zoom_regions(np.array(chain), BASE, PARAMS)] == [3]


def test_count_and_area_are_bounded():
    crowd = np.array([_box(60 + 130 * i, 240, 50) for i in range(5)])  # 5 separate people
    assert len(zoom_regions(crowd, BASE, PARAMS)) == PARAMS.max_regions
    assert len(zoom_regions(crowd, BASE, ZoomParams(max_regions=2))) == 2
    assert zoom_regions(crowd, BASE, ZoomParams(max_regions=0)) == []
    base_area = math.prod(BASE.input_size)
    for max_area in (0.05, 0.2, 1.0):
        regions = zoom_regions(crowd, BASE, ZoomParams(max_area=max_area))
        assert sum(math.prod(r.input_size) for r in regions) <= max_area * base_area
    # a region too large for the area left runs at a lower scale, never under min_scale
    (big,) = zoom_regions(np.array([_box(320, 240, 150)]), BASE, ZoomParams(max_area=0.7))
    assert ZoomParams().min_scale <= big.scale < 2.0
    assert zoom_regions(np.array([_box(320, 240, 150)]), BASE, ZoomParams(max_area=0.05)) == []


def test_smallest_people_come_first():
    people = np.array([_box(100, 240, 140), _box(500, 240, 40)])
    (r,) = zoom_regions(people, BASE, ZoomParams(max_regions=1))
    assert r.box[0] > 320


@pytest.mark.parametrize("bad", [dict(scale=1.0), dict(weight=0.0), dict(min_scale=3.0),
                                 dict(max_area=-1)])
def test_params_are_checked(bad):
    with pytest.raises(ValueError):
        ZoomParams(**bad)


def test_fuse_averages_inside_the_region_and_keeps_the_base_outside():
    canvas = (BASE.input_size[0] // 4, BASE.input_size[1] // 4)  # stride 8, upsampled x2
    heat = np.zeros((NUM_HEATMAPS, canvas[1], canvas[0]), np.float32)
    paf = np.zeros((NUM_PAFS, canvas[1], canvas[0]), np.float32)
    view = ZoomView((200, 100, 400, 300), 2.0, (307, 307), feather=20.0, weight=0.5)
    zoomed = np.ones((NUM_HEATMAPS + NUM_PAFS, 304 // 8 + 1, 304 // 8 + 1), np.float32)
    fuse_zoom(heat, paf, [zoomed], view, BASE)
    to_canvas = canvas[0] / BASE.input_size[0] * 491 / 640  # canvas px per image px
    cx, cy = (int(300 * to_canvas), int(200 * to_canvas))
    assert heat[:, cy, cx] == pytest.approx(0.5) and paf[:, cy, cx] == pytest.approx(0.5)
    assert (heat[:, :int(90 * to_canvas)] == 0).all() and (paf[:, :, -5:] == 0).all()
    # the weight falls towards the crop's edges inside the image
    edge = heat[0, cy, int(205 * to_canvas)]
    assert 0 < edge < 0.25


def test_a_mirrored_region_fuses_as_its_plain_twin():
    """Maps of the mirrored crop, mirrored back with left/right swapped, equal the plain ones:
    fusing both gives what fusing the plain maps alone gives."""
    rng = np.random.default_rng(0)
    # content 304x304 fills its input: the maps cover exactly the crop
    view = ZoomView((200, 100, 400, 300), 2.0, (304, 304), feather=20.0, runs=2)
    plain = rng.random((NUM_HEATMAPS + NUM_PAFS, 38, 38), dtype=np.float32)
    mirrored = np.concatenate(flip_maps(plain[:NUM_HEATMAPS], plain[NUM_HEATMAPS:]))
    canvas = (BASE.input_size[0] // 4, BASE.input_size[1] // 4)
    out = []
    for maps in ([plain], [plain, mirrored]):
        heat = np.zeros((NUM_HEATMAPS, canvas[1], canvas[0]), np.float32)
        paf = np.zeros((NUM_PAFS, canvas[1], canvas[0]), np.float32)
        fuse_zoom(heat, paf, maps, view, BASE)
        out.append((heat, paf))
    np.testing.assert_allclose(out[0][0], out[1][0], atol=1e-5)
    np.testing.assert_allclose(out[0][1], out[1][1], atol=1e-5)
    assert np.abs(out[0][1]).max() > 0.1


def test_a_mirrored_region_costs_twice_its_area():
    person = np.array([_box(320, 240, 100)])
    (plain,) = zoom_regions(person, BASE, ZoomParams())
    (both,) = zoom_regions(person, BASE, ZoomParams(flip=True))
    assert (plain.runs, both.runs) == (1, 2) and plain.box == both.box
    budget = 1.5 * math.prod(plain.input_size) / math.prod(BASE.input_size)
    (shrunk,) = zoom_regions(person, BASE, ZoomParams(flip=True, max_area=budget))
    assert shrunk.scale < 2.0 and 2 * math.prod(shrunk.input_size) <= budget * math.prod(
        BASE.input_size)


# ---- a real photo: small people found better -------------------------------------------------

#: A coco-dev photo of several people under 100 px tall (a street scene).
SMALL_PEOPLE_IMAGE = "000000211325.jpg"
#: COCO's per-keypoint OKS constants (sigmas), in COCO-17 order.
COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87,
                        .87, .89, .89]) / 10


def _oks(annotation: dict, people) -> float:
    """COCO's object keypoint similarity of an annotated person to the best person found."""
    truth = np.array(annotation["keypoints"], np.float64).reshape(17, 3)
    seen = truth[:, 2] > 0
    best = 0.0
    for person in people:
        kp = person.keypoints[list(COCO17_FROM_OPENPOSE18)]
        d2 = ((kp[:, :2] - truth[:, :2]) ** 2).sum(axis=1)
        sim = np.exp(-d2 / (2 * annotation["area"] * (2 * COCO_SIGMAS) ** 2)) * (kp[:, 2] > 0)
        best = max(best, float(sim[seen].mean()))
    return best


def test_small_people_of_a_coco_photo_are_found_better(thin_pb):
    import json

    import cv2

    from pafpose import PoseEstimator

    from .conftest import COCO_DEV, need

    coco = json.loads(need(COCO_DEV / "person_keypoints.json").read_text())
    image = next(i for i in coco["images"] if i["file_name"] == SMALL_PEOPLE_IMAGE)
    small = [a for a in coco["annotations"] if a["image_id"] == image["id"]
             and a["num_keypoints"] >= 8 and a["bbox"][3] < 100]
    assert len(small) >= 2
    photo = cv2.imread(str(COCO_DEV / "images" / SMALL_PEOPLE_IMAGE))
    plain = PoseEstimator("mobilenet_thin", progress=False).run(photo)
    zoomed = PoseEstimator("mobilenet_thin", preset="zoom", progress=False).run(photo)
    assert zoomed.zoom_views
    before = [_oks(a, plain.humans) for a in small]
    after = [_oks(a, zoomed.humans) for a in small]
    # each small person found at least as well, two of them much better (OKS 0.39 -> 0.66,
    # 0.37 -> 0.60 on the default backend)
    assert all(a >= b - 0.02 for a, b in zip(after, before, strict=True)), (before, after)
    assert sum(after) - sum(before) > 0.2, (before, after)
