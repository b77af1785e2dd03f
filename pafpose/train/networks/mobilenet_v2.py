"""The mobilenet_v2 family: TF-slim MobileNet-v2 backbone (inverted residuals) up to layer 14,
with the TF-legacy bilinear 2x upsampling of its last features."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvUnit


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """TF-slim's channel rounding for MobileNet-v2 widths."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class InvertedResidual(nn.Module):
    """MobileNet-v2 block: expand 1x1, depthwise 3x3, project 1x1 (+ input if shapes agree)."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int, norm: str,
                 scope: str) -> None:
        super().__init__()
        hidden = _make_divisible(cin * expansion) if expansion != 1 else cin
        self.expand = (ConvUnit(cin, hidden, 1, norm=norm, act="relu6", tf_name=scope + "/expand")
                       if expansion != 1 else None)
        self.depthwise = ConvUnit(hidden, hidden, 3, stride, depthwise=True, norm=norm,
                                  act="relu6", tf_name=scope + "/depthwise")
        self.project = ConvUnit(hidden, cout, 1, norm=norm, act=None, tf_name=scope + "/project")
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return y + x if self.residual else y


def upsample2x_asymmetric(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x upsampling with TF's legacy (align_corners=False, no half-pixel) sampling.

    Output pixel 2i is input i, 2i+1 is the mean of inputs i and i+1 (the last one repeats).
    Written with slices only, so an ONNX export keeps the height and width dynamic.
    """
    nxt = torch.cat([x[:, :, 1:], x[:, :, -1:]], 2)
    x = torch.stack([x, (x + nxt) * 0.5], 3).flatten(2, 3)
    nxt = torch.cat([x[:, :, :, 1:], x[:, :, :, -1:]], 3)
    return torch.stack([x, (x + nxt) * 0.5], 4).flatten(3, 4)


class MobilenetV2Backbone(nn.Module):
    """TF-slim MobileNet-v2 up to layer 14: [layer 7, upsample(layer 14)] at stride 8."""

    #: (stride, output depth at width 1) of expanded_conv .. expanded_conv_12; expansion 6 but
    #: the first (expansion 1).
    PLAN = ((1, 16), (2, 24), (1, 24), (2, 32), (1, 32), (1, 32), (2, 64), (1, 64), (1, 64),
            (1, 64), (1, 96), (1, 96), (1, 96))

    def __init__(self, width: float, norm: str = "bn") -> None:
        super().__init__()
        c = _make_divisible(32 * width)
        self.conv = ConvUnit(3, c, 3, 2, norm=norm, act="relu6", tf_name="MobilenetV2/Conv")
        blocks = []
        for i, (s, d) in enumerate(self.PLAN):
            cout = _make_divisible(d * width)
            scope = "MobilenetV2/expanded_conv" + (f"_{i}" if i else "")
            blocks.append(InvertedResidual(c, cout, s, 1 if i == 0 else 6, norm, scope))
            c = cout
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = _make_divisible(32 * width) + c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features at stride 8."""
        x = self.conv(x)
        tap = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == 5:  # expanded_conv_5 = layer_7, stride 8
                tap = x
        return torch.cat([tap, upsample2x_asymmetric(x)], 1)
