"""Lightweight OpenPose (Osokin 2018, "Real-time 2D Multi-Person Pose Estimation on CPU:
Lightweight OpenPose"): a MobileNet-v1 backbone whose conv5 is dilated, a small "CPM" feature
adapter, one initial stage and residual refinement stages.

Written from the paper and the published checkpoint's state-dict key names and shapes: the
module tree (`model`, `cpm`, `initial_stage`, `refinement_stages`, `nn.Sequential` indices
included) reproduces those keys, so `checkpoint_iter_370000.pth` loads with strict matching.
Input: NCHW float, BGR normalised as (x - 128) / 256, height and width multiples of 8. Output,
as the other networks here: one (N, 57, H/8, W/8) tensor per stage, 19 heatmaps (OpenPose-18 +
background) then 38 PAFs, both in OpenPose-18's channel order.
"""

from __future__ import annotations

import torch
from torch import nn

from ...skeleton import NUM_HEATMAPS, NUM_PAFS

#: Channels of the features every stage reads.
FEATURES = 128
#: Refinement stages of the published network (the checkpoint stores 3; its 40 % AP uses 1).
DEFAULT_REFINEMENT_STAGES = 1


def conv(cin: int, cout: int, k: int = 3, *, stride: int = 1, dilation: int = 1,
         bn: bool = True, relu: bool = True, bias: bool = True) -> nn.Sequential:
    """Conv ("same" padding) [+ BatchNorm] [+ ReLU]: keys `0.weight`, `0.bias`, `1.*`."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, dilation * (k - 1) // 2,
                                         dilation, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def separable(cin: int, cout: int, *, stride: int = 1, dilation: int = 1,
              bn: bool = True) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, both without bias, each followed by BatchNorm + ReLU
    (bn=True: keys 0, 1, 3, 4) or by ELU alone (bn=False: keys 0, 2)."""
    def after(c: int) -> list[nn.Module]:
        return [nn.BatchNorm2d(c), nn.ReLU()] if bn else [nn.ELU()]

    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, dilation, dilation, groups=cin, bias=False), *after(cin),
        nn.Conv2d(cin, cout, 1, bias=False), *after(cout),
    )


def backbone() -> nn.Sequential:
    """MobileNet-v1 to conv5_5 at stride 8 (conv4_2 and later stay at stride 8; the first
    conv5 block is dilated instead)."""
    plan = [(32, 64, 1, 1), (64, 128, 2, 1), (128, 128, 1, 1), (128, 256, 2, 1),
            (256, 256, 1, 1), (256, 512, 1, 1), (512, 512, 1, 2), *[(512, 512, 1, 1)] * 4]
    return nn.Sequential(conv(3, 32, stride=2, bias=False),
                         *(separable(ci, co, stride=s, dilation=d) for ci, co, s, d in plan))


class Cpm(nn.Module):
    """Feature adapter: 1x1 to 128 channels, a residual trunk of 3 ELU separable convs, 3x3."""

    def __init__(self, cin: int = 512, cout: int = FEATURES) -> None:
        super().__init__()
        self.align = conv(cin, cout, 1, bn=False)
        self.trunk = nn.Sequential(*(separable(cout, cout, bn=False) for _ in range(3)))
        self.conv = conv(cout, cout, bn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features -> stage features."""
        x = self.align(x)
        return self.conv(x + self.trunk(x))


def heads(cin: int, hidden: int) -> tuple[nn.Sequential, nn.Sequential]:
    """The heatmap and PAF heads of a stage: 1x1 to `hidden` + ReLU, then 1x1 to the maps."""
    return tuple(nn.Sequential(conv(cin, hidden, 1, bn=False),
                               conv(hidden, out, 1, bn=False, relu=False))
                 for out in (NUM_HEATMAPS, NUM_PAFS))  # type: ignore[return-value]


class InitialStage(nn.Module):
    """Three 3x3 convs, then the two heads (512 hidden channels)."""

    def __init__(self, channels: int = FEATURES) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*(conv(channels, channels, bn=False) for _ in range(3)))
        self.heatmaps, self.pafs = heads(channels, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features -> heatmaps then PAFs, concatenated on channels."""
        x = self.trunk(x)
        return torch.cat([self.heatmaps(x), self.pafs(x)], 1)


class RefinementBlock(nn.Module):
    """1x1 conv, then a residual 3x3 + dilated 3x3 pair (both with BatchNorm)."""

    def __init__(self, cin: int, channels: int = FEATURES) -> None:
        super().__init__()
        self.initial = conv(cin, channels, 1, bn=False)
        self.trunk = nn.Sequential(conv(channels, channels),
                                   conv(channels, channels, dilation=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x -> initial(x) + trunk(initial(x))."""
        x = self.initial(x)
        return x + self.trunk(x)


class RefinementStage(nn.Module):
    """Five refinement blocks, then the two heads (128 hidden channels)."""

    def __init__(self, cin: int = FEATURES + NUM_HEATMAPS + NUM_PAFS,
                 channels: int = FEATURES) -> None:
        super().__init__()
        self.trunk = nn.Sequential(RefinementBlock(cin, channels),
                                   *(RefinementBlock(channels, channels) for _ in range(4)))
        self.heatmaps, self.pafs = heads(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[features, heatmaps, PAFs] -> refined heatmaps then PAFs."""
        x = self.trunk(x)
        return torch.cat([self.heatmaps(x), self.pafs(x)], 1)


class LightweightOpenPose(nn.Module):
    """The whole network; `refinement_stages` of them after the initial stage."""

    def __init__(self, refinement_stages: int = DEFAULT_REFINEMENT_STAGES) -> None:
        super().__init__()
        if refinement_stages < 0:
            raise ValueError("refinement_stages must be 0 or more")
        self.model = backbone()
        self.cpm = Cpm()
        self.initial_stage = InitialStage()
        self.refinement_stages = nn.ModuleList(
            RefinementStage() for _ in range(refinement_stages))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) normalised BGR -> list over stages of (N, 57, H/8, W/8)."""
        features = self.cpm(self.model(x))
        outputs = [self.initial_stage(features)]
        for stage in self.refinement_stages:
            outputs.append(stage(torch.cat([features, outputs[-1]], 1)))
        return outputs


class LastStageMaps(nn.Module):
    """A Lightweight OpenPose network seen as one output: the last stage's maps."""

    def __init__(self, net: LightweightOpenPose) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 57, H/8, W/8)."""
        return self.net(x)[-1]
