"""cmu: OpenPose's original network, a VGG-19 front and 7x7 refinement branches."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvUnit


class VGGFront(nn.Module):
    """OpenPose's VGG-19 front (conv1_1 .. conv4_2) + conv4_3_CPM, conv4_4_CPM; input x/256-0.5."""

    PLAN = (("conv1_1", 64), ("conv1_2", 64), "pool", ("conv2_1", 128), ("conv2_2", 128), "pool",
            ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256), "pool",
            ("conv4_1", 512), ("conv4_2", 512), ("conv4_3_CPM", 256), ("conv4_4_CPM", 128))

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for item in self.PLAN:
            if item == "pool":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                name, co = item
                layers.append(ConvUnit(c, co, 3, norm=None, act="relu", bias=True, tf_name=name))
                c = co
        self.layers = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features at stride 8."""
        return self.layers(x / 256.0 - 0.5)


def cmu_branch(cin: int, cout: int, stage: int, lb: int) -> nn.Module:
    """OpenPose (CMU) branch: stage 1 = 3 x conv3x3(128), conv1x1(512); later = 5 x 7x7, 1x1."""
    if stage == 1:
        specs = [(3, 128), (3, 128), (3, 128), (1, 512), (1, cout)]
        names = [f"conv5_{j}_CPM_L{lb}" for j in range(1, 6)]
    else:
        specs = [(7, 128)] * 5 + [(1, 128), (1, cout)]
        names = [f"Mconv{j}_stage{stage}_L{lb}" for j in range(1, 8)]
    layers, c = [], cin
    for i, ((k, co), name) in enumerate(zip(specs, names, strict=True)):
        last = i == len(specs) - 1
        layers.append(ConvUnit(c, co, k, norm=None, act=None if last else "relu", bias=True,
                               tf_name=name))
        c = co
    return nn.Sequential(*layers)
