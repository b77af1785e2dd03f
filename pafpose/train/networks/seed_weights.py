"""Loading the seed's frozen TensorFlow weights (a GraphDef .pb) into a network, by the TF scope
names its conv units carry, with every layer of both sides checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import ModelError
from ...models.graphdef import NodeDef, parse_graphdef
from .blocks import TF_BN_EPS, BatchStatNorm, ConvUnit, PoseNetwork
from .configs import build_network


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
