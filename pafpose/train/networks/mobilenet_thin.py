"""mobilenet_thin: the seed's MobileNet-v1 'thin' backbone (its refinement branch is
`blocks.mobilenet_branch`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from .blocks import ConvUnit, SeparableConv


class ThinBackbone(nn.Module):
    """The seed's MobileNet-v1 'thin' front (width 0.75): [pool(conv3), conv7, conv11], stride 8."""

    def __init__(self, width: float = 0.75) -> None:
        super().__init__()

        def depth(d: int) -> int:
            return max(int(d * width), 8)

        self.conv0 = ConvUnit(3, depth(32), 3, 2, tf_name="MobilenetV1/Conv2d_0")
        plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 1), (512, 1), (512, 1),
                (512, 1), (512, 1), (512, 1)]
        layers, c = [], depth(32)
        for i, (d, s) in enumerate(plan, start=1):
            layers.append(SeparableConv(c, depth(d), 3, s, tf_name=f"MobilenetV1/Conv2d_{i}"))
            c = depth(d)
        self.layers = nn.ModuleList(layers)
        self.out_channels = depth(128) + 2 * depth(512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features at stride 8."""
        x = self.conv0(x)
        taps = {}
        for i, layer in enumerate(self.layers, start=1):
            x = layer(x)
            if i in (3, 7, 11):
                taps[i] = x
        return torch.cat([F.max_pool2d(taps[3], 2, 2), taps[7], taps[11]], 1)
