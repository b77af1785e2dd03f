"""Keypoint layouts as plain data: parts, limbs, PAF channels, COCO-17 maps, flips, colours.

The module-level constants describe OpenPose-18; `Skeleton` holds a whole layout as one value
and is what everything downstream of the network takes. Three layouts: `OPENPOSE_18` (the
tf-pose-estimation models and OpenPose's COCO model), `BODY_25` (OpenPose's body + feet model)
and `MPI_15` (OpenPose's MPI models); `get_skeleton(name)` finds one by its short name.

BODY_25 and MPI-15 restate OpenPose's published layout facts (part order, limb pairs and their
PAF channels, counted from the first PAF channel) in our own tables; the colours are ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownNameError

#: OpenPose-18 part names, in the network's heatmap channel order (channel 18 is the background).
PARTS: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)
NUM_PARTS: int = len(PARTS)
#: Heatmap channels (18 parts + background) and PAF channels (x, y per limb) of the network output.
NUM_HEATMAPS: int = NUM_PARTS + 1
NUM_PAFS: int = 38

#: Limbs as (part_a, part_b); the last two (ear-shoulder) are used for grouping but not drawn.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)
#: PAF channel pair (x, y) of each limb, in the order of LIMBS, within the 38 PAF channels.
LIMB_PAF_CHANNELS: tuple[tuple[int, int], ...] = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5), (6, 7),
    (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27),
)
#: Limbs drawn by draw_humans (all but the two ear-shoulder limbs).
DRAWN_LIMBS: tuple[tuple[int, int], ...] = LIMBS[:17]
#: Only the first 17 limbs may start a new person during grouping (seed rule).
NUM_LIMBS_STARTING_PERSON: int = 17

#: COCO-17 keypoint names and, for each, the OpenPose-18 part it is taken from.
COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO17_FROM_OPENPOSE18: tuple[int, ...] = (
    0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10,
)

#: Left/right partner of every OpenPose-18 part (for horizontal flips).
FLIP_PARTS: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

#: Drawing colours (BGR), one per part, as in the seed.
PART_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)


@dataclass(frozen=True)
class Skeleton:
    """A keypoint layout as data: what the network's channels mean and how parts join.

    Everything downstream of the network (the decoder first) takes one of these instead of
    assuming OpenPose-18: part count, limbs and their PAF channels are read from it.
    """

    #: Short name ("openpose18").
    name: str
    #: Part names, in heatmap channel order.
    parts: tuple[str, ...]
    #: Limbs as (part_a, part_b), in the order the grouping visits them.
    limbs: tuple[tuple[int, int], ...]
    #: PAF channel pair (x, y) of each limb, in the order of `limbs`.
    limb_pafs: tuple[tuple[int, int], ...]
    #: Only the first this many limbs may start a new person during grouping.
    limbs_starting_person: int
    #: Left/right partner of every part (for horizontal flips).
    flip: tuple[int, ...]
    #: Limbs drawn on pictures.
    drawn_limbs: tuple[tuple[int, int], ...]
    #: For each COCO-17 keypoint, the part it is taken from (-1: this layout has none).
    coco17: tuple[int, ...]
    #: Drawing colour (BGR) of each part.
    colors: tuple[tuple[int, int, int], ...]
    #: Whether the heatmaps end with a background channel.
    background: bool = True

    def __post_init__(self) -> None:
        """Check that the layout is consistent (a programming error if not)."""
        n, n_limbs = len(self.parts), len(self.limbs)
        if n < 1 or len(set(self.parts)) != n:
            raise ValueError(f"{self.name}: part names must be distinct and non-empty")
        for a, b in (*self.limbs, *self.drawn_limbs):
            if not (0 <= a < n and 0 <= b < n) or a == b:
                raise ValueError(f"{self.name}: limb ({a}, {b}) is not a pair of parts")
        if len(self.limb_pafs) != n_limbs:
            raise ValueError(f"{self.name}: one PAF channel pair per limb is needed")
        channels = sorted(c for pair in self.limb_pafs for c in pair)
        if channels != list(range(2 * n_limbs)):
            raise ValueError(f"{self.name}: PAF channels must be 0..{2 * n_limbs - 1}, once each")
        if not 0 <= self.limbs_starting_person <= n_limbs:
            raise ValueError(f"{self.name}: limbs_starting_person out of range")
        if len(self.flip) != n or any(self.flip[self.flip[p]] != p for p in range(n)):
            raise ValueError(f"{self.name}: flip must pair every part with its partner")
        if len(self.coco17) != len(COCO17_NAMES) or not all(-1 <= p < n for p in self.coco17):
            raise ValueError(f"{self.name}: coco17 needs one part (or -1) per COCO keypoint")
        if len(self.colors) != n or len(self.drawn_limbs) > n:
            raise ValueError(f"{self.name}: one colour per part is needed (drawn limb k takes "
                             "colour k)")

    def __repr__(self) -> str:
        """A short form: the name and the counts (the tables are in the fields)."""
        return f"Skeleton({self.name!r}: {self.num_parts} parts, {self.num_limbs} limbs)"

    @property
    def num_parts(self) -> int:
        """Number of parts (heatmap channels without the background)."""
        return len(self.parts)

    @property
    def num_heatmaps(self) -> int:
        """Heatmap channels of the network output (parts, then the background if any)."""
        return self.num_parts + int(self.background)

    @property
    def num_limbs(self) -> int:
        """Number of limbs (PAF channel pairs)."""
        return len(self.limbs)

    @property
    def num_pafs(self) -> int:
        """PAF channels of the network output (x, y per limb)."""
        return 2 * len(self.limbs)

    def index(self, part: str) -> int:
        """Channel of the named part (ValueError if this layout has none)."""
        try:
            return self.parts.index(part)
        except ValueError:
            raise ValueError(f"{self.name} has no part {part!r}") from None


#: The OpenPose-18 layout of tf-pose-estimation's models (COCO parts plus the neck).
OPENPOSE_18 = Skeleton(
    name="openpose18",
    parts=PARTS,
    limbs=LIMBS,
    limb_pafs=LIMB_PAF_CHANNELS,
    limbs_starting_person=NUM_LIMBS_STARTING_PERSON,
    flip=FLIP_PARTS,
    drawn_limbs=DRAWN_LIMBS,
    coco17=COCO17_FROM_OPENPOSE18,
    colors=PART_COLORS,
)


def hue_ring(n: int) -> tuple[tuple[int, int, int], ...]:
    """n colours evenly around the saturated hue ring, starting at (255, 0, 0), in the order of
    the seed's palette (hue_ring(18) is PART_COLORS)."""
    colors = []
    for i in range(n):
        pos = round(i * 6 * 255 / n)
        sector, t = divmod(pos, 255)
        colors.append(((255, t, 0), (255 - t, 255, 0), (0, 255, t), (0, 255 - t, 255),
                       (t, 0, 255), (255, 0, 255 - t))[sector])
    return tuple(colors)


#: OpenPose's BODY_25 parts: the 17 COCO points, the neck, the mid-hip and six foot points.
BODY_25_PARTS: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
#: BODY_25 limbs with their PAF channel pair (x, y; within the 52 PAF channels), in grouping
#: order. OpenPose lists the two ear-shoulder limbs before the six foot limbs; here they come
#: last, so that "the first 24 limbs may start a person" excludes exactly them (they only
#: complete a person, as in OpenPose).
_BODY_25_LIMBS: tuple[tuple[int, int, int, int], ...] = (
    (1, 8, 0, 1), (1, 2, 14, 15), (1, 5, 22, 23), (2, 3, 16, 17), (3, 4, 18, 19),
    (5, 6, 24, 25), (6, 7, 26, 27), (8, 9, 6, 7), (9, 10, 2, 3), (10, 11, 4, 5),
    (8, 12, 8, 9), (12, 13, 10, 11), (13, 14, 12, 13), (1, 0, 30, 31), (0, 15, 32, 33),
    (15, 17, 36, 37), (0, 16, 34, 35), (16, 18, 38, 39),
    (14, 19, 40, 41), (19, 20, 42, 43), (14, 21, 44, 45), (11, 22, 46, 47), (22, 23, 48, 49),
    (11, 24, 50, 51),
    (2, 17, 20, 21), (5, 18, 28, 29),  # ear-shoulder: grouping only, not drawn
)

#: OpenPose's BODY_25 layout (heatmaps: 25 parts + background; 52 PAF channels).
BODY_25 = Skeleton(
    name="body25",
    parts=BODY_25_PARTS,
    limbs=tuple((a, b) for a, b, _, _ in _BODY_25_LIMBS),
    limb_pafs=tuple((x, y) for _, _, x, y in _BODY_25_LIMBS),
    limbs_starting_person=24,
    flip=(0, 1, 5, 6, 7, 2, 3, 4, 8, 12, 13, 14, 9, 10, 11, 16, 15, 18, 17, 22, 23, 24, 19, 20,
          21),
    drawn_limbs=tuple((a, b) for a, b, _, _ in _BODY_25_LIMBS[:24]),
    coco17=(0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11),
    colors=hue_ring(25),
)

#: OpenPose's MPI parts (MPII style: the top of the head and the chest; no eyes or ears).
MPI_15_PARTS: tuple[str, ...] = (
    "Head", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip",
    "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "Chest",
)
#: MPI limbs, in grouping order; limb k reads PAF channels (2k, 2k + 1).
_MPI_15_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 14), (14, 8), (8, 9),
    (9, 10), (14, 11), (11, 12), (12, 13),
)

#: OpenPose's MPI layout (heatmaps: 15 parts + background; 28 PAF channels), also its
#: 4-stage model's.
MPI_15 = Skeleton(
    name="mpi15",
    parts=MPI_15_PARTS,
    limbs=_MPI_15_LIMBS,
    limb_pafs=tuple((2 * k, 2 * k + 1) for k in range(len(_MPI_15_LIMBS))),
    limbs_starting_person=len(_MPI_15_LIMBS),
    flip=(0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 14),
    drawn_limbs=_MPI_15_LIMBS,
    coco17=(-1, -1, -1, -1, -1, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10),
    colors=hue_ring(15),
)

#: The layouts by short name (the `pafpose.skeleton` value of a model's ONNX metadata).
SKELETONS: dict[str, Skeleton] = {s.name: s for s in (OPENPOSE_18, BODY_25, MPI_15)}


def get_skeleton(name: str) -> Skeleton:
    """The layout of a short name (openpose18, body25, mpi15); UnknownNameError lists them."""
    try:
        return SKELETONS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown skeleton {name!r}; known: {', '.join(SKELETONS)}") from None
