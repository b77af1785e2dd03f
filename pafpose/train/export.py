"""Checkpoint -> ONNX with the converted seed models' convention, for PoseEstimator and the CLI.

Input `image`: NHWC float32 raw BGR 0..255, dynamic batch, height and width (multiples of 16).
Output `Openpose/concat_stage7`: NHWC float32 at stride 8, 19 heatmaps then 38 PAFs.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..defaults import DEFAULT_INPUT_SIZE
from ..errors import ModelError, NotFoundError
from ..files import atomic_path
from .networks import NetworkConfig, PoseNetwork, build_network

INPUT_NAME = "image"
OUTPUT_NAME = "Openpose/concat_stage7"
OPSET = 17
#: Format tag of training checkpoints.
CHECKPOINT_FORMAT = "pafpose-train-1"


class NHWCPoseModel(nn.Module):
    """A pose network seen as the seed's graphs: NHWC raw BGR in, last stage's maps NHWC out."""

    def __init__(self, net: PoseNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) -> (N, H/8, W/8, 57)."""
        maps = self.net(image.permute(0, 3, 1, 2))[-1]
        return maps.permute(0, 2, 3, 1)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint; a clear ModelError (a ValueError) if the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # pickle, zip or unpickler errors of a foreign or damaged file
        raise ModelError(f"{path}: not a pafpose training checkpoint (unreadable)") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not a pafpose training checkpoint")
    return ckpt


def network_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> PoseNetwork:
    """Rebuild the network of a checkpoint (or checkpoint path) with its weights, in eval mode."""
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    net = build_network(NetworkConfig(**ckpt["network"]))
    net.load_state_dict(ckpt["model"])
    return net.eval()


def export_onnx(
    net: PoseNetwork, output: str | Path, metadata: dict[str, str] | None = None,
    sample_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
) -> Path:
    """Write `net` as an ONNX model (atomically) with the seed graphs' input/output convention."""
    import onnx

    output = Path(output)
    was_training = net.training
    model = NHWCPoseModel(net).eval()
    w, h = sample_size
    dummy = torch.zeros(1, h, w, 3)
    try:
        with atomic_path(output) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (dummy,), str(tmp), dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "N", 1: "H", 2: "W"},
                              OUTPUT_NAME: {0: "N", 1: "height", 2: "width"}},
            )
            proto = onnx.load(str(tmp))
            meta = {"pafpose.network": json.dumps(net.config.to_dict()),
                    # the layout keys of pafpose.layout: raw BGR 0..255 (NHWC, H and W
                    # multiples of 16), OpenPose-18, one output of heatmaps then PAFs
                    "pafpose.skeleton": "openpose18", "pafpose.input": "bgr255",
                    "pafpose.output": "heatmaps+pafs", "pafpose.stride": "8",
                    **(metadata or {})}
            for key, value in meta.items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, str(value)
            proto.producer_name = "pafpose.train.export"
            onnx.checker.check_model(proto)
            onnx.save(proto, str(tmp))
    finally:
        net.train(was_training)
    return output


def export_checkpoint(checkpoint: str | Path, output: str | Path) -> Path:
    """Export a training checkpoint to ONNX; `PoseEstimator(model=output)` then runs it."""
    ckpt = load_checkpoint(checkpoint)
    net = network_from_checkpoint(ckpt)
    size = tuple(ckpt.get("train", {}).get("input_size") or DEFAULT_INPUT_SIZE)
    meta = {"pafpose.checkpoint_step": str(ckpt.get("step", ""))}
    return export_onnx(net, output, meta, sample_size=(int(size[0]), int(size[1])))
