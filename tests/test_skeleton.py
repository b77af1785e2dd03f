"""Keypoint layouts as data: OPENPOSE_18 matches the module constants; layouts are checked;
BODY_25 and MPI-15 match OpenPose's published facts; flips mirror maps."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pafpose import skeleton as sk
from pafpose.errors import UnknownNameError
from pafpose.multiscale import flip_maps
from pafpose.skeleton import OPENPOSE_18, Skeleton

from .conftest import SHARED, need
from .decode_maps import W, person_of, render


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


# --------------------------------------------------------------------------------------------
# BODY_25 and MPI-15: our tables against OpenPose's published facts
# --------------------------------------------------------------------------------------------

FACTS = SHARED / "models" / "openpose" / "body_models.json"


@pytest.mark.parametrize("key, skeleton", [("BODY_25", sk.BODY_25), ("MPI_15", sk.MPI_15),
                                           ("COCO_18", OPENPOSE_18)])
def test_tables_match_openposes_published_layouts(key, skeleton):
    facts = json.loads(need(FACTS).read_text())[key]
    assert skeleton.parts == tuple(facts["keypoints"])
    assert (skeleton.num_heatmaps, skeleton.num_pafs) == (facts["heatmap_channels"],
                                                          facts["paf_channels"])
    published = {(limb["a"], limb["b"]): ((limb["paf_x"], limb["paf_y"]), limb["drawn"])
                 for limb in facts["limbs"]}
    ours = {limb: (pafs, limb in skeleton.drawn_limbs)
            for limb, pafs in zip(skeleton.limbs, skeleton.limb_pafs, strict=True)}
    assert ours == published
    # the limbs that may not start a person are exactly the ear-shoulder ones (none in MPI)
    starting = skeleton.limbs[skeleton.limbs_starting_person:]
    assert set(starting) == {limb for limb, (_, drawn) in published.items() if not drawn}


def test_coco17_maps_match_openposes_and_mpi_has_no_face():
    facts = json.loads(need(FACTS).read_text())["to_coco17"]
    assert sk.BODY_25.coco17 == tuple(facts["from_BODY_25"])
    assert OPENPOSE_18.coco17 == tuple(facts["from_COCO_18"])
    for s in (sk.BODY_25, sk.MPI_15, OPENPOSE_18):  # the same body part under each name
        for name, part in zip(sk.COCO17_NAMES, s.coco17, strict=True):
            if part >= 0:
                side = {"left": "L", "right": "R"}.get(name.split("_")[0], "")
                assert s.parts[part].lower() == (side + name.split("_")[-1]).lower()
    assert sk.MPI_15.coco17[:5] == (-1,) * 5 and -1 not in sk.MPI_15.coco17[5:]


@pytest.mark.parametrize("skeleton", [sk.BODY_25, sk.MPI_15, OPENPOSE_18])
def test_flip_partners_mirror_rendered_maps(skeleton):
    """The maps of a mirrored person are flip_maps of the person's maps (left/right channels
    and the x component of mirrored limbs swapped)."""
    for a, b in enumerate(skeleton.flip):
        name, partner = skeleton.parts[a], skeleton.parts[b]
        assert partner == name or {name[0], partner[0]} == {"L", "R"} and name[1:] == partner[1:]
    kp = person_of(skeleton, 20.3, 23.7)
    mirrored = kp[list(skeleton.flip)] * (-1, 1) + (W - 1, 0)
    heat, paf = flip_maps(*render([kp], skeleton=skeleton), skeleton)
    heat2, paf2 = render([mirrored], skeleton=skeleton)
    assert np.abs(heat - heat2).max() < 1e-5 and np.abs(paf - paf2).max() < 1e-5


def test_lookup_by_name_colours_and_short_repr():
    assert sk.get_skeleton("body25") is sk.BODY_25 and sk.get_skeleton("mpi15") is sk.MPI_15
    assert sk.get_skeleton("openpose18") is OPENPOSE_18
    with pytest.raises(UnknownNameError, match="unknown skeleton 'coco'; known: openpose18, "
                                               "body25, mpi15"):
        sk.get_skeleton("coco")
    assert sk.hue_ring(18) == sk.PART_COLORS  # the seed's palette is the 18-step ring
    assert len(set(sk.BODY_25.colors)) == 25 and len(set(sk.MPI_15.colors)) == 15
    assert repr(sk.BODY_25) == "Skeleton('body25': 25 parts, 26 limbs)"
