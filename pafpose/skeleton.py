"""Keypoint layouts as plain data: OpenPose-18 parts, limbs, PAF channels, COCO-17, colours."""

from __future__ import annotations

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
