"""Turn a model name or path into a cached ONNX file (fetching and converting as needed)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import onnx

from . import tfgraph
from .fetch import atomic_path, cache_dir, fetch_source
from .registry import MODELS

#: Bump when the converter's output changes, so cached conversions are rebuilt.
CONVERTER_VERSION = "1"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _converted_path(pb: Path, stages: int | None) -> Path:
    """Beside the source when its folder is writable, else in the cache, keyed by content."""
    name = pb.stem + (f".stage{stages}" if stages else "") + ".onnx"
    if os.access(pb.parent, os.W_OK):
        return pb.parent / name
    return cache_dir() / "converted" / _sha256(pb)[:16] / name


def _is_current(onnx_path: Path, source_sha: str) -> bool:
    if not onnx_path.is_file():
        return False
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception:
        return False
    meta = {p.key: p.value for p in model.metadata_props}
    return meta.get("pafpose.converter") == CONVERTER_VERSION and meta.get(
        "pafpose.source_sha256") == source_sha


def convert_cached(pb: Path, stages: int | None = None) -> Path:
    """Convert a frozen TensorFlow graph to ONNX once and cache it (rebuilt when stale)."""
    out = _converted_path(pb, stages)
    source_sha = _sha256(pb)
    if _is_current(out, source_sha):
        return out
    model = tfgraph.convert_graphdef(pb, stage=stages)
    for key, value in (("pafpose.converter", CONVERTER_VERSION),
                       ("pafpose.source_sha256", source_sha)):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))
    return out


def resolve_model(model: str | Path, stages: int | None = None, progress: bool = True) -> Path:
    """The ONNX file for a model name (fetched on first use) or a local .pb / .onnx path."""
    if isinstance(model, str) and model in MODELS:
        return convert_cached(fetch_source(model, progress=progress), stages)
    path = Path(model)
    if not path.is_file():
        known = ", ".join(sorted(MODELS))
        raise FileNotFoundError(
            f"model {str(model)!r} is neither a known name ({known}) nor a file"
        )
    if path.suffix.lower() == ".onnx":
        if stages:
            raise ValueError("stages=K needs a .pb source (an .onnx file is used as it is)")
        return path
    if path.suffix.lower() == ".pb":
        return convert_cached(path, stages)
    raise ValueError(f"model file {path} must be a frozen TensorFlow graph (.pb) or ONNX (.onnx)")
