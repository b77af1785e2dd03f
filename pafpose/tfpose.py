"""Drop-in names of tf-pose-estimation: import from here instead of `tf_pose.estimator`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .draw import draw_humans as _draw_humans
from .estimator import PoseEstimator
from .human import BodyPart, Human

__all__ = ["BodyPart", "Human", "TfPoseEstimator", "get_graph_path", "model_wh"]


def get_graph_path(model_name: str) -> str:
    """The seed's helper: a model name is accepted as it is (fetched on first use)."""
    return model_name


def model_wh(resolution_str: str) -> tuple[int, int]:
    """Parse '432x368' into (432, 368), as the seed does."""
    width, height = map(int, resolution_str.split("x"))
    if width % 16 != 0 or height % 16 != 0:
        raise ValueError(f"width and height should be multiples of 16, got {resolution_str}")
    return width, height


class TfPoseEstimator:
    """The seed's estimator class and method names over PoseEstimator (no TensorFlow)."""

    def __init__(
        self,
        graph_path: str | Path,
        target_size: tuple[int, int] = (320, 240),
        tf_config: object = None,
        trt_bool: bool = False,
    ) -> None:
        self.target_size = target_size
        self._estimator = PoseEstimator(graph_path, target_size=target_size, preset="seed")
        self.heatMat: np.ndarray | None = None
        self.pafMat: np.ndarray | None = None

    def inference(
        self, npimg: np.ndarray, resize_to_default: bool = True, upsample_size: float = 1.0
    ) -> list[Human]:
        """Find people; like the seed, heatMat / pafMat then hold the upsampled maps (HWC)."""
        result = self._estimator.run(npimg, resize_to_default, upsample_size)
        humans, heat, paf = result.humans, result.heatmaps, result.pafs
        if heat is not None and paf is not None:
            size = (round(heat.shape[2] * upsample_size), round(heat.shape[1] * upsample_size))
            nearest = cv2.INTER_NEAREST  # integer ratios: pixel replication, as TF's area resize
            self.heatMat = cv2.resize(heat.transpose(1, 2, 0), size, interpolation=nearest)
            self.pafMat = cv2.resize(paf.transpose(1, 2, 0), size, interpolation=nearest)
        return humans

    @staticmethod
    def draw_humans(
        npimg: np.ndarray, humans: Sequence[Human], imgcopy: bool = False
    ) -> np.ndarray:
        """Draw skeletons on the image (in place unless imgcopy)."""
        return _draw_humans(npimg, humans, copy=imgcopy)
