"""Pose estimation over image files: per-file results, annotated images, maps figures, JSON."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from .draw import draw_humans, maps_figure
from .errors import InputError, OutputError
from .estimator import PoseEstimator
from .files import write_image, write_json
from .human import Human, openpose_json
from .images import IMAGE_SUFFIXES, ImageError, decode_image, read_image

#: An image fetched from an http(s) URL may be at most this large (the server's default
#: request body limit), and must arrive within this many seconds.
MAX_URL_BYTES = 20_000_000
URL_TIMEOUT = 30.0
_URL_SCHEMES = ("http://", "https://")

#: An input: an image file, or an http(s) URL (kept as text).
Input = Path | str


def is_url(item: object) -> bool:
    """Whether an input is an http(s) URL."""
    return isinstance(item, str) and item.lower().startswith(_URL_SCHEMES)


def collect_inputs(items: Iterable[str | Path]) -> tuple[list[Input], list[str]]:
    """Files as given, folders expanded to their images (name order, not recursing into
    subfolders), http(s) URLs kept; with one note per folder on what it skipped."""
    inputs: list[Input] = []
    notes: list[str] = []
    for item in items:
        if is_url(str(item)):
            inputs.append(str(item))
            continue
        path = Path(item)
        if not path.is_dir():
            inputs.append(path)
            continue
        entries = sorted(path.iterdir())
        images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()]
        others = [p for p in entries if p not in images and not p.is_dir()]
        folders = [p for p in entries if p.is_dir()]
        inputs += images
        skipped = []
        if others:
            kinds = sorted({p.suffix.lower() or "no suffix" for p in others})
            what = "files that are not images" if len(others) > 1 else "file that is not an image"
            skipped.append(f"{len(others)} {what} ({', '.join(kinds)})")
        if folders:
            skipped.append(f"{len(folders)} subfolder{'s' * (len(folders) > 1)} (folders are "
                           "not searched recursively)")
        if skipped:
            notes.append(f"{path}: skipped {' and '.join(skipped)}")
    return inputs, notes


def _stem(item: Input) -> str:
    if is_url(item):
        return Path(urllib.parse.urlparse(str(item)).path).stem or "image"
    return Path(item).stem


def output_stems(inputs: Iterable[Input]) -> list[str]:
    """Names (without suffix) of the pictures written for each input: its file stem, with
    `_2`, `_3`, ... added when an earlier input of the run took it (a.jpg and a.png)."""
    used: set[str] = set()
    stems = []
    for item in inputs:
        stem = name = _stem(item)
        n = 2
        while name in used:
            name, n = f"{stem}_{n}", n + 1
        used.add(name)
        stems.append(name)
    return stems


def fetch_image(url: str, max_pixels: int, max_bytes: int = MAX_URL_BYTES,
                timeout: float = URL_TIMEOUT) -> np.ndarray:
    """Download an image from an http(s) URL, bounded in bytes, time and pixels; ImageError."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": "pafpose"})
    chunks, size = [], 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                size = int(declared)
            while size <= max_bytes and (chunk := response.read(1 << 16)):
                chunks.append(chunk)
                size += len(chunk)
                if time.monotonic() > deadline:
                    raise ImageError(f"cannot fetch: no complete answer within {timeout:g} s")
    except urllib.error.HTTPError as exc:
        raise ImageError(f"cannot fetch: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise ImageError(f"cannot fetch: {exc.reason}") from None
    except (TimeoutError, OSError, ValueError) as exc:
        raise ImageError(f"cannot fetch: {exc}") from None
    if size > max_bytes:
        raise ImageError(f"larger than the download limit of {max_bytes / 1e6:g} MB")
    data = b"".join(chunks)
    if not data:
        raise ImageError("cannot fetch: empty answer")
    return decode_image(data, max_pixels)


def check_writable(path: Path, folder: bool = False) -> None:
    """Fail now (OutputError, an OSError, one line) unless `path` can be written: a folder that
    is (or can be made) writable, or a file whose folder is; before any work is done."""
    target = path if folder else path.parent
    if not folder and path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file")
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: is a file, not a folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{target}: cannot create this folder ({exc.strerror})") from None
    if not os.access(target, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: folder is not writable")


@dataclass
class FileResult:
    """The outcome for one input file: people found, or an error message."""

    path: Input
    humans: list[Human] = field(default_factory=list)
    image_size: tuple[int, int] = (0, 0)
    error: str | None = None


def coco_image_id(path: Input) -> int | str:
    """COCO image id of a file: its numeric stem (000000000139.jpg -> 139), else its name."""
    if is_url(path):
        path = Path(urllib.parse.urlparse(str(path)).path)
    path = Path(path)
    return int(path.stem) if path.stem.isdigit() else path.name


def predict_files(
    estimator: PoseEstimator,
    paths: Iterable[Input],
    image_output: Path | None = None,
    maps_output: Path | None = None,
    upsample: float | None = None,
) -> Iterator[FileResult]:
    """Estimate poses on each file or http(s) URL; write annotated images (STEM.png) / maps
    figures (STEM_maps.png, stems from :func:`output_stems`); yield the results."""
    paths = list(paths)
    for path, stem in zip(paths, output_stems(paths), strict=True):
        try:
            if is_url(path):
                image = fetch_image(str(path), estimator.max_pixels)
            else:
                image = read_image(path, estimator.max_pixels)
            result = estimator.run(image, upsample_size=upsample)
            humans = result.humans
        except ImageError as exc:
            yield FileResult(path, error=str(exc))
            continue
        if image_output is not None:
            write_image(image_output / f"{stem}.png", draw_humans(image, humans))
        if maps_output is not None and result.heatmaps is not None:
            figure = maps_figure(image, humans, result.heatmaps, result.pafs)
            write_image(maps_output / f"{stem}_maps.png", figure)
        yield FileResult(path, humans, (image.shape[1], image.shape[0]))


def results_document(results: Iterable[FileResult], fmt: str) -> list[dict[str, Any]]:
    """JSON-ready results: COCO result entries (fmt='coco') or per-image OpenPose documents."""
    if fmt == "coco":
        return [h.to_coco_result(coco_image_id(r.path)) for r in results if r.error is None
                for h in r.humans]
    if fmt == "openpose":
        return [{"image": str(r.path), **openpose_json(r.humans)} for r in results
                if r.error is None]
    raise InputError(f"unknown format {fmt!r}; use coco or openpose")


def prepare_inputs(
    items: Iterable[str | Path],
    json_output: str | Path | None = None,
    image_output: Path | None = None,
    maps_output: Path | None = None,
    note: Callable[[str], object] | None = None,
) -> list[Input]:
    """The inputs of a run (:func:`collect_inputs`; its notes handed to `note`), once the
    outputs are known to be writable; InputError when no image is left, OutputError for an
    output (before any work is done). `json_output` '-' is stdout."""
    paths, notes = collect_inputs(items)
    for text in notes if note is not None else ():
        note(text)
    if not paths:
        raise InputError("no images found in the given inputs")
    if json_output not in (None, "-"):
        check_writable(Path(json_output))
    for folder in (image_output, maps_output):
        if folder is not None:
            check_writable(folder, folder=True)
    return paths


@dataclass
class PredictRun:
    """What a run over several inputs did: its results, how many failed, whether it was
    stopped (Ctrl-C) before the end."""

    results: list[FileResult]
    total: int
    failed: int = 0
    interrupted: bool = False


def run_predict(
    estimator: PoseEstimator,
    paths: list[Input],
    json_output: str | Path | None = None,
    fmt: str = "openpose",
    image_output: Path | None = None,
    maps_output: Path | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> PredictRun:
    """Estimate poses on `paths` with a progress bar (two inputs or more): one line per failed
    input on `stderr`, one line per image on `stdout` unless `json_output` is given ('-' =
    `stdout`); the JSON document is written even after Ctrl-C, with the images done."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    run = PredictRun([], len(paths))
    bar = tqdm(total=len(paths), unit="img", disable=len(paths) < 2, file=stderr)
    try:
        for result in predict_files(estimator, paths, image_output, maps_output):
            run.results.append(result)
            bar.update()
            if result.error:
                run.failed += 1
                tqdm.write(f"pafpose: {result.path}: {result.error}", file=stderr)
            elif json_output is None:
                tqdm.write(f"{result.path}: {len(result.humans)} people", file=stdout)
    except KeyboardInterrupt:
        tqdm.write(f"pafpose: interrupted after {len(run.results)} of {len(paths)} images",
                   file=stderr)
        run.interrupted = True
    finally:
        bar.close()
        if json_output is not None:
            write_json(results_document(run.results, fmt), json_output, stdout)
    return run
