"""Human conversions: COCO-17 order, OpenPose JSON layout, seed-style body parts."""

from __future__ import annotations

import json

import numpy as np

from pafpose.human import Human, openpose_json
from pafpose.skeleton import COCO17_FROM_OPENPOSE18, NUM_PARTS


def _human() -> Human:
    kp = np.zeros((NUM_PARTS, 3), np.float32)
    for i in range(NUM_PARTS):
        kp[i] = (10 * i + 1, 5 * i + 2, 0.5 + i / 100)
    kp[3] = 0  # RElbow missing
    return Human(kp, 0.8, (200, 100))


def test_coco17_order_and_missing():
    h = _human()
    coco = h.to_coco17()
    assert coco.shape == (17, 3)
    for k, src in enumerate(COCO17_FROM_OPENPOSE18):
        assert np.array_equal(coco[k], h.keypoints[src])
    result = h.to_coco_result(7)
    # right_elbow (COCO index 8) comes from the missing OpenPose part 3
    assert result["keypoints"][8 * 3: 8 * 3 + 3] == [0, 0, 0]
    assert result["keypoints"][:3] == [1.0, 2.0, 2]  # nose, visible
    assert result["image_id"] == 7 and result["category_id"] == 1


def test_openpose_json_layout():
    doc = openpose_json([_human(), _human()])
    assert doc["version"] == 1.3 and len(doc["people"]) == 2
    flat = doc["people"][0]["pose_keypoints_2d"]
    assert len(flat) == 54 and flat[9:12] == [0.0, 0.0, 0.0]
    json.dumps(doc)


def test_seed_style_body_parts_are_normalised():
    h = _human()
    parts = h.body_parts
    assert 3 not in parts and len(parts) == 17 == h.num_parts
    assert abs(parts[1].x - 11 / 200) < 1e-6 and abs(parts[1].y - 7 / 100) < 1e-6
    assert parts[1].get_part_name() == "Neck"
    x, y, w, hh = h.bbox()
    assert x == 1 and y == 2 and w == 170 and hh == 85
