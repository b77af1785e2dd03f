"""People found in an image, and their conversions (COCO-17, OpenPose JSON, seed-style parts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .skeleton import OPENPOSE_18, Skeleton


@dataclass(frozen=True)
class BodyPart:
    """One part as the seed exposes it: x, y normalised to the image (0..1), and a score."""

    uidx: str
    part_idx: int
    x: float
    y: float
    score: float
    skeleton: Skeleton = field(default=OPENPOSE_18, repr=False, compare=False)

    def get_part_name(self) -> str:
        """The name of this part in its skeleton (OpenPose-18: "Nose", "Neck", ...)."""
        return self.skeleton.parts[self.part_idx]


@dataclass
class Human:
    """A person: keypoints of its skeleton's parts in image pixels (x, y, score; score 0 means
    missing); OpenPose-18 unless the model declares another skeleton (BODY_25, MPI-15)."""

    keypoints: np.ndarray  # (parts, 3) float32: (18, 3) for OpenPose-18
    score: float
    image_size: tuple[int, int]  # (width, height) of the image the pixels refer to
    #: The keypoint layout: part names, limbs, COCO-17 map.
    skeleton: Skeleton = field(default=OPENPOSE_18, repr=False)

    @property
    def xy(self) -> np.ndarray:
        """(parts, 2) pixel coordinates (x, y); missing parts are (0, 0)."""
        return self.keypoints[:, :2]

    @property
    def conf(self) -> np.ndarray:
        """(parts,) part scores; 0 marks a missing part."""
        return self.keypoints[:, 2]

    @property
    def xy_normalized(self) -> np.ndarray:
        """(parts, 2) coordinates divided by the image width and height."""
        return self.keypoints[:, :2] / np.asarray(self.image_size, dtype=np.float32)

    @property
    def body_parts(self) -> dict[int, BodyPart]:
        """Found parts by part index, seed style (normalised x, y)."""
        w, h = self.image_size
        return {
            i: BodyPart(f"{i}", i, float(x) / w, float(y) / h, float(s), self.skeleton)
            for i, (x, y, s) in enumerate(self.keypoints)
            if s > 0
        }

    @property
    def num_parts(self) -> int:
        """How many parts were found."""
        return int(np.count_nonzero(self.keypoints[:, 2] > 0))

    def bbox(self) -> tuple[float, float, float, float]:
        """(x, y, width, height) around the found parts."""
        found = self.keypoints[self.keypoints[:, 2] > 0, :2]
        if len(found) == 0:
            return (0.0, 0.0, 0.0, 0.0)
        x0, y0 = found.min(axis=0)
        x1, y1 = found.max(axis=0)
        return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))

    def to_coco17(self) -> np.ndarray:
        """(17, 3) COCO-17 keypoints: x, y in pixels and score (0 when missing or when the
        skeleton has no such part, as MPI-15 has no eyes and ears)."""
        source = np.asarray(self.skeleton.coco17)
        coco = self.keypoints[np.maximum(source, 0)].copy()
        coco[source < 0] = 0
        return coco

    def to_openpose(self) -> dict[str, Any]:
        """One OpenPose JSON person: pose_keypoints_2d as parts x (x, y, score) in the
        skeleton's order (18 x 3 values, 25 x 3 for BODY_25), zeros when missing."""
        return {"pose_keypoints_2d": [round(float(v), 3) for v in self.keypoints.reshape(-1)]}

    def to_coco_result(self, image_id: int | str, round_coords: bool = False) -> dict[str, Any]:
        """A COCO keypoint result entry (visibility 2 for found parts, zeros when missing)."""
        values: list[float] = []
        for x, y, s in self.to_coco17():
            if s <= 0:
                values += [0, 0, 0]
            elif round_coords:
                values += [int(x + 0.5), int(y + 0.5), 2]
            else:
                values += [round(float(x), 2), round(float(y), 2), 2]
        return {"image_id": image_id, "category_id": 1, "keypoints": values,
                "score": round(float(self.score), 5)}

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-ready description: the skeleton's keypoints under its name
        ("openpose18", "body25", "mpi15") and COCO-17, pixel coordinates and scores."""
        return {
            "score": round(float(self.score), 5),
            self.skeleton.name: [[round(float(v), 2) for v in p] for p in self.keypoints],
            "coco17": [[round(float(v), 2) for v in p] for p in self.to_coco17()],
            "bbox": [round(v, 2) for v in self.bbox()],
        }


def openpose_json(humans: list[Human]) -> dict[str, Any]:
    """The OpenPose JSON document of one image: {"version": 1.3, "people": [...]}."""
    return {"version": 1.3, "people": [h.to_openpose() for h in humans]}


def humans_from_keypoints(
    keypoints: np.ndarray, scores: np.ndarray, image_size: tuple[int, int],
    skeleton: Skeleton = OPENPOSE_18,
) -> list[Human]:
    """Wrap (N, parts, 3) pixel keypoints and (N,) scores as Human objects of a skeleton."""
    assert keypoints.ndim == 3 and keypoints.shape[1:] == (skeleton.num_parts, 3)
    return [
        Human(np.asarray(k, dtype=np.float32), float(s), image_size, skeleton)
        for k, s in zip(keypoints, scores, strict=True)
    ]
