"""PoseEstimator: preprocess -> network -> decode, and the map from network pixels to the image."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .decode import DecodeParams, Decoder, Poses
from .defaults import DEFAULT_MODEL, STRIDE
from .human import Human, humans_from_keypoints
from .images import DEFAULT_MAX_PIXELS, as_image, check_pixels
from .models.resolve import resolve_model
from .presets import DEFAULT_PRESET, Preset, get_preset
from .runtime import create_runtime
from .scales import (
    DEFAULT_MAX_INPUT_PIXELS,
    DEFAULT_MAX_INPUT_SIDE,
    PAD_MULTIPLE,
    Ceiling,
    Prepared,
    canvas_size,
    fuse,
    prepare,
    scale_views,
)
from .scales import to_image_coords as _map_to_image

__all__ = ["PAD_MULTIPLE", "STRIDE", "PoseEstimator", "Prepared", "preprocess", "to_image_coords"]


def preprocess(image: np.ndarray, target_size: tuple[int, int] | None) -> Prepared:
    """Resize (cubic, ignoring aspect, as the seed) to target_size or keep the size; pad to 16."""
    size = tuple(target_size) if target_size is not None else (image.shape[1], image.shape[0])
    return prepare(image, size, "cubic")


def to_image_coords(poses: Poses, prepared: Prepared, coords: str = "seed") -> np.ndarray:
    """Map decoded keypoints (upsampled-map pixels) to image pixels ("seed" or "center")."""
    return _map_to_image(poses.keypoints, poses.map_size, prepared.view, coords)


class PoseEstimator:
    """Multi-person 2D pose estimation: `estimator.inference(image_bgr) -> list[Human]`."""

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        target_size: tuple[int, int] | None = None,
        *,
        preset: str | Preset = DEFAULT_PRESET,
        upsample: float | None = None,
        decode_params: DecodeParams | None = None,
        scales: Sequence[float] | None = None,
        flip: bool | None = None,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        stages: int | None = None,
        backend: str = "auto",
        precision: str = "fp32",
        calibration: str | Path | Sequence | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS,
        max_input_side: int = DEFAULT_MAX_INPUT_SIDE,
        progress: bool = True,
    ) -> None:
        """Load a model; settings come from `preset`, explicit arguments override them.

        target_size (w, h) stretches every image to that size (the seed's way); (0, 0) keeps
        each image's size; None takes the preset's resize. scales / flip: multi-scale and
        mirrored inference (maps averaged), e.g. scales=(0.5, 1, 1.5, 2), flip=True.
        stages: run the network up to refinement stage K only (1..6, faster, see the README).
        backend: "auto" (the faster installed), "onnxruntime" or "openvino"; precision: "fp32"
        or "int8" (built once from `calibration` images: a folder or a list of files).
        max_pixels refuses larger images; max_input_pixels / max_input_side bound the network
        input (area, longest side): a larger one is letterboxed (shrunk, aspect kept, padded),
        and an explicit target_size above them is refused (ValueError).
        """
        self.preset: Preset = get_preset(preset)
        #: Bounds of the network input (see scales.Ceiling).
        self.ceiling: Ceiling = Ceiling(int(max_input_pixels), int(max_input_side))
        if target_size is not None and tuple(target_size) != (0, 0):
            self.ceiling.check((int(target_size[0]), int(target_size[1])))
        elif self.preset.resize == "stretch" and isinstance(self.preset.size, tuple):
            self.ceiling.check(self.preset.size)
        if stages is None:
            stages = self.preset.stages
        self.model_path: Path = resolve_model(model, stages=stages, progress=progress,
                                              precision=precision, calibration=calibration)
        self.runtime = create_runtime(self.model_path, backend=backend, threads=threads,
                                      providers=providers)
        #: The backend actually used ("onnxruntime" or "openvino"; "auto" resolved).
        self.backend: str = self.runtime.backend
        self.precision: str = precision
        self.stages: int | None = stages
        #: Milliseconds spent by the last inference: network, decode, preprocess (everything
        #: else: resize, pad, fusing views, mapping back) and total.
        self.timings: dict[str, float] = {}
        self._clock = threading.local()
        self._decoders: dict[DecodeParams, Decoder] = {}
        if target_size is None:
            self._resize, self._size = self.preset.resize, self.preset.size
        elif tuple(target_size) == (0, 0):
            self._resize, self._size = "native", None
        else:
            self._resize, self._size = "stretch", (int(target_size[0]), int(target_size[1]))
        #: The explicit or preset network size (w, h), or None when it follows each image.
        self.target_size = self._size if self._resize == "stretch" else None
        params = decode_params or self.preset.decode
        if upsample is not None:
            params = dataclasses.replace(params, upsample=float(upsample))
        self.decode_params = params
        self.scales: tuple[float, ...] = (
            tuple(float(s) for s in scales) if scales is not None else self.preset.scales
        )
        self.flip: bool = self.preset.flip if flip is None else bool(flip)
        if not self.scales:
            raise ValueError("scales must hold at least one scale")
        self.max_pixels = max_pixels
        #: The last maps, cropped to the image: at network resolution for a single view,
        #: else the fused canvas: (19, h, w), (38, h, w).
        self.heatmaps: np.ndarray | None = None
        self.pafs: np.ndarray | None = None

    def network(self, prepared: Prepared) -> np.ndarray:
        """Run the network on a prepared input: (57, h, w) maps."""
        start = time.perf_counter()
        maps = self.runtime.run(prepared.tensor)[0]
        self._clock.network = getattr(self._clock, "network", 0.0) + time.perf_counter() - start
        return maps

    def _decode(self, heat: np.ndarray, paf: np.ndarray, params: DecodeParams) -> Poses:
        # One Decoder per setting, kept: building its operators per call costs a BLAS matmul
        # whose idle BLAS threads then spin through the next network call (+50-75% there).
        decoder = self._decoders.get(params)
        if decoder is None:
            if len(self._decoders) >= 8:
                self._decoders.clear()
            decoder = self._decoders.setdefault(params, Decoder(params))
        start = time.perf_counter()
        poses = decoder(heat, paf)
        self._clock.decode = time.perf_counter() - start
        return poses

    def inference(
        self,
        image: np.ndarray | Any,
        resize_to_default: bool = True,
        upsample_size: float | None = None,
    ) -> list[Human]:
        """Find the people in a BGR uint8 HxWx3 image (gray/BGRA/16-bit and PIL RGB accepted).

        Raises TypeError for anything else (None, a path, bytes, object arrays) and ValueError
        for arrays of the wrong shape.
        """
        start = time.perf_counter()
        self._clock.network = self._clock.decode = 0.0
        image = as_image(image)
        check_pixels((image.shape[1], image.shape[0]), self.max_pixels)
        if min(image.shape[:2]) < 2:
            self.heatmaps = self.pafs = None
            return []
        params = self.decode_params
        if upsample_size is not None:
            params = dataclasses.replace(params, upsample=float(upsample_size))
        resize, size = (self._resize, self._size) if resize_to_default else ("native", None)
        image_size = (image.shape[1], image.shape[0])
        base, views = scale_views(image_size, resize, size, self.scales, self.flip,
                                  self.ceiling)
        interpolation = self.preset.interpolation
        if views == [base]:  # one plain view: the decoder upsamples its maps
            maps = self.network(prepare(image, base.content_size, interpolation))
            heat, paf = maps[:19], maps[19:]
            poses = self._decode(heat, paf, params)
            crop_w, crop_h = (-(-c // STRIDE) for c in base.content_size)
        else:  # several views: average their maps on the upsampled grid of the scale-1 view
            maps = [self.network(prepare(image, v.content_size, interpolation, v.flip))
                    for v in views]
            canvas = canvas_size(base, params.upsample, STRIDE)
            heat, paf = fuse(maps, views, base, canvas)
            # The canvas is already upsampled: a network cell spans `upsample` canvas pixels.
            poses = self._decode(heat, paf, dataclasses.replace(
                params, upsample=1.0, attach_cells=params.attach_cells * params.upsample))
            crop_w, crop_h = (-(-c * n // p) for c, n, p in
                              zip(base.content_size, canvas, base.input_size, strict=True))
        self.heatmaps, self.pafs = heat[:, :crop_h, :crop_w], paf[:, :crop_h, :crop_w]
        keypoints = _map_to_image(poses.keypoints, poses.map_size, base, self.preset.coords)
        kept = (keypoints[:, :, 2] > 0).any(axis=1)  # people found only in the padding: none
        humans = humans_from_keypoints(keypoints[kept], poses.scores[kept], image_size)
        total = (time.perf_counter() - start) * 1000
        net, dec = self._clock.network * 1000, self._clock.decode * 1000
        self.timings = {"preprocess": total - net - dec, "network": net, "decode": dec,
                        "total": total}
        return humans

    __call__ = inference
