"""Video outputs: the annotated video and JSON lines, one record per frame.

Both write under a temporary name beside the target (`files.atomic_path`, held open for the
writer's life) and `close()` renames it into place, also when a run ends early (Ctrl-C, a
damaged frame): the file then holds every frame done, and is complete. A writer closed without
frames leaves no file.
"""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import cv2
import numpy as np

from ..errors import VideoError
from ..files import atomic_path
from .sources import quiet_opencv

if TYPE_CHECKING:
    from .pipeline import FrameResult

#: Video containers the writer knows, and the codec (FourCC) used for each.
FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v",
                    ".avi": "MJPG"}


class _Discarded(Exception):
    """Ends a placement whose file is not kept (atomic_path removes it)."""


class _Placement:
    """A temporary file beside `path` that keeps its suffix (containers go by it), from
    `files.atomic_path` held open until `finish()`: kept, it is renamed to `path`; not kept
    (no frame in it), it is removed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._context: AbstractContextManager[Path] = atomic_path(path, keep_suffix=True)
        self.tmp = self._context.__enter__()

    def finish(self, keep: bool) -> Path | None:
        """Rename the temporary file into place (keep) or remove it; return the path kept."""
        if keep:
            self._context.__exit__(None, None, None)
            return self.path
        self._context.__exit__(_Discarded, _Discarded(), None)
        return None


class VideoWriter:
    """An annotated video written under a temporary name; `close()` renames it into place.

    With `real_time` (live sources, which drop frames) each frame is repeated until the next
    one's timestamp, so the video plays at the pace it was filmed.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int],
                 real_time: bool = False) -> None:
        self.path = Path(path)
        self.real_time = real_time
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC_BY_SUFFIX:
            known = ", ".join(sorted(FOURCC_BY_SUFFIX))
            raise VideoError(f"{self.path}: unknown video type {suffix or '(none)'!r}; "
                             f"use one of {known}")
        self.size, self.fps, self.frames = tuple(size), fps, 0
        self._placement = _Placement(self.path)
        self.tmp = self._placement.tmp
        fourcc = FOURCC_BY_SUFFIX[suffix]
        with quiet_opencv():
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*fourcc),
                                          fps, self.size)
        if not self.writer.isOpened():
            self._placement.finish(keep=False)
            raise VideoError(f"{self.path}: this OpenCV build cannot write {suffix} video "
                             f"({fourcc})")

    def write(self, image: np.ndarray, timestamp: float | None = None) -> None:
        """Append one BGR frame (resized when it differs from the video's size)."""
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        repeats = 1
        if self.real_time and timestamp is not None:
            repeats = max(1, int(timestamp * self.fps) + 1 - self.frames)
        for _ in range(repeats):
            self.writer.write(image)
        self.frames += repeats

    def close(self) -> Path | None:
        """Finish the file and rename it into place; without frames, leave no file."""
        self.writer.release()
        return self._placement.finish(keep=self.frames > 0)


def frame_record(result: FrameResult) -> dict[str, Any]:
    """The JSON-lines record of a frame: index, time, size, file name, people."""
    frame = result.frame
    record: dict[str, Any] = {"frame": frame.index, "time": round(frame.time, 4),
                              "size": [frame.image.shape[1], frame.image.shape[0]]}
    if frame.name is not None:
        record["image"] = frame.name
    record["people"] = [p.to_dict() for p in result.people]
    return record


class JsonLinesWriter:
    """One JSON object per frame, to a file (temporary name, renamed) or to stdout ('-')."""

    def __init__(self, path: str | Path, stdout: IO[str] | None = None) -> None:
        self.frames = 0
        self._placement: _Placement | None = None
        if str(path) == "-":
            self.path, self.tmp = None, None
            self.file: IO[str] = stdout or sys.stdout
            return
        self.path = Path(path)
        self._placement = _Placement(self.path)
        self.tmp = self._placement.tmp
        self.file = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        """Write one record as a line and flush it."""
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.file.flush()
        self.frames += 1

    def close(self) -> Path | None:
        """Close the file and rename it into place; without frames, leave no file."""
        if self._placement is None:
            return None
        self.file.close()
        return self._placement.finish(keep=self.frames > 0)
