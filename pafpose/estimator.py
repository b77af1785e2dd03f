"""PoseEstimator: preprocess -> network (runtime) -> decode -> map back; each call returns a Result.

The estimator holds only its settings, the runtime and a cache of decoders: it is shared across
threads (server, video workers), and everything one call computes (people, maps, timings) is in
the Result it returns.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .decode import DecodeParams, Decoder, Poses
from .defaults import DEFAULT_MODEL, STRIDE
from .errors import InputError
from .human import Human, humans_from_keypoints
from .images import DEFAULT_MAX_PIXELS, as_image, check_pixels
from .layout import NetworkLayout
from .multiscale import canvas_size, fuse, scale_views
from .precision import DEFAULT_PRECISION
from .preprocess import (
    DEFAULT_MAX_INPUT_PIXELS,
    DEFAULT_MAX_INPUT_SIDE,
    PAD_MULTIPLE,
    Ceiling,
    Prepared,
    View,
    prepare,
    preprocess,
)
from .preprocess import to_image_coords as _map_to_image
from .presets import DEFAULT_PRESET, PRESETS, Preset, get_preset
from .presets import decode_params as decode_params_of
from .runtime import load_network
from .skeleton import Skeleton
from .zoom import ZoomParams, ZoomView, fuse_zoom, person_boxes, zoom_regions

__all__ = ["PAD_MULTIPLE", "STRIDE", "PoseEstimator", "Prepared", "Result", "preprocess",
           "to_image_coords"]


def to_image_coords(poses: Poses, prepared: Prepared, coords: str = "seed") -> np.ndarray:
    """Map decoded keypoints (upsampled-map pixels) to image pixels ("seed" or "center")."""
    return _map_to_image(poses.keypoints, poses.map_size, prepared.view, coords)


@dataclass(frozen=True)
class Result:
    """What one call of PoseEstimator.run computed.

    heatmaps (19, h, w) and pafs (38, h, w) for OpenPose-18 (the model skeleton's counts:
    (26, h, w) and (52, h, w) for BODY_25) are cropped to the image: the network's stride-8
    maps for a single view, else the fused canvas (upsampled); None for an image under 2 px.
    timings: milliseconds spent on "network", "decode", "preprocess" (everything else: resize,
    pad, fusing views, mapping back) and "total".
    """

    humans: list[Human]
    heatmaps: np.ndarray | None
    pafs: np.ndarray | None
    timings: dict[str, float] = field(default_factory=dict)
    image_size: tuple[int, int] = (0, 0)  # (w, h) of the image
    #: The scale-1 view: the image's resized size in the padded network input (None: no run).
    view: View | None = None
    #: Number of network runs (views: scales, mirrored, zoomed regions) whose maps were fused.
    num_views: int = 0
    #: The zoomed regions run (zoom presets; zoom.py), their maps fused into the canvas.
    zoom_views: tuple[ZoomView, ...] = ()


def _timings(start: float, network: float, decode: float) -> dict[str, float]:
    """Milliseconds from seconds: the network, the decoder, the rest, and the total."""
    total = (time.perf_counter() - start) * 1000
    net, dec = network * 1000, decode * 1000
    return {"preprocess": total - net - dec, "network": net, "decode": dec, "total": total}


class PoseEstimator:
    """Multi-person 2D pose estimation: `estimator.inference(image_bgr) -> list[Human]`;
    `estimator.run(image_bgr) -> Result` (people, maps, timings). Safe to share across threads."""

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
        precision: str = DEFAULT_PRECISION,
        calibration: str | Path | Sequence | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS,
        max_input_side: int = DEFAULT_MAX_INPUT_SIDE,
        progress: bool = True,
        prototxt: str | Path | None = None,
        accept_license: bool = False,
    ) -> None:
        """Load a model; settings come from `preset`, explicit arguments override them.

        target_size (w, h) stretches every image to that size (the seed's way); (0, 0) keeps
        each image's size; None takes the preset's resize. scales / flip: multi-scale and
        mirrored inference (maps averaged), e.g. scales=(0.5, 1, 1.5, 2), flip=True.
        stages: run the network up to refinement stage K only (1..6, faster, see the README).
        backend: "auto" (the faster installed), "onnxruntime" or "openvino"; precision: "fp32",
        "bf16" (OpenVINO only), "int8" (built once from `calibration` images: a folder or a list
        of files, else the default set) or "auto" (default: picked from the CPU, the backend and
        the preset).
        max_pixels refuses larger images; max_input_pixels / max_input_side bound the network
        input (area, longest side): a larger one is letterboxed (shrunk, aspect kept, padded),
        and an explicit target_size above them is refused (ImageTooLargeError).
        The model's layout (skeleton, input convention, outputs, grouping thresholds) is read
        from its ONNX metadata (pafpose.layout); `decode_params` replaces the preset's and
        the model's decoder settings as a whole.
        model may also be an OpenPose model folder or a .caffemodel (its deploy prototxt beside
        it, or given as `prototxt`); accept_license=True accepts the licence of a named model
        that asks for it (OpenPose's), which is then downloaded (else LicenseError).
        """
        self.preset: Preset = get_preset(preset)
        self.scales: tuple[float, ...] = (
            tuple(float(s) for s in scales) if scales is not None else self.preset.scales
        )
        self.flip: bool = self.preset.flip if flip is None else bool(flip)
        #: Adaptive zoom into small people (None: off), from the preset.
        self.zoom: ZoomParams | None = self.preset.zoom
        if not self.scales:
            raise InputError("scales must hold at least one scale")
        #: Bounds of the network input (see preprocess.Ceiling).
        self.ceiling: Ceiling = Ceiling(int(max_input_pixels), int(max_input_side))
        if target_size is not None and tuple(target_size) != (0, 0):
            self.ceiling.check((int(target_size[0]), int(target_size[1])))
        elif self.preset.resize == "stretch" and isinstance(self.preset.size, tuple):
            self.ceiling.check(self.preset.size)
        if stages is None:
            stages = self.preset.stages
        # "auto" precision is judged by the coco-dev measurements of what the network runs: a
        # built-in preset's views on the default model (the decoding may differ); anything
        # else is "custom" (fp32).
        built = PRESETS.get(self.preset.name)
        as_built = (str(model) == DEFAULT_MODEL and built is not None
                    and dataclasses.replace(built, decode=self.preset.decode) == self.preset
                    and stages == self.preset.stages and self.scales == self.preset.scales
                    and self.flip == self.preset.flip and target_size is None)
        self.model_path: Path
        self.model_path, self.runtime, choice = load_network(
            model, stages=stages, backend=backend, precision=precision, calibration=calibration,
            threads=threads, providers=providers, progress=progress,
            preset=self.preset.name if as_built else "custom", prototxt=prototxt,
            accept_license=accept_license)
        #: The backend actually used ("onnxruntime" or "openvino"; "auto" resolved).
        self.backend: str = self.runtime.backend
        #: The precision actually used ("fp32", "bf16", "int8"; "auto" resolved) and why.
        self.precision: str = choice.precision
        self.precision_reason: str = choice.reason
        self.stages: int | None = stages
        #: What the network's input and outputs mean (declared by the model).
        self.layout: NetworkLayout = self.runtime.layout
        #: The keypoint layout of the people found.
        self.skeleton: Skeleton = self.layout.skeleton
        self._decoders: dict[DecodeParams, Decoder] = {}
        if target_size is None:
            self._resize, self._size = self.preset.resize, self.preset.size
        elif tuple(target_size) == (0, 0):
            self._resize, self._size = "native", None
        else:
            self._resize, self._size = "stretch", (int(target_size[0]), int(target_size[1]))
        #: The explicit or preset network size (w, h), or None when it follows each image.
        self.target_size = self._size if self._resize == "stretch" else None
        params = decode_params or decode_params_of(self.preset, self.layout.grouping)
        if upsample is not None:
            params = dataclasses.replace(params, upsample=float(upsample))
        self.decode_params = params
        self.max_pixels = max_pixels

    def network(self, prepared: Prepared) -> np.ndarray:
        """Run the network on a prepared input: its maps, heatmaps then PAFs ((57, h, w) for
        OpenPose-18)."""
        return self.runtime.run(prepared.tensor)[0]

    def prepare(
        self, image: np.ndarray, size: tuple[int, int], flip: bool = False
    ) -> Prepared:
        """The network input of an image resized to size (w, h), in the model's convention."""
        return prepare(image, size, self.preset.interpolation, flip, self.layout.input)

    def _decoder(self, params: DecodeParams) -> Decoder:
        """The Decoder of a setting, built once and kept."""
        # One Decoder per setting, kept: building its operators per call costs a BLAS matmul
        # whose idle BLAS threads then spin through the next network call (+50-75% there).
        decoder = self._decoders.get(params)
        if decoder is None:
            if len(self._decoders) >= 8:
                self._decoders.clear()
            decoder = self._decoders.setdefault(params, Decoder(params, self.skeleton))
        return decoder

    def run(
        self,
        image: np.ndarray | Any,
        resize_to_default: bool = True,
        upsample_size: float | None = None,
    ) -> Result:
        """Find the people in an image (as `inference`) and return them with the maps and timings.

        Raises TypeError for anything but an image (None, a path, bytes, object arrays) and
        ValueError for arrays of the wrong shape.
        """
        start = time.perf_counter()
        image = as_image(image)
        image_size = (image.shape[1], image.shape[0])
        check_pixels(image_size, self.max_pixels)
        if min(image_size) < 2:
            return Result([], None, None, _timings(start, 0.0, 0.0), image_size)
        params = self.decode_params
        if upsample_size is not None:
            params = dataclasses.replace(params, upsample=float(upsample_size))
        resize, size = (self._resize, self._size) if resize_to_default else ("native", None)
        base, views = scale_views(image_size, resize, size, self.scales, self.flip,
                                  self.ceiling)

        # preprocess -> network, one view after the other
        maps, network = [], 0.0
        for view in views:
            prepared = self.prepare(image, view.content_size, view.flip)
            t0 = time.perf_counter()
            maps.append(self.network(prepared))
            network += time.perf_counter() - t0
        heat, paf, params = self._combine(maps, views, base, params)
        decode = 0.0

        # zoom: the small people of the first pass run again at a higher scale, fused in
        zoomed = []
        if self.zoom is not None:
            zoomed, decode = self._zoom_regions(base, heat, paf, params)
        if zoomed:
            heat, paf, params, seconds = self._zoom(image, zoomed, base, views, maps, heat, paf,
                                                    params)
            network += seconds

        # decode
        t0 = time.perf_counter()
        poses = self._decoder(params)(heat, paf)
        decode += time.perf_counter() - t0

        # map back to image pixels
        keypoints = _map_to_image(poses.keypoints, poses.map_size, base, self.preset.coords)
        kept = (keypoints[:, :, 2] > 0).any(axis=1)  # people found only in the padding: none
        humans = humans_from_keypoints(keypoints[kept], poses.scores[kept], image_size,
                                       self.skeleton)
        # the maps cropped to the image
        crop_w, crop_h = (-(-c * n // p) for c, n, p in
                          zip(base.content_size, heat.shape[:0:-1], base.input_size, strict=True))
        return Result(humans, heat[:, :crop_h, :crop_w], paf[:, :crop_h, :crop_w],
                      _timings(start, network, decode), image_size, base,
                      len(views) + sum(z.runs for z in zoomed), tuple(zoomed))

    def _zoom_regions(
        self, base: View, heat: np.ndarray, paf: np.ndarray, params: DecodeParams
    ) -> tuple[list[ZoomView], float]:
        """The regions to zoom into for the people of these maps, and the seconds spent
        decoding them."""
        t0 = time.perf_counter()
        poses = self._decoder(params)(heat, paf)
        seconds = time.perf_counter() - t0
        boxes = person_boxes(_map_to_image(poses.keypoints, poses.map_size, base, "center"))
        return zoom_regions(boxes, base, self.zoom), seconds

    def _zoom(
        self, image: np.ndarray, zoomed: list[ZoomView], base: View, views: list[View],
        maps: list[np.ndarray], heat: np.ndarray, paf: np.ndarray, params: DecodeParams,
    ) -> tuple[np.ndarray, np.ndarray, DecodeParams, float]:
        """Run the zoomed regions and fuse their maps into the canvas: the fused heatmaps,
        PAFs, their decode settings, and the seconds spent in the network."""
        if views == [base]:  # the canvas from the maps of the one view
            heat, paf, params = self._combine(maps, views, base, params, canvas=True)
        network = 0.0
        for zv in zoomed:
            x0, y0, x1, y1 = zv.box
            zoom_maps = []
            for flip in (False, True)[:zv.runs]:
                prepared = self.prepare(image[y0:y1, x0:x1], zv.content_size, flip)
                t0 = time.perf_counter()
                zoom_maps.append(self.network(prepared))
                network += time.perf_counter() - t0
            fuse_zoom(heat, paf, zoom_maps, zv, base, self.skeleton)
        return heat, paf, params, network

    def _combine(
        self, maps: list[np.ndarray], views: list[View], base: View, params: DecodeParams,
        canvas: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, DecodeParams]:
        """Heatmaps and PAFs of the views, and the decode settings for them: one plain view's
        own maps (the decoder upsamples them), else the views' maps averaged on the upsampled
        grid of the scale-1 view (the canvas; always with `canvas`)."""
        if views == [base] and not canvas:
            n_heat = self.skeleton.num_heatmaps
            return maps[0][:n_heat], maps[0][n_heat:], params
        heat, paf = fuse(maps, views, base, canvas_size(base, params.upsample,
                                                        self.layout.stride), self.skeleton)
        # The canvas is already upsampled: a network cell spans `upsample` canvas pixels.
        return heat, paf, dataclasses.replace(
            params, upsample=1.0, attach_cells=params.attach_cells * params.upsample)

    def inference(
        self,
        image: np.ndarray | Any,
        resize_to_default: bool = True,
        upsample_size: float | None = None,
    ) -> list[Human]:
        """Find the people in a BGR uint8 HxWx3 image (gray/BGRA/16-bit and PIL RGB accepted).

        The simple call: `run(...).humans`. Raises TypeError for anything else (None, a path,
        bytes, object arrays) and ValueError for arrays of the wrong shape.
        """
        return self.run(image, resize_to_default, upsample_size).humans

    __call__ = inference
