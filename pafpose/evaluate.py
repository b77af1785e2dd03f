"""COCO keypoint evaluation: run the estimator over a COCO set and score it with pycocotools."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .errors import InputError, MissingDependencyError, NotFoundError
from .estimator import PoseEstimator
from .files import atomic_path
from .images import ImageError, read_image

#: The summary figures pycocotools prints for keypoints, in its order.
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
#: The figures `pafpose eval` prints.
SHOWN_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR")


@dataclass
class EvalResult:
    """Scores of one evaluation run, the COCO results it produced and the time per image."""

    stats: dict[str, float]
    results: list[dict[str, Any]]
    images: int
    median_ms: float
    times_ms: list[float] = field(default_factory=list)
    #: Images in the set (with the limit applied); `images` < `total` after an interrupt.
    total: int = 0
    interrupted: bool = False

    def summary(self) -> str:
        """Two lines for people: the COCO figures, then the counts and the median time."""
        figures = "  ".join(f"{name} {self.stats[name]:.3f}" for name in SHOWN_STATS)
        people = len(self.results)
        counts = f"{self.images} images, {people} people found, {self.median_ms:.0f} ms per image"
        if self.interrupted:
            counts += f" (interrupted: scored on {self.images} of {self.total} images)"
        return f"{figures}\n{counts} (median)"


def load_coco_images(coco_json: str | Path) -> list[dict[str, Any]]:
    """The `images` entries of a COCO keypoint file, by id; InputError (a ValueError) when it
    is not one, NotFoundError (a FileNotFoundError) when it does not exist."""
    path = Path(coco_json)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(
        doc.get("annotations"), list
    ):
        raise InputError(f"{path}: not a COCO annotation file (no 'images' / 'annotations')")
    try:
        return sorted(doc["images"], key=lambda im: im["id"])
    except (KeyError, TypeError):
        raise InputError(f"{path}: an entry of 'images' has no 'id'") from None


def check_ready(results_json: str | Path | None = None) -> None:
    """Fail now, in one line, when an evaluation cannot run to the end: pycocotools missing
    (MissingDependencyError) or `results_json` not writable (OutputError)."""
    import importlib.util

    from .predict import check_writable

    if importlib.util.find_spec("pycocotools") is None:
        raise MissingDependencyError("pycocotools is missing: pip install 'pycocotools>=2.0.7'")
    if results_json is not None:
        check_writable(Path(results_json))


def score_results(coco_json: str | Path, results: list[dict[str, Any]],
                  image_ids: list[int] | None = None) -> dict[str, float]:
    """COCO keypoint AP/AR of `results` against the ground truth (pycocotools, quiet)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_json))
        if not results:
            return dict.fromkeys(STAT_NAMES, 0.0)
        dt = gt.loadRes(copy.deepcopy(results))  # loadRes adds fields to the entries
        ev = COCOeval(gt, dt, "keypoints")
        if image_ids is not None:
            ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(STAT_NAMES, ev.stats, strict=True)}


def write_results(results: list[dict[str, Any]], path: str | Path) -> None:
    """Write COCO results as JSON, atomically (a finished file or none)."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(results) + "\n")


def evaluate_coco(
    estimator: PoseEstimator,
    coco_json: str | Path,
    images_dir: str | Path,
    limit: int | None = None,
    upsample: float | None = None,
    round_coords: bool | None = None,
    progress: bool = True,
) -> EvalResult:
    """Run `estimator` on the images of a COCO keypoint file and score the people it finds.

    round_coords: integer coordinates in the results (default: as the estimator's preset; the
    seed's evaluation rounds). Ctrl-C stops early and scores the images already done.
    """
    images = load_coco_images(coco_json)
    if limit is not None:
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        images = images[:limit]
    if round_coords is None:
        round_coords = estimator.preset.round_coco
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise NotFoundError(f"{images_dir}: no such folder")
    results: list[dict[str, Any]] = []
    times: list[float] = []
    done: list[int] = []
    interrupted = False
    bar = tqdm(images, unit="img", desc="eval", disable=not progress)
    try:
        for info in bar:
            try:
                # COCO's annotations are on the stored pixels: no EXIF turn.
                image = read_image(images_dir / info["file_name"], estimator.max_pixels,
                                   orient=False)
            except ImageError as exc:
                raise ImageError(f"{images_dir / info['file_name']}: {exc}") from None
            start = time.perf_counter()
            humans = estimator.inference(image, upsample_size=upsample)
            times.append((time.perf_counter() - start) * 1000)
            results += [h.to_coco_result(info["id"], round_coords=round_coords) for h in humans]
            done.append(info["id"])
            bar.set_postfix_str(f"{np.median(times):.0f} ms/img", refresh=False)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    stats = score_results(coco_json, results, done) if done else dict.fromkeys(STAT_NAMES, 0.0)
    median = float(np.median(times)) if times else 0.0
    return EvalResult(stats, results, len(done), median, times, len(images), interrupted)
