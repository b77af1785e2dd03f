"""Work units: images in batches, each video as one ordered unit (tracking needs the order), or
long videos split into chunks of frames. A unit is small (names, no pixels) and is what a
worker runs, writes to one output file, and what a rerun skips once it is done."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2

from ..errors import InputError
from ..video.sources import quiet_opencv
from .inputs import Item

#: Images per unit unless `--batch-size` says.
DEFAULT_BATCH_SIZE = 16


@dataclass(frozen=True)
class Unit:
    """Inputs run together: images (a batch) or one video, whole or frames [start, end)."""

    kind: str
    items: tuple[Item, ...]
    start: int = 0
    end: int | None = None

    @property
    def keys(self) -> list[str]:
        """What marks each input of the unit done (a video chunk: its path and frame range)."""
        if self.kind == "video" and (self.start or self.end is not None):
            return [f"{self.items[0].key}#{self.start}:{self.end}"]
        return [item.key for item in self.items]

    @property
    def id(self) -> str:
        """A stable name from the unit's contents: its output file is `records/ID.*`."""
        text = json.dumps([self.kind, self.keys])
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]

    def to_json(self) -> str:
        """The unit as a JSON string (what the engines send to workers)."""
        return json.dumps({"kind": self.kind, "start": self.start, "end": self.end,
                           "items": [[i.name, i.location, i.kind] for i in self.items]})

    @classmethod
    def from_json(cls, text: str) -> Unit:
        """The unit `to_json` described."""
        data = json.loads(text)
        return cls(data["kind"], tuple(Item(*i) for i in data["items"]), data["start"],
                   data["end"])


def frame_count(location: str) -> int | None:
    """The frame count a video file declares (None when it does not, or cannot be opened)."""
    with quiet_opencv():
        cap = cv2.VideoCapture(location)
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    return count if count > 0 else None


def check_chunking(chunk_frames: int | None, every: int) -> None:
    """Chunks must hold whole steps of `every` (so chunked and whole runs take the same frames)."""
    if chunk_frames is not None and (chunk_frames < 1 or chunk_frames % every):
        raise InputError(f"--chunk-frames ({chunk_frames}) must be a positive multiple of "
                         f"--every ({every})")


def video_units(item: Item, chunk_frames: int | None) -> Iterator[Unit]:
    """One unit for a video, or one per chunk of `chunk_frames` frames when its length is known."""
    total = frame_count(item.location) if chunk_frames else None
    if not chunk_frames or total is None or total <= chunk_frames:
        yield Unit("video", (item,))
        return
    for start in range(0, total, chunk_frames):
        yield Unit("video", (item,), start, min(start + chunk_frames, total))


def plan_units(items: Iterable[Item], batch_size: int = DEFAULT_BATCH_SIZE,
               chunk_frames: int | None = None,
               is_done: Callable[[str], bool] = lambda key: False) -> Iterator[Unit]:
    """Units of the inputs not done yet, streamed: consecutive images in batches of
    `batch_size`, each video (or video chunk) alone."""
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    images: list[Item] = []
    for item in items:
        if item.kind == "video":
            yield from (u for u in video_units(item, chunk_frames) if not is_done(u.keys[0]))
            continue
        if is_done(item.key):
            continue
        images.append(item)
        if len(images) == batch_size:
            yield Unit("image", tuple(images))
            images = []
    if images:
        yield Unit("image", tuple(images))
