"""Keypoint layouts as data: OPENPOSE_18 matches the module constants; layouts are checked."""

from __future__ import annotations

import dataclasses

import pytest

from pafpose import skeleton as sk
from pafpose.skeleton import OPENPOSE_18, Skeleton


def test_openpose_18_is_built_from_the_module_constants():
    s = OPENPOSE_18
    assert s.parts == sk.PARTS and s.limbs == sk.LIMBS and s.limb_pafs == sk.LIMB_PAF_CHANNELS
    assert s.limbs_starting_person == sk.NUM_LIMBS_STARTING_PERSON == 17
    assert s.flip == sk.FLIP_PARTS and s.drawn_limbs == sk.DRAWN_LIMBS
    assert s.coco17 == sk.COCO17_FROM_OPENPOSE18 and s.colors == sk.PART_COLORS
    assert (s.num_parts, s.num_heatmaps, s.num_limbs, s.num_pafs) == (18, 19, 19, 38)
    assert (sk.NUM_PARTS, sk.NUM_HEATMAPS, sk.NUM_PAFS) == (18, 19, 38)
    assert s.index("Neck") == 1 and s.index("LEar") == 17
    with pytest.raises(ValueError, match="no part 'Head'"):
        s.index("Head")


def test_skeleton_is_frozen_and_hashable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        OPENPOSE_18.name = "other"  # type: ignore[misc]
    assert {OPENPOSE_18: 1}[dataclasses.replace(OPENPOSE_18)] == 1


@pytest.mark.parametrize("change, message", [
    ({"parts": ("Nose",) * 18}, "distinct"),
    ({"limbs": ((1, 2),) * 18 + ((1, 18),)}, "limb"),
    ({"limbs": ((1, 1),) + OPENPOSE_18.limbs[1:]}, "limb"),
    ({"limb_pafs": OPENPOSE_18.limb_pafs[:-1]}, "PAF channel pair per limb"),
    ({"limb_pafs": ((0, 0),) + OPENPOSE_18.limb_pafs[1:]}, "PAF channels"),
    ({"limbs_starting_person": 20}, "limbs_starting_person"),
    ({"flip": (1,) + OPENPOSE_18.flip[1:]}, "flip"),
    ({"coco17": OPENPOSE_18.coco17[:-1]}, "coco17"),
    ({"coco17": (18,) + OPENPOSE_18.coco17[1:]}, "coco17"),
    ({"colors": OPENPOSE_18.colors[:-1]}, "colour"),
])
def test_inconsistent_layouts_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(OPENPOSE_18, **change)


def test_a_small_layout_derives_its_channel_counts():
    s = Skeleton(
        name="pair", parts=("A", "B"), limbs=((0, 1),), limb_pafs=((0, 1),),
        limbs_starting_person=1, flip=(1, 0), drawn_limbs=((0, 1),),
        coco17=(-1,) * 17, colors=((0, 0, 0), (255, 255, 255)), background=False,
    )
    assert (s.num_parts, s.num_heatmaps, s.num_limbs, s.num_pafs) == (2, 2, 1, 2)
