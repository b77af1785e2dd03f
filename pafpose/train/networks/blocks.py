"""Building blocks shared by every network: TF-compatible conv units and norms, the OpenPose
refinement stages, the seed's mobilenet refinement branch, the network frame and its config,
and size measures (parameters, multiply-accumulates)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ...skeleton import NUM_HEATMAPS, NUM_PAFS

#: Input sizes must be multiples of this (every stride-2 layer then sees an even size).
SIZE_MULTIPLE = 16
#: Batch-norm epsilon of the seed's graphs (TensorFlow's default).
TF_BN_EPS = 1e-3


# --------------------------------------------------------------------------- layers


class BatchStatNorm(nn.Module):
    """Batch norm that always normalises with the batch's own statistics (TF is_training=True).

    The seed's mobilenet_v2_small was frozen with its backbone batch norms in training mode, so
    TensorFlow normalises each input with its own mean and (biased) variance even at inference.
    The statistics are reduced over W, then H, then N, as the ONNX converter does.
    """

    def __init__(self, channels: int, eps: float = TF_BN_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise `x` (N, C, H, W) with its per-channel batch statistics (in float32: the
        squares of raw-pixel activations overflow float16 under mixed precision)."""
        xf = x.float()
        mean = xf.mean(3, keepdim=True).mean(2, keepdim=True).mean(0, keepdim=True)
        centred = xf - mean
        var = (centred * centred).mean(3, keepdim=True).mean(2, keepdim=True).mean(0, keepdim=True)
        scale = self.weight.view(1, -1, 1, 1).float() / torch.sqrt(var + self.eps)
        return (centred * scale + self.bias.view(1, -1, 1, 1).float()).to(x.dtype)


def _norm(kind: str | None, channels: int) -> nn.Module | None:
    if kind is None:
        return None
    if kind == "bn":
        return nn.BatchNorm2d(channels, eps=TF_BN_EPS, momentum=0.01)
    if kind == "batch":
        return BatchStatNorm(channels)
    raise ValueError(f"unknown norm {kind!r} (expected 'bn', 'batch' or None)")


class ConvUnit(nn.Module):
    """Conv (TensorFlow SAME padding) -> optional norm -> optional activation; one TF scope."""

    def __init__(
        self, cin: int, cout: int, k: int, stride: int = 1, *, depthwise: bool = False,
        norm: str | None = "bn", act: str | None = "relu", bias: bool = False, tf_name: str = "",
    ) -> None:
        super().__init__()
        # TF SAME on an even input size: total padding max(k - stride, 0), the odd pixel last.
        total = max(k - stride, 0)
        before, after = total // 2, total - total // 2
        self.pad = nn.ZeroPad2d((before, after, before, after)) if before != after else None
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=before if before == after else 0,
                              groups=cin if depthwise else 1, bias=bias)
        self.norm = _norm(norm, cout)
        self.act = act
        self.depthwise = depthwise
        self.tf_name = tf_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the unit."""
        if self.pad is not None:
            x = self.pad(x)
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.act == "relu":
            x = F.relu(x)
        elif self.act == "relu6":
            x = F.relu6(x)
        return x


class SeparableConv(nn.Sequential):
    """The seed's separable_conv: depthwise (no norm, no activation) -> pointwise + BN (+ ReLU)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, relu: bool = True,
                 tf_name: str = "") -> None:
        super().__init__(
            ConvUnit(cin, cin, k, stride, depthwise=True, norm=None, act=None,
                     tf_name=tf_name + "_depthwise"),
            ConvUnit(cin, cout, 1, norm="bn", act="relu" if relu else None,
                     tf_name=tf_name + "_pointwise"),
        )


class RefineStages(nn.Module):
    """OpenPose stages: stage 1 reads the features, stage t>1 reads [PAFs, heatmaps, features]."""

    def __init__(self, feat_channels: int, stages: int,
                 branch: Callable[[int, int, int, int], nn.Module]) -> None:
        super().__init__()
        self.paf = nn.ModuleList()
        self.heat = nn.ModuleList()
        for s in range(1, stages + 1):
            cin = feat_channels + (0 if s == 1 else NUM_PAFS + NUM_HEATMAPS)
            self.paf.append(branch(cin, NUM_PAFS, s, 1))
            self.heat.append(branch(cin, NUM_HEATMAPS, s, 2))

    def forward(self, feat: torch.Tensor) -> list[torch.Tensor]:
        """Per stage, heatmaps then PAFs concatenated on channels."""
        outputs = []
        x = feat
        for paf_branch, heat_branch in zip(self.paf, self.heat, strict=True):
            paf, heat = paf_branch(x), heat_branch(x)
            outputs.append(torch.cat([heat, paf], 1))
            x = torch.cat([paf, heat, feat], 1)
        return outputs


def mobilenet_branch(refine_width: float) -> Callable[[int, int, int, int], nn.Module]:
    """The seed's mobilenet refinement branch: 3 x sep3x3(128w), sep1x1(512w in stage 1, 128w
    later), sep1x1(out)."""

    def branch(cin: int, cout: int, stage: int, lb: int) -> nn.Module:
        c1 = max(int(128 * refine_width), 8)
        c2 = max(int((512 if stage == 1 else 128) * refine_width), 8)
        p = f"Openpose/MConv_Stage{stage}_L{lb}"
        return nn.Sequential(
            SeparableConv(cin, c1, 3, tf_name=f"{p}_1"),
            SeparableConv(c1, c1, 3, tf_name=f"{p}_2"),
            SeparableConv(c1, c1, 3, tf_name=f"{p}_3"),
            SeparableConv(c1, c2, 1, tf_name=f"{p}_4"),
            SeparableConv(c2, cout, 1, relu=False, tf_name=f"{p}_5"),
        )

    return branch


# --------------------------------------------------------------------------- the network frame


@dataclass(frozen=True)
class NetworkConfig:
    """What builds a network: its family, widths, stages and backbone norm."""

    name: str
    family: str  # "mobilenet_thin" | "mobilenet_v2" | "cmu"
    width: float = 1.0
    refine_width: float = 1.0
    stages: int = 6
    backbone_norm: str = "bn"  # "bn" (running statistics) or "batch" (always batch statistics)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in checkpoints and ONNX metadata)."""
        return asdict(self)


class PoseNetwork(nn.Module):
    """Backbone features at stride 8 -> refinement stages; forward returns every stage's maps."""

    def __init__(self, config: NetworkConfig, backbone: nn.Module, feat_channels: int,
                 branch: Callable[[int, int, int, int], nn.Module]) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.stages = RefineStages(feat_channels, config.stages, branch)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) raw BGR 0..255 -> list over stages of (N, 57, H/8, W/8)."""
        return self.stages(self.backbone(x))

    def units(self) -> Iterator[ConvUnit]:
        """Every conv unit, in definition order."""
        return (m for m in self.modules() if isinstance(m, ConvUnit))


# --------------------------------------------------------------------------- size measures


def parameter_count(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def conv_flops(net: PoseNetwork, size: tuple[int, int]) -> float:
    """Multiply-accumulates of one forward pass at input (w, h) (convolutions only)."""
    macs = 0.0
    hooks = []

    def hook(mod: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        k = math.prod(mod.kernel_size) * mod.in_channels // mod.groups
        macs += float(out.numel()) * k

    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, size[1], size[0]))
    finally:
        for h in hooks:
            h.remove()
    return macs
