"""Lightweight OpenPose checkpoints (Osokin's `checkpoint_iter_370000.pth`) -> ONNX.

The checkpoint is read with PyTorch's weights-only loader (tensors and plain data; no code runs),
its `state_dict` matched key by key and shape by shape against pafpose's own definition of the
network (`pafpose.train.networks.lightweight`), and the network exported with 1 (published) or
more refinement stages. Stored refinement stages beyond those asked for are dropped, as the
original project does; any other missing or extra key is an error naming it.

The ONNX model: input `image`, NCHW float32 [1, 3, H, W] with dynamic H and W; output
`heatmaps_pafs`, NCHW [1, 57, H/8, W/8] (19 heatmaps then 38 PAFs). Lightweight OpenPose's
keypoints, limbs and PAF channel pairs are OpenPose-18's, entry by entry, so the declared
skeleton is `openpose18` and no channel is moved. The input normalisation (x - 128) / 256 is
declared in the metadata, not built into the graph. PyTorch is needed only here (imported
lazily): `pip install '.[train]'`.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx

from ..errors import InputError, MissingDependencyError, ModelError, NotFoundError
from .integrity import ModelFileError

#: Bump when the exported graph changes, so cached conversions are rebuilt.
CONVERTER_VERSION = "1"
INPUT_NAME = "image"
OUTPUT_NAME = "heatmaps_pafs"
OPSET = 17
#: The layout the converted model declares (the shared metadata_props convention).
LAYOUT: dict[str, str] = {
    "pafpose.skeleton": "openpose18",
    "pafpose.input": "(bgr-128)/256",
    "pafpose.output": "heatmaps+pafs",
    "pafpose.stride": "8",
}
#: Size of the traced sample input (H, W); the exported graph takes any multiple of 8.
_SAMPLE = (64, 64)
_STAGE_KEY = re.compile(r"refinement_stages\.(\d+)\.")
#: Counters of BatchNorm that do not change inference; checkpoints of old PyTorch lack them.
_OPTIONAL_SUFFIX = "num_batches_tracked"


def _require_torch() -> Any:
    """The torch module, or a one-line MissingDependencyError."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "converting a Lightweight OpenPose checkpoint needs PyTorch: pip install '.[train]'"
        ) from None
    return torch


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The `state_dict` of a checkpoint (or a bare state dict), loaded weights-only on the CPU."""
    torch = _require_torch()
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickler, zip and storage errors of a foreign or damaged file
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found:
            raise ModelFileError(
                f"{path}: refused: the checkpoint holds Python objects, not only tensors and "
                f"plain data ({found[1]}); pafpose loads checkpoints weights-only and runs no "
                "code from them") from None
        raise ModelFileError(f"{path}: damaged, or not a PyTorch checkpoint ({_gist(exc)})"
                             ) from None
    if isinstance(ckpt, Mapping) and ckpt.get("format") == "pafpose-train-1":
        raise ModelError(f"{path} is a pafpose training checkpoint: export it to ONNX with "
                         "`pafpose export`")
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping) or not state:
        raise ModelError(f"{path}: no state_dict in this checkpoint")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"{path}: state_dict entry {key!r} is not a tensor")
    return dict(state)


def _gist(exc: BaseException) -> str:
    """The telling part of a torch.load error, in one line."""
    text = str(exc)
    _, marker, after = text.partition("WeightsUnpickler error:")
    if marker:
        text = after
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0].split(". ")[0].rstrip(".") if lines else type(exc).__name__


def _more(items: list[str]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def check_state_dict(state: Mapping[str, Any], expected: Mapping[str, Any], source: str,
                     wanted: int) -> None:
    """Raise a one-line ModelError naming the first missing, extra or misshapen key of `state`
    against `expected`, the state dict of the network with `wanted` refinement stages.

    Refinement stages stored beyond those wanted are not extra (they are dropped);
    BatchNorm's `num_batches_tracked` counters may be absent.
    """
    stored = {int(m[1]) for k in state if (m := _STAGE_KEY.match(k))}
    have = len(stored)
    kept = [k for k in state if not ((m := _STAGE_KEY.match(k)) and int(m[1]) >= wanted)]
    missing = [k for k in expected if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    if missing and wanted > have and all(_STAGE_KEY.match(k) for k in missing):
        raise ModelError(f"{source} holds {have} refinement stage{'s' * (have != 1)}, not "
                         f"{wanted} (missing key {missing[0]!r})")
    if missing:
        raise ModelError(f"{source} does not fit Lightweight OpenPose: missing key "
                         f"{missing[0]!r}{_more(missing)}")
    extra = [k for k in kept if k not in expected]
    if extra:
        raise ModelError(f"{source} does not fit Lightweight OpenPose: unexpected key "
                         f"{extra[0]!r}{_more(extra)}")
    for key in kept:
        got, want = tuple(state[key].shape), tuple(expected[key].shape)
        if got != want:
            raise ModelError(f"{source}: key {key!r} has shape {got}, the network needs {want}")


def load_network(path: str | Path, refinement_stages: int = 1) -> Any:
    """Pafpose's Lightweight OpenPose network with a checkpoint's weights, in eval mode."""
    if not isinstance(refinement_stages, int) or refinement_stages < 0:
        raise InputError(f"refinement_stages must be 0 or more, not {refinement_stages!r}")
    state = read_state_dict(path)
    from ..train.networks.lightweight import LightweightOpenPose

    net = LightweightOpenPose(refinement_stages)
    expected = net.state_dict()
    check_state_dict(state, expected, str(path), refinement_stages)
    net.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
    return net.eval()


def convert_checkpoint(path: str | Path, refinement_stages: int = 1) -> onnx.ModelProto:
    """A Lightweight OpenPose checkpoint as an ONNX model with `refinement_stages` stages after
    the initial one, its layout declared in metadata_props (see the module docstring)."""
    torch = _require_torch()
    from ..train.networks.lightweight import LastStageMaps

    net = load_network(path, refinement_stages)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastStageMaps(net), (torch.zeros(1, 3, *_SAMPLE),), buffer, dynamo=False,
            opset_version=OPSET, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {2: "H", 3: "W"}, OUTPUT_NAME: {2: "height", 3: "width"}},
        )
    model = onnx.load_from_string(buffer.getvalue())
    meta = {**LAYOUT, "pafpose.network": "lightweight_openpose",
            "pafpose.refinement_stages": str(refinement_stages)}
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "pafpose.models.lightweight"
    onnx.checker.check_model(model)
    return model
