"""Pose estimation over image files: per-file results, annotated images, maps figures, JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from .draw import draw_humans, maps_figure
from .estimator import PoseEstimator
from .human import Human, openpose_json
from .images import ImageError, read_image
from .models.fetch import atomic_path


@dataclass
class FileResult:
    """The outcome for one input file: people found, or an error message."""

    path: Path
    humans: list[Human] = field(default_factory=list)
    image_size: tuple[int, int] = (0, 0)
    error: str | None = None


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode and write an image atomically (the format follows the suffix)."""
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise ImageError(f"cannot encode {path.name}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


def coco_image_id(path: Path) -> int | str:
    """COCO image id of a file: its numeric stem (000000000139.jpg -> 139), else its name."""
    return int(path.stem) if path.stem.isdigit() else path.name


def predict_files(
    estimator: PoseEstimator,
    paths: Iterable[Path],
    image_output: Path | None = None,
    maps_output: Path | None = None,
    upsample: float | None = None,
) -> Iterator[FileResult]:
    """Estimate poses on each file; write annotated images / maps figures; yield the results."""
    for path in paths:
        try:
            image = read_image(path, estimator.max_pixels)
            humans = estimator.inference(image, upsample_size=upsample)
        except ImageError as exc:
            yield FileResult(path, error=str(exc))
            continue
        if image_output is not None:
            write_image(image_output / f"{path.stem}.png", draw_humans(image, humans))
        if maps_output is not None and estimator.heatmaps is not None:
            figure = maps_figure(image, humans, estimator.heatmaps, estimator.pafs)
            write_image(maps_output / f"{path.stem}_maps.png", figure)
        yield FileResult(path, humans, (image.shape[1], image.shape[0]))


def results_document(results: Iterable[FileResult], fmt: str) -> list[dict[str, Any]]:
    """JSON-ready results: COCO result entries (fmt='coco') or per-image OpenPose documents."""
    if fmt == "coco":
        return [h.to_coco_result(coco_image_id(r.path)) for r in results if r.error is None
                for h in r.humans]
    if fmt == "openpose":
        return [{"image": str(r.path), **openpose_json(r.humans)} for r in results
                if r.error is None]
    raise ValueError(f"unknown format {fmt!r}; use coco or openpose")


def write_json(document: Any, destination: str, stdout: TextIO) -> None:
    """Write JSON to a path (atomically) or to stdout for '-'."""
    text = json.dumps(document)
    if destination == "-":
        stdout.write(text + "\n")
        return
    with atomic_path(Path(destination)) as tmp:
        tmp.write_text(text + "\n")
