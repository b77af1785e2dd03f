"""The seed's `cmu` frozen graph through the TensorFlow converter, against OpenCV's TF importer.

tf-pose-estimation's `cmu` graph (models/graph/cmu/graph_opt.pb, ~200 MB, not downloadable
here) is written here op for op as its network_cmu.py builds it and the seed freezes it: the
`image` placeholder (raw BGR 0..255), the in-graph normalisation x / 256 - 0.5 (RealDiv, Sub),
VGG-19 convs (Conv2D SAME + BiasAdd + Relu), VALID 2x2 max pools, the stage concats and
`Openpose/concat_stage7`, with the seed's node names. The weights are random (seeded) and come
from pafpose's PyTorch `cmu` network, which gives a third reference. Two stages keep the file
at ~70 MB and the test at seconds; every op and layer kind of the 6-stage graph is in them.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from pafpose.models import tfgraph
from pafpose.models.tfgraph.ops import OPS

from .graphdef_bytes import _const, _graph, _node

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install torch, "
                                            "see DEVELOPERS.md)")

STAGES = 2
#: Network input (height, width): small, a multiple of 16.
SIZE = (80, 96)
#: The ops of the seed's cmu graph_opt.pb (network_cmu.py after freezing).
CMU_OPS = {"Placeholder", "Const", "RealDiv", "Sub", "Conv2D", "BiasAdd", "Relu", "MaxPool",
           "ConcatV2"}
_FLOAT, _INT32 = ("type", 1), ("type", 3)


def cmu_graphdef(net) -> bytes:
    """The seed's cmu graph with the weights of pafpose's PyTorch cmu network `net`."""
    from pafpose.train.networks import VGGFront

    units = {u.tf_name: u for u in net.units()}
    nodes = [
        _node("image", "Placeholder", dtype=_FLOAT, shape=("shape", [-1, -1, -1, 3])),
        _const("preprocess_divide/y", np.array(256.0, np.float32), typed=True),
        _node("preprocess_divide", "RealDiv", ["image", "preprocess_divide/y"], T=_FLOAT),
        _const("preprocess_subtract/y", np.array(0.5, np.float32), typed=True),
        _node("preprocess_subtract", "Sub", ["preprocess_divide", "preprocess_subtract/y"],
              T=_FLOAT),
    ]

    def conv(name: str, src: str, relu: bool = True) -> str:
        unit = units[name].conv
        weights = unit.weight.detach().numpy().transpose(2, 3, 1, 0)  # OIHW -> HWIO
        nodes.extend([
            _const(f"{name}/weights", np.ascontiguousarray(weights)),
            _const(f"{name}/biases", unit.bias.detach().numpy()),
            _node(f"{name}/Conv2D", "Conv2D", [src, f"{name}/weights"], T=_FLOAT,
                  strides=[1, 1, 1, 1], padding="SAME", data_format="NHWC"),
            _node(f"{name}/BiasAdd", "BiasAdd", [f"{name}/Conv2D", f"{name}/biases"], T=_FLOAT,
                  data_format="NHWC"),
        ])
        if not relu:
            return f"{name}/BiasAdd"
        nodes.append(_node(f"{name}/{name}", "Relu", [f"{name}/BiasAdd"], T=_FLOAT))
        return f"{name}/{name}"

    def concat(name: str, inputs: list[str]) -> str:
        nodes.append(_const(f"{name}/axis", np.array(3, np.int32), typed=True))
        nodes.append(_node(name, "ConcatV2", [*inputs, f"{name}/axis"], N=len(inputs), T=_FLOAT,
                           Tidx=_INT32))
        return name

    x, pools = "preprocess_subtract", 0
    for item in VGGFront.PLAN:
        if item == "pool":
            pools += 1
            nodes.append(_node(f"pool{pools}_stage1", "MaxPool", [x], T=_FLOAT,
                               ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID",
                               data_format="NHWC"))
            x = f"pool{pools}_stage1"
        else:
            x = conv(item[0], x)
    features, stage_in = x, x
    outs: dict[int, str] = {}
    for stage in range(1, STAGES + 1):
        if stage > 1:
            stage_in = concat(f"concat_stage{stage}", [outs[1], outs[2], features])
        for branch in (1, 2):  # L1: PAFs, L2: heatmaps
            y = stage_in
            names = ([f"conv5_{j}_CPM_L{branch}" for j in range(1, 6)] if stage == 1 else
                     [f"Mconv{j}_stage{stage}_L{branch}" for j in range(1, 8)])
            for i, name in enumerate(names):
                y = conv(name, y, relu=i < len(names) - 1)
            outs[branch] = y
    concat("Openpose/concat_stage7", [outs[2], outs[1]])
    return _graph(*nodes)


@pytest.fixture(scope="module")
def cmu(tmp_path_factory):
    """(graph_opt.pb of the seed's cmu layout with 2 stages, the PyTorch network it holds)."""
    from pafpose.train.networks import build_network

    net = build_network("cmu", stages=STAGES).eval()
    gen = torch.Generator().manual_seed(14)
    with torch.no_grad():
        for unit in net.units():  # weights of order 1 through all layers (He), random biases
            w = unit.conv.weight
            w.copy_(torch.randn(w.shape, generator=gen) * (2.0 / w[0].numel()) ** 0.5)
            unit.conv.bias.copy_(torch.randn(w.shape[0], generator=gen) * 0.1)
    pb = tmp_path_factory.mktemp("cmu") / "graph_opt.pb"
    pb.write_bytes(cmu_graphdef(net))
    return pb, net


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A raw BGR 0..255 float image of the test size."""
    return np.random.default_rng(5).integers(0, 256, (*SIZE, 3)).astype(np.float32)


def _pytorch_maps(net, image: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        outs = net(torch.from_numpy(image.transpose(2, 0, 1)[None].copy()))
    return [o.numpy().transpose(0, 2, 3, 1) for o in outs]  # NHWC, as the converted model


def _onnx_maps(model, image: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": image[None]})
    return out


def _close(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    spread = float(expected.max() - expected.min())
    assert spread > 0.1  # maps that vary: the comparison means something
    assert float(np.abs(got - expected).max()) <= 1e-4 * spread


def test_every_op_of_the_seed_cmu_graph_is_converted(cmu) -> None:
    pb, _ = cmu
    ops = tfgraph.list_ops(pb)
    assert set(ops) == CMU_OPS
    assert CMU_OPS - {"Const"} <= set(OPS)
    # 12 front convs, 2 x 5 in stage 1, 2 x 7 in each later stage (6 stages: 92, the Caffe count)
    assert ops["Conv2D"] == ops["BiasAdd"] == 12 + 10 + 14 * (STAGES - 1)


def test_converted_cmu_matches_opencv_and_pytorch(cmu, image: np.ndarray) -> None:
    pb, net = cmu
    got = _onnx_maps(tfgraph.convert_graphdef(pb), image)
    assert got.shape == (1, SIZE[0] // 8, SIZE[1] // 8, 57)

    # OpenCV's TensorFlow importer on the same file, fed the raw pixels (the graph normalises).
    opencv = cv2.dnn.readNetFromTensorflow(str(pb))
    opencv.setInput(cv2.dnn.blobFromImage(image, 1.0, SIZE[::-1], (0, 0, 0), swapRB=False,
                                          crop=False))
    _close(got, opencv.forward().transpose(0, 2, 3, 1))
    _close(got, _pytorch_maps(net, image)[-1])


def test_cmu_stages_are_found_and_truncate(cmu, image: np.ndarray) -> None:
    """`--stages K` works on cmu graphs too: stage 1 ends at conv5_5_CPM_L1/L2."""
    pb, net = cmu
    assert tfgraph.num_stages(pb) == STAGES
    assert tfgraph.stage_outputs(pb, 1) == ["conv5_5_CPM_L2/BiasAdd", "conv5_5_CPM_L1/BiasAdd"]
    got = _onnx_maps(tfgraph.convert_graphdef(pb, stage=1), image)
    _close(got, _pytorch_maps(net, image)[0])
