"""ONNX Runtime session: execution providers, thread count, dynamic input size."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort


def default_threads() -> int:
    """A sensible intra-op thread count: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class Runtime:
    """One ONNX Runtime inference session over a pose network (NHWC or NCHW input, any size)."""

    def __init__(
        self,
        onnx_path: str | Path,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        available = ort.get_available_providers()
        wanted = list(providers) if providers else ["CPUExecutionProvider"]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise ValueError(
                f"execution provider(s) {', '.join(missing)} not installed; "
                f"available: {', '.join(available)}"
            )
        if "CPUExecutionProvider" not in wanted:
            wanted.append("CPUExecutionProvider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=wanted)
        self.providers: list[str] = self.session.get_providers()
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        self.nhwc: bool = inp.shape[-1] == 3
        self.output_name: str = self.session.get_outputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an NHWC float32 batch; return its maps as N x C x h x w float32."""
        x = batch if self.nhwc else np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        (out,) = self.session.run([self.output_name], {self.input_name: x})
        if out.shape[1] != 57 and out.shape[-1] == 57:  # NHWC output
            out = out.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out, dtype=np.float32)
