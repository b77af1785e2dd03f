"""PyTorch pose networks of the seed: mobilenet_thin, the mobilenet_v2 family and cmu.

Every network takes an NCHW float batch of raw BGR 0..255 (as the seed's frozen graphs do) whose
height and width are multiples of 16, and returns one (N, 57, H/8, W/8) tensor per refinement
stage: 19 heatmaps (18 parts + background) then 38 PAF channels, as `Openpose/concat_stage7`.
Layers carry the TensorFlow scope names of the seed's graphs, so the seed's frozen weights load
into them (`load_tf_graph`) and give the same maps as the converted ONNX model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from ..errors import InputError, ModelError, UnknownNameError
from ..models.graphdef import NodeDef, parse_graphdef
from ..skeleton import NUM_HEATMAPS, NUM_PAFS

#: Total stride of every network: the maps are 1/8 of the input size.
STRIDE = 8
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


def _mobilenet_branch(refine_width: float) -> Callable[[int, int, int, int], nn.Module]:
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


def _cmu_branch(cin: int, cout: int, stage: int, lb: int) -> nn.Module:
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


# --------------------------------------------------------------------------- networks


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
        branch = _mobilenet_branch(config.refine_width)
    elif config.family == "mobilenet_v2":
        backbone = MobilenetV2Backbone(config.width, config.backbone_norm)
        branch = _mobilenet_branch(config.refine_width)
    elif config.family == "cmu":
        backbone = VGGFront()
        branch = _cmu_branch
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


# --------------------------------------------------------------------------- TF weights


@dataclass
class TFLayer:
    """One conv of a frozen graph and what directly follows it (bias add or batch norm)."""

    name: str
    op: str
    weight: np.ndarray  # HWIO (Conv2D) or HWC1 (depthwise)
    bias: np.ndarray | None = None
    bn: dict[str, Any] | None = None  # gamma, beta, mean, var, eps, is_training


def tf_layers(pb: str | Path) -> dict[str, TFLayer]:
    """The convolutions of a frozen TF graph by scope ('MobilenetV1/Conv2d_0'), with their
    bias or batch-norm parameters."""
    nodes: dict[str, NodeDef] = {n.name: n for n in parse_graphdef(Path(pb).read_bytes())}
    consumers: dict[str, list[NodeDef]] = {}
    for node in nodes.values():
        for ref in node.inputs:
            if not ref.startswith("^"):
                consumers.setdefault(ref.split(":")[0], []).append(node)

    def const(ref: str) -> np.ndarray | None:
        name = ref.split(":")[0]
        while name in nodes and nodes[name].op in ("Identity", "Snapshot"):
            name = nodes[name].inputs[0].split(":")[0]
        node = nodes.get(name)
        if node is None or node.op != "Const":
            return None
        return np.asarray(node.attr["value"], np.float32)

    layers: dict[str, TFLayer] = {}
    for node in nodes.values():
        if node.op not in ("Conv2D", "DepthwiseConv2dNative"):
            continue
        weight = const(node.inputs[1])
        if weight is None:
            raise ModelError(f"{pb}: conv {node.name!r} has no constant weights")
        scope = node.name.rsplit("/", 1)[0]
        layer = TFLayer(scope, node.op, weight)
        after = consumers.get(node.name, [])
        if len(after) == 1:
            nxt = after[0]
            if nxt.op in ("BiasAdd", "Add", "AddV2"):
                other = [r for r in nxt.inputs if r.split(":")[0] != node.name]
                bias = const(other[0]) if other else None
                if bias is not None and bias.ndim == 1:
                    layer.bias = bias
            elif nxt.op.startswith("FusedBatchNorm"):
                gamma, beta, mean, var = (const(r) for r in nxt.inputs[1:5])
                layer.bn = {"gamma": gamma, "beta": beta, "mean": mean, "var": var,
                            "eps": float(nxt.attr.get("epsilon", TF_BN_EPS)),
                            "is_training": bool(nxt.attr.get("is_training", True))}
        if scope in layers:
            raise ModelError(f"{pb}: two convolutions in scope {scope!r}")
        layers[scope] = layer
    return layers


def graph_uses_batch_stats(pb: str | Path) -> bool:
    """True when some batch norm of the graph runs in training mode (batch statistics)."""
    return any(layer.bn is not None and layer.bn["is_training"] for layer in tf_layers(pb).values())


def _load_unit(unit: ConvUnit, layer: TFLayer) -> None:
    conv = unit.conv
    w = layer.weight
    if unit.depthwise:
        if layer.op != "DepthwiseConv2dNative" or w.shape[3] != 1:
            raise ModelError(f"{layer.name}: expected a depthwise conv with multiplier 1")
        w = w.transpose(2, 3, 0, 1)  # (C, 1, kh, kw)
    else:
        if layer.op != "Conv2D":
            raise ModelError(f"{layer.name}: expected a Conv2D, found {layer.op}")
        w = w.transpose(3, 2, 0, 1)  # OIHW
    if tuple(w.shape) != tuple(conv.weight.shape):
        raise ModelError(f"{layer.name}: weight shape {tuple(w.shape)} does not fit the network's "
                         f"{tuple(conv.weight.shape)}")
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
        norm = unit.norm
        if layer.bn is not None:
            bn = layer.bn
            if isinstance(norm, BatchStatNorm) != bn["is_training"] or norm is None:
                want = "batch statistics" if bn["is_training"] else "running statistics"
                raise ModelError(f"{layer.name}: the graph's batch norm uses {want}; build the "
                                 "network with the matching backbone_norm")
            c = conv.out_channels
            gamma = bn["gamma"] if bn["gamma"] is not None and bn["gamma"].size else np.ones(c)
            norm.weight.copy_(torch.as_tensor(gamma, dtype=torch.float32))
            norm.bias.copy_(torch.as_tensor(bn["beta"], dtype=torch.float32))
            norm.eps = bn["eps"]
            if isinstance(norm, nn.BatchNorm2d):
                norm.running_mean.copy_(torch.as_tensor(bn["mean"], dtype=torch.float32))
                norm.running_var.copy_(torch.as_tensor(bn["var"], dtype=torch.float32))
        elif layer.bias is not None:
            if isinstance(norm, nn.BatchNorm2d):
                # A batch norm folded into the conv (the seed's graph_opt): identity norm + bias.
                norm.weight.fill_(1.0)
                norm.bias.copy_(torch.from_numpy(layer.bias))
                norm.running_mean.zero_()
                norm.running_var.fill_(1.0 - norm.eps)
            elif conv.bias is not None and norm is None:
                conv.bias.copy_(torch.from_numpy(layer.bias))
            else:
                raise ModelError(f"{layer.name}: the graph adds a bias the network cannot hold")
        elif norm is not None or conv.bias is not None:
            raise ModelError(f"{layer.name}: the graph has no bias/norm after this conv")


def load_tf_graph(net: PoseNetwork, pb: str | Path) -> PoseNetwork:
    """Load the weights of a seed frozen graph (.pb) into `net`, checking that every layer of
    the network and every convolution of the graph's stages it covers is matched."""
    layers = tf_layers(pb)
    used = set()
    for unit in net.units():
        if unit.tf_name not in layers:
            raise ModelError(f"{pb}: no convolution {unit.tf_name!r} in the graph "
                             f"(is it a {net.config.name} graph?)")
        _load_unit(unit, layers[unit.tf_name])
        used.add(unit.tf_name)
    def stage_of(scope: str) -> int:
        m = re.search(r"[Ss]tage(\d+)", scope)
        return int(m[1]) if m else 0

    extra = [n for n in layers if n not in used and stage_of(n) <= net.config.stages]
    if extra:
        raise ModelError(f"{pb}: {len(extra)} convolutions of the graph are not in the network, "
                         f"e.g. {extra[0]!r}")
    return net


def network_from_graph(name: str, pb: str | Path, stages: int | None = None) -> PoseNetwork:
    """Build the named network with the layout of a seed graph and load its weights."""
    norm = "batch" if graph_uses_batch_stats(pb) else "bn"
    net = build_network(name, stages=stages, backbone_norm=norm)
    return load_tf_graph(net, pb)


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
