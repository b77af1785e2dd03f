"""The TensorFlow side of the converter: a parsed GraphDef, node references and attributes,
the tf-pose-estimation stage layout, and the errors a malformed graph raises."""

from __future__ import annotations

import re
import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from ..graphdef import TF_DTYPES, GraphDefError, NodeDef, parse_graphdef

#: Output of the tf-pose-estimation graphs: final heatmaps (19) then PAFs (38), NHWC.
DEFAULT_OUTPUT = "Openpose/concat_stage7"
#: Ops that hand their input through unchanged.
PASS_THROUGH = {"Identity", "StopGradient", "Snapshot"}


class UnsupportedOpError(GraphDefError):
    """The graph contains a TensorFlow op (or op variant) that the converter cannot map."""


@dataclass
class Graph:
    """Parsed graph: nodes by name, in file order."""

    nodes: dict[str, NodeDef] = field(default_factory=dict)


def split_ref(ref: str) -> tuple[str, int]:
    """'name:1' -> ('name', 1); 'name' -> ('name', 0)."""
    name, _, idx = ref.partition(":")
    return name, int(idx) if idx else 0


def data_inputs(node: NodeDef) -> list[str]:
    """Input references of a node without control dependencies ('^name')."""
    return [i for i in node.inputs if not i.startswith("^")]


#: Errors that numpy, onnx and plain Python raise on nonsense that a malformed graph feeds them.
_MALFORMED = (IndexError, KeyError, TypeError, ValueError, OverflowError, ZeroDivisionError,
              RecursionError, struct.error, onnx.checker.ValidationError,
              onnx.shape_inference.InferenceError)


@contextmanager
def malformed(pb_path: str | Path) -> Iterator[None]:
    """Turn any error that a malformed graph provokes into a GraphDefError naming the file."""
    try:
        yield
    except GraphDefError as exc:
        if str(pb_path) in str(exc):
            raise
        raise type(exc)(f"{pb_path}: {exc}") from exc
    except _MALFORMED as exc:
        raise GraphDefError(
            f"{pb_path}: cannot convert this TensorFlow GraphDef ({type(exc).__name__}: {exc})"
        ) from exc


def load(pb_path: str | Path) -> Graph:
    """Read and parse a GraphDef file; malformed files raise GraphDefError."""
    data = Path(pb_path).read_bytes()
    try:
        nodes = parse_graphdef(data)
    except GraphDefError as exc:
        raise GraphDefError(f"{pb_path}: not a valid TensorFlow GraphDef ({exc})") from exc
    graph = Graph()
    for node in nodes:
        if node.name in graph.nodes:
            raise GraphDefError(f"{pb_path}: duplicate node name {node.name!r}")
        graph.nodes[node.name] = node
    return graph


def list_ops(pb_path: str | Path) -> dict[str, int]:
    """Histogram of op types in a GraphDef, most frequent first."""
    with malformed(pb_path):
        graph = load(pb_path)
    return dict(Counter(n.op for n in graph.nodes.values()).most_common())


def default_outputs(graph: Graph) -> list[str]:
    """concat_stage7 when present, else the sink nodes that are not constants."""
    if DEFAULT_OUTPUT in graph.nodes:
        return [DEFAULT_OUTPUT]
    consumed = {split_ref(r)[0] for n in graph.nodes.values() for r in data_inputs(n)}
    return [n for n, node in graph.nodes.items()
            if n not in consumed and node.op not in ("Const", "NoOp", "Placeholder")]


# --------------------------------------------------------------------------- stages

#: The concat that starts a stage: mobilenet graphs 'Openpose/MConv_Stage2_concat', cmu
#: 'concat_stage2'.
_STAGE_CONCAT = re.compile(r"MConv_Stage(\d+)_concat$|(?:^|/)concat_stage(\d+)$")
#: A stage's branch output (stage, L1 or L2): mobilenet graphs 'Openpose/MConv_Stage1_L1_5_...',
#: cmu 'Mconv7_stage2_L1/BiasAdd' and, in its first stage, 'conv5_5_CPM_L1/BiasAdd'.
_STAGE_BRANCHES = (re.compile(r"MConv_Stage(?P<stage>\d+)_L(?P<branch>[12])_"),
                   re.compile(r"Mconv\d+_stage(?P<stage>\d+)_L(?P<branch>[12])(?:/|$)"),
                   re.compile(r"(?:^|/)conv5_\d+_CPM_L(?P<branch>[12])(?:/|$)"))


def _branch(name: str) -> tuple[int, str] | None:
    """(stage, "1" or "2") of a node inside a stage's branch, else None."""
    for pattern in _STAGE_BRANCHES:
        m = pattern.search(name)
        if m:
            return int(m.groupdict().get("stage") or 1), m["branch"]
    return None


def _stage_maps(graph: Graph, concat: str) -> tuple[int, list[str]] | None:
    """(stage, [heatmap node, PAF node]) read from the inputs of a concat node, if it has them.

    In tf-pose graphs branch L1 gives the PAFs and L2 the heatmaps of a stage.
    """
    node = graph.nodes[concat]
    found: dict[tuple[int, str], str] = {}
    for ref in data_inputs(node):
        src = split_ref(ref)[0]
        branch = _branch(src)
        if branch:
            found[branch] = src
    stages = {k for k, _ in found}
    if len(stages) != 1:
        return None
    k = stages.pop()
    if (k, "1") not in found or (k, "2") not in found:
        return None
    return k, [found[(k, "2")], found[(k, "1")]]


def stage_table(graph: Graph) -> dict[int, list[str]]:
    """Stage number -> [heatmap node, PAF node] for a tf-pose-estimation graph.

    Stage K+1 starts with 'MConv_Stage{K+1}_concat' ('concat_stage{K+1}' in cmu) = concat(PAFs
    of K, heatmaps of K, features); the last stage's maps are the inputs of
    'Openpose/concat_stage7' (heatmaps first).
    """
    table: dict[int, list[str]] = {}
    for name, node in graph.nodes.items():
        if node.op in ("ConcatV2", "Concat") and (
                _STAGE_CONCAT.search(name) or name == DEFAULT_OUTPUT):
            found = _stage_maps(graph, name)
            if found is not None:
                table[found[0]] = found[1]
    return dict(sorted(table.items()))


def num_stages(pb_path: str | Path) -> int:
    """Number of refinement stages (including the first) in a tf-pose-estimation graph."""
    with malformed(pb_path):
        table = stage_table(load(pb_path))
    return max(table) if table else 0


def stage_outputs(pb_path: str | Path, stage: int) -> list[str]:
    """TF node names [heatmaps, PAFs] produced by refinement stage `stage` (1-based)."""
    with malformed(pb_path):
        table = stage_table(load(pb_path))
    if stage not in table:
        raise ValueError(f"{pb_path}: no stage {stage} (stages found: {sorted(table)})")
    return list(table[stage])


# --------------------------------------------------------------------------- attributes


def tf_dtype(node: NodeDef, attr: str) -> np.dtype:
    """Numpy dtype of a DataType attribute."""
    enum = node.attr.get(attr)
    if enum not in TF_DTYPES:
        raise UnsupportedOpError(
            f"unsupported TensorFlow dtype {enum} for {node.op!r} at node {node.name!r}"
        )
    return TF_DTYPES[enum]


def bytes_attr(node: NodeDef, attr: str, default: str) -> str:
    """A string attribute (stored as bytes) as text."""
    value = node.attr.get(attr)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else default


def nhwc_pairs(node: NodeDef, attr: str) -> list[int]:
    """The H and W entries of an NHWC 4-list attribute (strides, ksize, dilations)."""
    value = node.attr.get(attr) or [1, 1, 1, 1]
    if len(value) != 4 or value[0] != 1 or value[3] != 1:
        raise UnsupportedOpError(
            f"unsupported {attr}={value} for TensorFlow op {node.op!r} at node {node.name!r}"
        )
    return [int(value[1]), int(value[2])]
