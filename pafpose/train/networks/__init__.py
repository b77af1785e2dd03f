"""PyTorch pose networks of the seed: mobilenet_thin, the mobilenet_v2 family and cmu.

Every network takes an NCHW float batch of raw BGR 0..255 (as the seed's frozen graphs do) whose
height and width are multiples of 16, and returns one (N, 57, H/8, W/8) tensor per refinement
stage: 19 heatmaps (18 parts + background) then 38 PAF channels, as `Openpose/concat_stage7`.
Layers carry the TensorFlow scope names of the seed's graphs, so the seed's frozen weights load
into them (`load_tf_graph`) and give the same maps as the converted ONNX model.

Modules: `blocks` (conv units, norms, refinement stages, the network frame, size measures),
`mobilenet_thin`, `mobilenet_v2`, `cmu` (one backbone family each), `configs` (the named
networks and `build_network`), `seed_weights` (loading the seed's GraphDef weights).
`lightweight` is Lightweight OpenPose (Osokin), whose checkpoints pafpose.models.lightweight
converts; it takes (x - 128) / 256 normalised input and is not among the named networks.
"""

from __future__ import annotations

from ...defaults import STRIDE  # total stride: the maps are 1/8 of the input size
from .blocks import (
    SIZE_MULTIPLE,
    TF_BN_EPS,
    BatchStatNorm,
    ConvUnit,
    NetworkConfig,
    PoseNetwork,
    RefineStages,
    SeparableConv,
    conv_flops,
    parameter_count,
)
from .cmu import VGGFront
from .configs import NETWORKS, build_network, network_config
from .lightweight import LightweightOpenPose
from .mobilenet_thin import ThinBackbone
from .mobilenet_v2 import InvertedResidual, MobilenetV2Backbone, upsample2x_asymmetric
from .seed_weights import (
    TFLayer,
    graph_uses_batch_stats,
    load_tf_graph,
    network_from_graph,
    tf_layers,
)

__all__ = [
    "NETWORKS",
    "SIZE_MULTIPLE",
    "STRIDE",
    "TF_BN_EPS",
    "BatchStatNorm",
    "ConvUnit",
    "InvertedResidual",
    "LightweightOpenPose",
    "MobilenetV2Backbone",
    "NetworkConfig",
    "PoseNetwork",
    "RefineStages",
    "SeparableConv",
    "TFLayer",
    "ThinBackbone",
    "VGGFront",
    "build_network",
    "conv_flops",
    "graph_uses_batch_stats",
    "load_tf_graph",
    "network_config",
    "network_from_graph",
    "parameter_count",
    "tf_layers",
    "upsample2x_asymmetric",
]
