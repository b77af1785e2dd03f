"""PoseEstimator: preprocess -> network -> decode, and the map from network pixels to the image."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .decode import DecodeParams, Poses, decode
from .human import Human, humans_from_keypoints
from .images import DEFAULT_MAX_PIXELS, check_pixels, to_bgr8
from .models.resolve import resolve_model
from .runtime import Runtime

#: Network inputs are padded to a multiple of this (the network's total stride is 8; 16 keeps
#: every internal resize exact).
PAD_MULTIPLE = 16
STRIDE = 8


def _ceil_to(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A network input and how it maps back to the image."""

    tensor: np.ndarray  # (1, Hp, Wp, 3) float32, raw BGR 0..255
    content_size: tuple[int, int]  # (w, h) of the resized image inside the padded input
    image_size: tuple[int, int]  # (w, h) of the original image


def preprocess(image: np.ndarray, target_size: tuple[int, int] | None) -> Prepared:
    """Resize (cubic, ignoring aspect, as the seed) to target_size or keep the size; pad to 16."""
    h, w = image.shape[:2]
    if target_size is not None and (w, h) != tuple(target_size):
        resized = cv2.resize(image, tuple(target_size), interpolation=cv2.INTER_CUBIC)
    else:
        resized = image
    ch, cw = resized.shape[:2]
    ph, pw = _ceil_to(max(ch, 1), PAD_MULTIPLE), _ceil_to(max(cw, 1), PAD_MULTIPLE)
    tensor = np.zeros((1, ph, pw, 3), np.float32)
    tensor[0, :ch, :cw] = resized
    return Prepared(tensor, (cw, ch), (w, h))


def to_image_coords(poses: Poses, prepared: Prepared) -> np.ndarray:
    """Map decoded keypoints (upsampled-map pixels) to image pixels, the seed's way."""
    kp = poses.keypoints.copy()
    if len(kp) == 0:
        return kp
    map_w, map_h = poses.map_size
    _, ph, pw, _ = prepared.tensor.shape
    (cw, ch), (w, h) = prepared.content_size, prepared.image_size
    sx = pw / map_w * w / cw
    sy = ph / map_h * h / ch
    found = kp[:, :, 2] > 0
    kp[:, :, 0] = np.where(found, kp[:, :, 0] * sx, 0)
    kp[:, :, 1] = np.where(found, kp[:, :, 1] * sy, 0)
    return kp


class PoseEstimator:
    """Multi-person 2D pose estimation: `estimator.inference(image_bgr) -> list[Human]`."""

    def __init__(
        self,
        model: str | Path = "mobilenet_thin",
        target_size: tuple[int, int] | None = (432, 368),
        *,
        upsample: float = 4.0,
        decode_params: DecodeParams | None = None,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        stages: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        progress: bool = True,
    ) -> None:
        self.model_path: Path = resolve_model(model, stages=stages, progress=progress)
        self.runtime = Runtime(self.model_path, threads=threads, providers=providers)
        self.target_size = tuple(target_size) if target_size else None
        self.decode_params = dataclasses.replace(
            decode_params or DecodeParams(), upsample=upsample
        )
        self.max_pixels = max_pixels
        #: The last maps at network resolution, cropped to the image: (19, h, w), (38, h, w).
        self.heatmaps: np.ndarray | None = None
        self.pafs: np.ndarray | None = None

    def network(self, prepared: Prepared) -> np.ndarray:
        """Run the network on a prepared input: (57, h, w) maps."""
        return self.runtime.run(prepared.tensor)[0]

    def inference(
        self,
        image: np.ndarray,
        resize_to_default: bool = True,
        upsample_size: float | None = None,
    ) -> list[Human]:
        """Find the people in a BGR image (any size, gray/BGRA/16-bit accepted)."""
        image = to_bgr8(np.asarray(image))
        check_pixels((image.shape[1], image.shape[0]), self.max_pixels)
        if min(image.shape[:2]) < 2:
            self.heatmaps = self.pafs = None
            return []
        prepared = preprocess(image, self.target_size if resize_to_default else None)
        maps = self.network(prepared)
        params = self.decode_params
        if upsample_size is not None:
            params = dataclasses.replace(params, upsample=float(upsample_size))
        poses = decode(maps[:19], maps[19:], params)
        cw, ch = prepared.content_size
        crop = (slice(None), slice(0, -(-ch // STRIDE)), slice(0, -(-cw // STRIDE)))
        self.heatmaps, self.pafs = maps[:19][crop], maps[19:][crop]
        keypoints = to_image_coords(poses, prepared)
        return humans_from_keypoints(keypoints, poses.scores, prepared.image_size)

    __call__ = inference
