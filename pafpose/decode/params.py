"""Decoder settings and results: DecodeParams (validated on creation), Poses, Peaks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["SMOOTH_MODES", "UPSAMPLE_METHODS", "DecodeParams", "Peaks", "Poses"]

UPSAMPLE_METHODS: tuple[str, ...] = ("area", "cubic", "linear")
SMOOTH_MODES: tuple[str, ...] = ("seed", "none")


@dataclass(frozen=True)
class DecodeParams:
    """Decoder settings; the defaults reproduce tf-pose-estimation exactly."""

    #: Upsampling factor of the maps (the seed's ``resize_out_ratio``); 1.0 = none.
    upsample: float = 4.0
    #: "area" (seed: TF resize_area, pixel replication for integer factors), "cubic", "linear".
    upsample_method: str = "area"
    #: "seed": the seed's Gaussian smoothing of the upsampled heatmaps; "none": no smoothing
    #: (then NMS keeps one peak per plateau, since replicated maps are made of plateaus).
    smooth: str = "seed"
    #: Seed Smoother filter size (``Smoother(..., 25, 3.0)``).
    smooth_size: int = 25
    #: Seed Smoother "sigma": really the half-width of the normal-CDF grid (``nsig``).
    smooth_nsig: float = 3.0
    #: NMS window (the seed's 3x3 max pool); odd.
    nms_window: int = 3
    #: Quadratic sub-pixel peak fit on the NMS map (not in the seed).
    refine: bool = False
    #: A peak needs NMS-map value > this (seed THRESH_HEAT).
    heat_threshold: float = 0.05
    #: A PAF sample counts when PAF . unit > this (seed THRESH_VECTOR_SCORE).
    paf_threshold: float = 0.05
    #: Samples along a candidate limb (seed STEP_PAF).
    paf_samples: int = 10
    #: Samples above paf_threshold needed (seed: THRESH_VECTOR_CNT1 = 6, strictly more).
    paf_min_count: int = 7
    #: Limb length penalty min(0, ratio * map_height / length - 1) (the seed's 0.5).
    limb_length_ratio: float = 0.5
    #: A person needs at least this part count (seed THRESH_PART_CNT).
    min_parts: int = 4
    #: A person needs score >= this (seed THRESH_HUMAN_SCORE).
    min_score: float = 0.3
    #: Merge two partial people that share no part when a limb joins them (OpenPose's rule).
    #: The compiled seed never merges: its ``membership`` flag is uninitialised and optimising
    #: compilers fold the merge branch away, so False is the seed's behaviour.
    merge_disjoint: bool = False
    #: Join a person without a neck (in small people: a shoulder, its arm and the ear) to the
    #: person whose neck lies within this many cells of the given maps of its shoulder and who
    #: has none of its parts. There the shoulder's peak sits on the neck's, a limb too short
    #: for the PAF to give a direction, so the seed's grouping leaves the arm as a "person" of
    #: its own. 0 = never (the seed).
    attach_cells: float = 0.0
    #: Peaks kept per part, the strongest (by the value NMS sees); OpenPose keeps
    #: POSE_MAX_PEOPLE = 127. Bounds the grouping's work on any map (all ones, noise).
    max_peaks: int = 127

    def __post_init__(self) -> None:
        """Validate the settings."""
        if not (math.isfinite(self.upsample) and self.upsample > 0):
            raise InputError(f"upsample must be a positive number, got {self.upsample!r}")
        if self.upsample_method not in UPSAMPLE_METHODS:
            raise InputError(
                f"upsample_method must be one of {UPSAMPLE_METHODS}, got {self.upsample_method!r}"
            )
        if self.smooth not in SMOOTH_MODES:
            raise InputError(f"smooth must be one of {SMOOTH_MODES}, got {self.smooth!r}")
        if self.smooth_size < 1 or not self.smooth_nsig > 0:
            raise InputError("smooth_size must be >= 1 and smooth_nsig > 0")
        if self.nms_window < 1 or self.nms_window % 2 == 0:
            raise InputError(f"nms_window must be a positive odd number, got {self.nms_window}")
        if self.max_peaks < 1:
            raise InputError(f"max_peaks must be >= 1, got {self.max_peaks}")
        if self.paf_samples < 1:
            raise InputError(f"paf_samples must be >= 1, got {self.paf_samples}")
        if not (math.isfinite(self.attach_cells) and self.attach_cells >= 0):
            raise InputError(f"attach_cells must be >= 0, got {self.attach_cells!r}")
        for name in ("heat_threshold", "paf_threshold", "limb_length_ratio", "min_score"):
            if not math.isfinite(getattr(self, name)):
                raise InputError(f"{name} must be finite")


@dataclass
class Poses:
    """People found in one set of maps."""

    #: (N, parts, 3) float32: x, y in upsampled-map pixels (column, row) and score; missing = 0.
    keypoints: np.ndarray
    #: (N,) float32 person scores, as the seed reports them (human.score).
    scores: np.ndarray
    #: (width, height) of the upsampled map the coordinates refer to.
    map_size: tuple[int, int]

    def __len__(self) -> int:
        """Number of people."""
        return int(self.scores.shape[0])


@dataclass
class Peaks:
    """Heatmap peaks (part candidates), ordered by part, then row, then column, as the seed."""

    #: (M,) int64 part index of each peak.
    parts: np.ndarray
    #: (M,) float32 column in upsampled-map pixels (sub-pixel when refining).
    xs: np.ndarray
    #: (M,) float32 row in upsampled-map pixels (sub-pixel when refining).
    ys: np.ndarray
    #: (M,) float32 value of the upsampled, unsmoothed heatmap at the (integer) peak.
    scores: np.ndarray
    #: (width, height) of the upsampled map.
    map_size: tuple[int, int]
