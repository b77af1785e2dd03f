"""Small ONNX pose networks of any declared layout, built with the onnx helper API for tests.

The network is one random 8x8 stride-8 convolution per output (NCHW input [1, 3, h, w] with
dynamic h and w), plus fixed maps: the heatmaps and PAFs of template people rendered at the
map size of a 432x368 input (run it at that size, e.g. `--resize 432x368`). The random part is
small, so the people decode where they were drawn; with `people=[]` the maps are noise only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pafpose.layout import NetworkLayout
from pafpose.skeleton import Skeleton

from .decode_maps import H, W, person_of, render

#: The network input size the fixed maps are drawn for (w, h): 8 x (W, H).
SIZE = (8 * W, 8 * H)


def template_people(skeleton: Skeleton) -> list[np.ndarray]:
    """Two people standing side by side, in low-res cells of the SIZE input."""
    return [person_of(skeleton, 15.0, 24.0, 1.2), person_of(skeleton, 38.0, 25.0, 1.2)]


def pose_model(
    path: Path,
    skeleton: Skeleton,
    input: str = "bgr/256-0.5",
    output: str = "heatmaps+pafs",
    *,
    channels: tuple[int, ...] | None = None,
    people: list[np.ndarray] | None = None,
    declare: bool = True,
    seed: int = 0,
) -> Path:
    """Write a pose network of a declared layout (metadata_props) to `path` and return it.

    channels: the channels of each output (default: what the layout needs; give others to
    make a model that does not match its declaration).
    """
    layout = NetworkLayout(skeleton, input, output)
    wanted = channels or layout.output_channels
    rng = np.random.default_rng(seed)
    heat, paf = render(template_people(skeleton) if people is None else people,
                       skeleton=skeleton)
    fixed = np.concatenate([heat, paf])[None]
    if len(wanted) == 2:
        blocks = [fixed[:, :skeleton.num_heatmaps], fixed[:, skeleton.num_heatmaps:]]
    else:
        blocks = [fixed]
    nodes, inits, outputs = [], [], []
    for i, (n, block) in enumerate(zip(wanted, blocks, strict=True)):
        if block.shape[1] != n:  # a mismatching model: any maps of its channel count
            block = np.zeros((1, n, H, W), np.float32)
        weight = (rng.standard_normal((n, 3, 8, 8)) * 1e-4).astype(np.float32)
        inits += [numpy_helper.from_array(weight, f"w{i}"),
                  numpy_helper.from_array(block.astype(np.float32), f"maps{i}")]
        nodes += [helper.make_node("Conv", ["image", f"w{i}"], [f"conv{i}"], kernel_shape=[8, 8],
                                   strides=[8, 8]),
                  helper.make_node("Add", [f"conv{i}", f"maps{i}"], [f"out{i}"])]
        outputs.append(helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT,
                                                     [1, n, "h8", "w8"]))
    graph = helper.make_graph(
        nodes, "pose", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                      [1, 3, "h", "w"])], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if declare:
        helper.set_model_props(model, layout.metadata())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
