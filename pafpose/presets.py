"""Inference presets as data: how the image is resized, decoded, augmented and mapped back.

Every preset runs the same network weights; they differ only in what happens around it.
The reasons behind each setting are in the README ("Accuracy").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from .decode import DecodeParams
from .defaults import DEFAULT_INPUT_SIZE, NET_HEIGHT
from .errors import InputError
from .preprocess import COORDS, INTERPOLATIONS, RESIZE_MODES
from .zoom import ZoomParams


@dataclass(frozen=True)
class Preset:
    """One complete inference setting (see preprocess.py for the resize modes and conventions)."""

    name: str
    #: "stretch" (to `size` = (w, h), ignoring the aspect), "height" (`size` = network height,
    #: the width follows the image aspect), "native" (the image's own size).
    resize: str
    size: tuple[int, int] | int | None
    decode: DecodeParams = field(default_factory=DecodeParams)
    #: Network scales relative to `size`; several are run and their maps averaged.
    scales: tuple[float, ...] = (1.0,)
    #: Also run the mirrored image and average its (mirrored back) maps.
    flip: bool = False
    #: "cubic" or "auto" (area when shrinking, cubic when enlarging).
    interpolation: str = "cubic"
    #: "seed" (x * image_w / map_w, COCO results rounded to integers) or "center".
    coords: str = "center"
    #: Network stages to run (None: all); room for speed presets.
    stages: int | None = None
    #: Adaptive zoom (zoom.py): small people of the first pass run again at a higher scale.
    zoom: ZoomParams | None = None
    description: str = ""
    #: Whether a model's own grouping thresholds (NetworkLayout.grouping: OpenPose's for its
    #: models) replace those of `decode`; False pins this preset's (the seed's exactly).
    model_grouping: bool = True

    def __post_init__(self) -> None:
        """Validate the fields."""
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}")
        if self.coords not in COORDS:
            raise ValueError(f"coords must be one of {COORDS}, got {self.coords!r}")
        if not self.scales or any(not s > 0 for s in self.scales):
            raise ValueError(f"scales must be positive numbers, got {self.scales!r}")

    @property
    def round_coco(self) -> bool:
        """Whether COCO results carry integer coordinates (the seed's evaluation does)."""
        return self.coords == "seed"


#: Decoding after the seed's grouping rules: cubic upsampling to stride 4 (OpenPose upsamples
#: with cubic interpolation), no extra smoothing, a quadratic sub-pixel peak fit, and a
#: small person's arm joined back to its body (`DecodeParams.attach_cells`).
_REFINED = DecodeParams(upsample=2.0, upsample_method="cubic", smooth="none", refine=True,
                        attach_cells=1.0)
#: OpenPose's evaluation scales (0.5, 1, 1.5, 2 of its 368 px network height).
OPENPOSE_SCALES: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
#: The `zoom` preset's first pass: the half scale (a quarter of the pixels) sees large people
#: whole, the regions of small people then run at twice the scale (zoom.ZoomParams).
ZOOM_FIRST_SCALES: tuple[float, ...] = (0.5, 1.0)
#: The `fast` preset, a point on the measured speed/accuracy frontier (README "Speed and
#: accuracy frontier"): below ~100 CPU ms a larger image with fewer stages beats all stages on a
#: smaller one (small people need pixels; stages 4-6 refine what is there). 4 of the 6 network
#: stages at height 320: AP on the COCO dev subset 0.269 (the earlier 3 stages at height 288:
#: 0.251) at 1.3-1.4x its latency, 0.62-0.59x that of `balanced` (0.289).
FAST_HEIGHT, FAST_STAGES = 320, 4
#: The `accurate` preset's base height: the single-scale frontier's most accurate height (above
#: it the large people outgrow the network's view: APl falls), at OpenPose's four scales plus
#: the mirrored image. On the COCO dev subset 0.406-0.410 (int8, bf16) against 0.389-0.396 at
#: OpenPose's 368, for 1.4x its time (README "Speed and accuracy frontier").
ACCURATE_HEIGHT = 432

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "seed", "stretch", DEFAULT_INPUT_SIZE, DecodeParams(), coords="seed",
            description="tf-pose-estimation exactly: 432x368 stretched, area x4, 25x25 smoothing",
            model_grouping=False,
        ),
        Preset(  # on the frontier; its one rival at its cost, height 432 with 3 stages, scores
            # 0.294 vs 0.289 at fp32 (noise on 84 images) and loses the large people (APl 0.33
            # vs 0.38): not a better default
            "balanced", "height", NET_HEIGHT, _REFINED, interpolation="auto",
            description="aspect kept at height 368, cubic x2, sub-pixel peaks (default)",
        ),
        Preset(  # chosen from the measured frontier (README "Speed and accuracy frontier")
            "fast", "height", FAST_HEIGHT, _REFINED, interpolation="auto", stages=FAST_STAGES,
            description="balanced at height 320, network up to stage 4 of 6",
        ),
        Preset(  # README "Accuracy": most of the multi-scale gain at a fraction of its cost
            "zoom", "height", NET_HEIGHT, _REFINED, scales=ZOOM_FIRST_SCALES,
            interpolation="auto", zoom=ZoomParams(),
            description="balanced at heights 184 and 368, then small people again at 736",
        ),
        Preset(
            "accurate", "height", ACCURATE_HEIGHT, _REFINED, scales=OPENPOSE_SCALES, flip=True,
            interpolation="auto",
            description="heights 216, 432, 648, 864 (OpenPose's scales of 432), plus the mirror",
        ),
    )
}
DEFAULT_PRESET = "balanced"


def decode_params(preset: Preset, grouping: Sequence[tuple[str, float]] = ()) -> DecodeParams:
    """A preset's decoder settings for a model: its grouping thresholds (NetworkLayout.grouping)
    over the preset's, unless the preset pins its own (`model_grouping` False: `seed`)."""
    if not preset.model_grouping or not grouping:
        return preset.decode
    return dataclasses.replace(preset.decode, **dict(grouping))


def get_preset(preset: str | Preset) -> Preset:
    """A preset by name (or the preset itself); InputError (a ValueError) names the known
    ones."""
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise InputError(
            f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}"
        ) from None
