"""Drawing people with their ids (the video's annotation)."""

from __future__ import annotations

import numpy as np

from pafpose.draw import annotate, id_color
from pafpose.human import Human
from pafpose.track import Person


def a_person(track_id: int | None) -> Person:
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[0] = (100, 80, 0.9)  # nose
    keypoints[1] = (100, 120, 0.9)  # neck
    keypoints[2] = (80, 120, 0.8)  # right shoulder
    keypoints[8] = (90, 200, 0.7)  # right hip
    return Person(track_id, Human(keypoints, 0.8, (200, 240)))


def test_id_colors_are_stable_and_distinct():
    colors = [id_color(i) for i in range(1, 11)]
    assert colors == [id_color(i) for i in range(1, 11)]
    assert len(set(colors)) == 10
    assert all(isinstance(c, int) and 0 <= c <= 255 for color in colors for c in color)


def test_annotate_draws_ids_above_heads_and_the_fps():
    image = np.zeros((240, 200, 3), np.uint8)
    without_id = annotate(image, [a_person(None)])
    with_id = annotate(image, [a_person(5)])
    assert not image.any()  # a copy
    changed = np.argwhere((with_id != without_id).any(axis=2))
    assert len(changed) and changed[:, 0].max() < 80  # the id's label is above the head
    with_fps = annotate(image, [a_person(5)], fps=12.5)
    assert (with_fps[:40, :80] != with_id[:40, :80]).any()
    assert annotate(image, [a_person(5)], copy=False) is image
