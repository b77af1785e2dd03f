"""pafpose: real-time multi-person 2D pose estimation (heatmaps + PAFs) on a plain CPU."""

from __future__ import annotations

from . import jit  # noqa: F401  (first: sets numba's cache folder)
from .decode import DecodeParams, decode
from .draw import draw_humans
from .estimator import PoseEstimator, Result
from .human import BodyPart, Human, openpose_json
from .layout import NetworkLayout
from .models.resolve import resolve_model as load_model
from .skeleton import (
    BODY_25,
    COCO17_NAMES,
    LIMBS,
    MPI_15,
    OPENPOSE_18,
    PARTS,
    Skeleton,
    get_skeleton,
)
from .track import Person, Tracker
from .video import iter_poses, open_source, process_video

__version__ = "0.1.0"

__all__ = [
    "COCO17_NAMES", "LIMBS", "PARTS", "BodyPart", "DecodeParams", "Human", "PoseEstimator",
    "Result", "decode", "draw_humans", "load_model", "openpose_json",
]
__all__ += ["Person", "Tracker", "iter_poses", "open_source", "process_video"]
__all__ += ["BODY_25", "MPI_15", "OPENPOSE_18", "NetworkLayout", "Skeleton", "get_skeleton"]
