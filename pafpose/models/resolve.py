"""Turn a model name or path into a cached ONNX file (fetching and converting as needed)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from ..defaults import DEFAULT_INPUT_SIZE, cache_dir
from ..errors import InputError, ModelError, NotFoundError
from ..files import atomic_path
from . import tfgraph
from .fetch import fetch_source
from .integrity import (
    check_built,
    current_sha256,
    file_sha256,
    log,
    read_record,
    remove_stale_temporaries,
    write_record,
)
from .registry import MODELS

#: Bump when the converter's output changes, so cached conversions are rebuilt.
CONVERTER_VERSION = "1"


def _converted_path(pb: Path, stages: int | None) -> Path:
    """Beside the source when its folder is writable, else in the cache, keyed by content."""
    name = pb.stem + (f".stage{stages}" if stages else "") + ".onnx"
    if os.access(pb.parent, os.W_OK):
        return pb.parent / name
    return cache_dir() / "converted" / current_sha256(pb)[:16] / name


def _cached_problem(onnx_path: Path, wanted: dict[str, str]) -> str | None:
    """None when a cached ONNX file is intact and carries the wanted metadata, else why not.

    Intact: unchanged since pafpose wrote it (size + mtime, else sha256, against its record).
    """
    problem = check_built(onnx_path)
    if problem is not None:
        return problem
    meta = (read_record(onnx_path) or {}).get("meta") or {}
    if any(meta.get(k) != v for k, v in wanted.items()):
        return "was made from another source or by another converter version"
    return None


def _save_built(model: onnx.ModelProto, out: Path, meta: dict[str, str]) -> None:
    """Write an ONNX model atomically with `meta` in its metadata_props, and record its hash."""
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    data = model.SerializeToString()
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    write_record(out, hashlib.sha256(data).hexdigest(), meta=meta)


def _rebuilding(out: Path, problem: str, source: Path) -> None:
    """Say in one line why a cached model is rebuilt (nothing when it simply is not built yet)."""
    if problem != "is missing":
        log.warning("pafpose: %s %s; rebuilding it from %s", out, problem, source.name)


def convert_cached(pb: Path, stages: int | None = None) -> Path:
    """Convert a frozen TensorFlow graph to ONNX once and cache it (rebuilt when stale/damaged).

    The ONNX file's metadata_props record the source's sha256 and the converter version.
    """
    out = _converted_path(pb, stages)
    remove_stale_temporaries(out.parent)
    meta = {"pafpose.converter": CONVERTER_VERSION, "pafpose.source_sha256": current_sha256(pb)}
    problem = _cached_problem(out, meta)
    if problem is None:
        return out
    model = tfgraph.convert_graphdef(pb, stage=stages)
    _rebuilding(out, problem, pb)
    _save_built(model, out, meta)
    return out


#: Bump when the INT8 recipe (models/quantize.py) changes, so cached INT8 models are rebuilt.
QUANTIZER_VERSION = "1"
#: Network input size the calibration images are stretched to.
CALIBRATION_SIZE = DEFAULT_INPUT_SIZE

Calibration = str | Path | Sequence[str | Path | np.ndarray]


def _int8_path(fp32: Path) -> Path:
    name = fp32.stem + ".int8.onnx"
    if os.access(fp32.parent, os.W_OK):
        return fp32.parent / name
    return cache_dir() / "converted" / current_sha256(fp32)[:16] / name


def _calibration_images(calibration: Calibration, progress: bool) -> list[np.ndarray]:
    """BGR images from a folder, a list of image files, or arrays."""
    from ..images import expand_inputs, read_image

    items = [calibration] if isinstance(calibration, str | Path) else list(calibration)
    arrays = [a for a in items if isinstance(a, np.ndarray)]
    paths = expand_inputs([a for a in items if not isinstance(a, np.ndarray)])
    for path in tqdm(paths, desc="calibration", unit="img", disable=not progress):
        arrays.append(read_image(path))
    return arrays


def quantize_cached(fp32: Path, calibration: Calibration | None = None,
                    progress: bool = True) -> Path:
    """The INT8 model of an fp32 ONNX file: cached beside it, built once from calibration images."""
    from .quantize import calibration_tensors, quantize_int8

    out = _int8_path(fp32)
    remove_stale_temporaries(out.parent)
    source_sha = current_sha256(fp32)
    problem = _cached_problem(out, {"pafpose.quantizer": QUANTIZER_VERSION,
                                    "pafpose.source_sha256": source_sha})
    if problem is None:
        return out
    images = _calibration_images(calibration, progress) if calibration is not None else []
    if not images:
        state = "built yet" if problem == "is missing" else f"usable ({out} {problem})"
        raise InputError(
            f"no INT8 model {state} for {fp32.name}: give calibration images once "
            "(a folder of real photos with people, e.g. --calibration DIR)"
        )
    tensors = calibration_tensors(images, CALIBRATION_SIZE)
    meta = {"pafpose.quantizer": QUANTIZER_VERSION, "pafpose.source_sha256": source_sha,
            "pafpose.calibration_images": str(len(tensors))}
    _rebuilding(out, problem, fp32)
    quantize_int8(fp32, out, tensors, metadata=meta, progress=progress)
    write_record(out, file_sha256(out), meta=meta)
    return out


def resolve_model(
    model: str | Path,
    stages: int | None = None,
    progress: bool = True,
    precision: str = "fp32",
    calibration: Calibration | None = None,
) -> Path:
    """The ONNX file for a model name (fetched on first use) or a local .pb / .onnx path.

    precision "int8" returns the quantized network (built once from `calibration` images).
    """
    if precision not in ("fp32", "int8"):
        raise InputError(f"unknown precision {precision!r}; choose fp32 or int8")
    fp32 = _resolve_fp32(model, stages, progress)
    return quantize_cached(fp32, calibration, progress) if precision == "int8" else fp32


def _resolve_fp32(model: str | Path, stages: int | None, progress: bool) -> Path:
    if isinstance(model, str) and model in MODELS:
        return convert_cached(fetch_source(model, progress=progress), stages)
    path = Path(model)
    if not path.is_file():
        known = ", ".join(sorted(MODELS))
        raise NotFoundError(
            f"model {str(model)!r} is neither a known name ({known}) nor a file"
        )
    if path.suffix.lower() == ".onnx":
        if stages:
            raise InputError("stages=K needs a .pb source (an .onnx file is used as it is)")
        return path
    if path.suffix.lower() == ".pb":
        return convert_cached(path, stages)
    raise ModelError(f"model file {path} must be a frozen TensorFlow graph (.pb) or ONNX (.onnx)")
