"""Network maps -> people: the bottom-up OpenPose decoder (heatmap peaks + PAF grouping).

params.py (settings, results), operators.py (banded upsampling / smoothing), peaks.py (NMS,
sub-pixel fit, cap per part), grouping.py (limb scoring, matching, people assembly),
decoder.py (Decoder, decode); the skeleton comes in as data (pafpose.skeleton.Skeleton).
"""

from __future__ import annotations

from .decoder import Decoder, decode
from .grouping import attach_pieces
from .operators import seed_kernel_1d
from .params import SMOOTH_MODES, UPSAMPLE_METHODS, DecodeParams, Peaks, Poses

__all__ = [
    "SMOOTH_MODES", "UPSAMPLE_METHODS", "DecodeParams", "Decoder", "Peaks", "Poses",
    "attach_pieces", "decode", "seed_kernel_1d",
]
