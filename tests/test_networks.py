"""PyTorch networks: the seed's weights give the seed's maps, every named network builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import SHARED, need
from .test_train import _run_maps, _torch

REFERENCE = SHARED / "models" / "reference"
V2_PB = SHARED / "models" / "mobilenet_v2_small_graph_opt.pb"


def _reference(name: str) -> dict[str, np.ndarray]:
    with np.load(need(REFERENCE / f"{name}.npz")) as data:
        return {k: data[k] for k in data.files}


def test_seed_mobilenet_thin_in_pytorch_matches_onnx(thin_pb: Path) -> None:
    _torch()
    from pafpose.models.resolve import resolve_model
    from pafpose.runtime import Runtime
    from pafpose.train.networks import network_from_graph

    net = network_from_graph("mobilenet_thin", thin_pb)
    runtime = Runtime(resolve_model("mobilenet_thin", progress=False), threads=2)
    for case in ("astronaut_432x368", "noise_320x240"):
        ref = _reference(f"mobilenet_thin__{case}")
        out = _run_maps(net, ref["input"])
        onnx_out = runtime.run(ref["input"].astype(np.float32)).transpose(0, 2, 3, 1)
        # Same float32 graph, different summation order: ~5e-6 on maps of magnitude ~1 (the
        # ONNX model itself is 4e-6 from TensorFlow); a wrong pad, layer or BN fold is >= 1e-2.
        assert float(np.abs(out - onnx_out).max()) <= 1e-4, case
        assert float(np.abs(out - ref["output"]).max()) <= 1e-4, case


def test_seed_mobilenet_v2_small_in_pytorch_matches_tensorflow() -> None:
    _torch()
    from pafpose.train.networks import BatchStatNorm, network_from_graph

    net = network_from_graph("mobilenet_v2_small", need(V2_PB))
    assert sum(isinstance(m, BatchStatNorm) for m in net.backbone.modules()) == 39
    for case in ("astronaut_432x368", "coco_656x368", "noise_320x240"):
        ref = _reference(f"mobilenet_v2_small__{case}")
        out = _run_maps(net, ref["input"])
        # The backbone normalises with each input's own statistics (TF is_training=True), which
        # amplifies float32 rounding: up to ~7e-4 on the COCO photo (the ONNX conversion is
        # 3e-4 from TF there), 2e-5 elsewhere. The converter's oracle tolerance is 1e-3.
        assert float(np.abs(out - ref["output"]).max()) <= 1e-3, case


def test_networks_build_and_reject_foreign_weights(thin_pb: Path) -> None:
    torch = _torch()
    from pafpose.train.networks import NETWORKS, build_network, load_tf_graph

    for name in NETWORKS:
        net = build_network(name, stages=2 if name == "cmu" else None).eval()
        size = 32 if name == "cmu" else 64
        with torch.no_grad():
            outs = net(torch.zeros(1, 3, size, size + 16))
        assert len(outs) == net.config.stages
        assert tuple(outs[-1].shape) == (1, 57, size // 8, (size + 16) // 8), name
    with pytest.raises(ValueError, match="no convolution"):
        load_tf_graph(build_network("mobilenet_v2_small"), thin_pb)
    with pytest.raises(ValueError, match="does not fit"):
        load_tf_graph(build_network("mobilenet_thin", refine_width=0.75), thin_pb)
