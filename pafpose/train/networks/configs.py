"""The named networks (config table) and building one with initial weights."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from ...errors import InputError, UnknownNameError
from ...skeleton import NUM_HEATMAPS
from .blocks import ConvUnit, NetworkConfig, PoseNetwork, mobilenet_branch
from .cmu import VGGFront, cmu_branch
from .mobilenet_thin import ThinBackbone
from .mobilenet_v2 import MobilenetV2Backbone

#: Named networks. mobilenet_v2_W uses width W for the backbone and the refinement stages.
NETWORKS: dict[str, NetworkConfig] = {
    "mobilenet_thin": NetworkConfig("mobilenet_thin", "mobilenet_thin", 0.75, 0.5),
    "mobilenet_v2_large": NetworkConfig("mobilenet_v2_large", "mobilenet_v2", 1.4, 1.0),
    "mobilenet_v2_small": NetworkConfig("mobilenet_v2_small", "mobilenet_v2", 0.5, 0.5),
    "mobilenet_v2_1.4": NetworkConfig("mobilenet_v2_1.4", "mobilenet_v2", 1.4, 1.4),
    "mobilenet_v2_1.0": NetworkConfig("mobilenet_v2_1.0", "mobilenet_v2", 1.0, 1.0),
    "mobilenet_v2_0.75": NetworkConfig("mobilenet_v2_0.75", "mobilenet_v2", 0.75, 0.75),
    "mobilenet_v2_0.5": NetworkConfig("mobilenet_v2_0.5", "mobilenet_v2", 0.5, 0.5),
    "cmu": NetworkConfig("cmu", "cmu"),
}


def network_config(name: str, **overrides: Any) -> NetworkConfig:
    """The config of a named network, with fields overridden (stages, widths, backbone_norm)."""
    if name not in NETWORKS:
        raise UnknownNameError(f"unknown network {name!r}; known: {', '.join(NETWORKS)}")
    base = asdict(NETWORKS[name])
    base.update({k: v for k, v in overrides.items() if v is not None})
    return NetworkConfig(**base)


def build_network(config: NetworkConfig | str, **overrides: Any) -> PoseNetwork:
    """Build a network (random weights) from a config or a name."""
    if isinstance(config, str):
        config = network_config(config, **overrides)
    if config.stages < 1:
        raise InputError("a network needs at least one stage")
    if config.family == "mobilenet_thin":
        backbone: nn.Module = ThinBackbone(config.width)
        branch = mobilenet_branch(config.refine_width)
    elif config.family == "mobilenet_v2":
        backbone = MobilenetV2Backbone(config.width, config.backbone_norm)
        branch = mobilenet_branch(config.refine_width)
    elif config.family == "cmu":
        backbone = VGGFront()
        branch = cmu_branch
    else:
        raise ValueError(f"unknown network family {config.family!r}")
    net = PoseNetwork(config, backbone, backbone.out_channels, branch)
    _init_weights(net)
    return net


def _init_weights(net: PoseNetwork) -> None:
    """Kaiming-normal convs, zero biases; each branch's last conv small (maps start near 0)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for branch in [*net.stages.paf, *net.stages.heat]:
        last = [m for m in branch.modules() if isinstance(m, ConvUnit)][-1]
        nn.init.normal_(last.conv.weight, std=0.01)
        if isinstance(last.norm, nn.BatchNorm2d):  # a norm would undo the small weights
            nn.init.constant_(last.norm.weight, 0.1)
        if last.conv.out_channels == NUM_HEATMAPS:  # the background is ~1 almost everywhere
            bias = last.norm.bias if isinstance(last.norm, nn.BatchNorm2d) else last.conv.bias
            if bias is not None:
                with torch.no_grad():
                    bias[NUM_HEATMAPS - 1] = 1.0
