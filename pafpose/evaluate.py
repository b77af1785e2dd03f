"""COCO keypoint evaluation: run the estimator over a COCO set and score it with pycocotools."""

from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .estimator import PoseEstimator
from .images import read_image

#: The summary figures pycocotools prints for keypoints, in its order.
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


@dataclass
class EvalResult:
    """Scores of one evaluation run, the COCO results it produced and the time per image."""

    stats: dict[str, float]
    results: list[dict[str, Any]]
    images: int
    median_ms: float
    times_ms: list[float] = field(default_factory=list)


def score_results(coco_json: str | Path, results: list[dict[str, Any]],
                  image_ids: list[int] | None = None) -> dict[str, float]:
    """COCO keypoint AP/AR of `results` against the ground truth (pycocotools, quiet)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_json))
        if not results:
            return dict.fromkeys(STAT_NAMES, 0.0)
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "keypoints")
        if image_ids is not None:
            ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(STAT_NAMES, ev.stats, strict=True)}


def evaluate_coco(
    estimator: PoseEstimator,
    coco_json: str | Path,
    images_dir: str | Path,
    limit: int | None = None,
    upsample: float | None = None,
    round_coords: bool = False,
    progress: bool = True,
) -> EvalResult:
    """Run `estimator` on the images of a COCO keypoint file and score the people it finds."""
    with open(coco_json) as f:
        images = sorted(json.load(f)["images"], key=lambda im: im["id"])
    if limit:
        images = images[:limit]
    results: list[dict[str, Any]] = []
    times: list[float] = []
    for info in tqdm(images, unit="img", desc="eval", disable=not progress):
        image = read_image(Path(images_dir) / info["file_name"], estimator.max_pixels)
        start = time.perf_counter()
        humans = estimator.inference(image, upsample_size=upsample)
        times.append((time.perf_counter() - start) * 1000)
        results += [h.to_coco_result(info["id"], round_coords=round_coords) for h in humans]
    stats = score_results(coco_json, results, [im["id"] for im in images])
    return EvalResult(stats, results, len(images), float(np.median(times)) if times else 0.0, times)
