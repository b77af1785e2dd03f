"""What a worker does with a unit: people in its images, or in its video's frames in order (the
video pipeline and tracker), written to the unit's records file; and the outcome it reports."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PafposeError
from ..images import DEFAULT_MAX_PIXELS
from ..track import Person, Tracker
from .records import FORMATS, RecordWriter, make_record
from .units import Unit


@dataclass(frozen=True)
class BatchSettings:
    """What every worker needs: the estimator's arguments, the frames and tracking wanted, the
    records folder and format, and the stamp put on every record."""

    estimator: dict[str, Any]
    records: str
    fmt: str = "jsonl"
    every: int = 1
    track: bool = False
    model: str = "mobilenet_thin"
    preset: str = "balanced"
    version: str = ""

    def results_key(self) -> dict[str, Any]:
        """The settings that change the records (a rerun into the same folder must match)."""
        estimator = {k: v for k, v in self.estimator.items() if k != "threads"}
        return {**estimator, "format": self.fmt, "every": self.every, "track": self.track,
                "version": self.version}


@dataclass
class UnitOutcome:
    """What a worker reports for a unit: its records file, how many records, and per input
    (key, name, error or None)."""

    unit: str
    file: str | None = None
    records: int = 0
    frames: int = 0
    inputs: list[tuple[str, str, str | None]] = field(default_factory=list)

    def to_json(self) -> str:
        """The outcome as JSON (what the Ray engine sends back)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> UnitOutcome:
        """The outcome `to_json` described."""
        data = json.loads(text)
        data["inputs"] = [tuple(i) for i in data["inputs"]]
        return cls(**data)

    @classmethod
    def lost(cls, unit: Unit, reason: str) -> UnitOutcome:
        """A unit no worker could finish: every input failed with `reason`."""
        return cls(unit.id, inputs=[(k, i.name, reason)
                                    for k, i in zip(unit.keys, unit.items, strict=True)])


def _message(exc: BaseException) -> str:
    """One line for an input's error (a bug's type is kept: it is not the user's doing)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, PafposeError) else f"{type(exc).__name__}: {text}"


class UnitRunner:
    """A worker's state: one estimator (with `threads` inference threads) and the settings."""

    def __init__(self, settings: BatchSettings, threads: int | None = None) -> None:
        from ..estimator import PoseEstimator

        self.settings = settings
        kwargs = {**settings.estimator, "progress": False}
        if threads is not None:
            kwargs["threads"] = threads
        self.estimator = PoseEstimator(**kwargs)
        self.stamp = {"model": settings.model, "preset": settings.preset,
                      "version": settings.version}

    def run(self, unit: Unit) -> UnitOutcome:
        """Run a unit into its records file (renamed into place when complete)."""
        path = Path(self.settings.records) / f"{unit.id}{FORMATS[self.settings.fmt]}"
        writer = RecordWriter(path, self.settings.fmt)
        outcome = UnitOutcome(unit.id)
        try:
            run = self._video if unit.kind == "video" else self._images
            keep = run(unit, writer, outcome) and writer.count > 0
        except BaseException:
            writer.close(keep=False)
            raise
        kept = writer.close(keep=keep)
        outcome.file = kept.name if kept is not None else None
        outcome.records = writer.count if kept is not None else 0
        return outcome

    def _images(self, unit: Unit, writer: RecordWriter, outcome: UnitOutcome) -> bool:
        from ..predict import predict_files

        for item in unit.items:
            try:
                result = next(predict_files(self.estimator, [item.location]))
                error = result.error
            except Exception as exc:  # one input's failure never ends the unit
                error = _message(exc)
            if error is None:
                people = [Person(None, h) for h in result.humans]
                writer.write(make_record(item.name, "image", 0, 0.0, result.image_size, people,
                                         self.stamp))
            outcome.inputs.append((item.key, item.name, error))
        return True

    def _video(self, unit: Unit, writer: RecordWriter, outcome: UnitOutcome) -> bool:
        """Frames in order through the video pipeline; whether to keep them: a video that
        fails keeps no record (a later run with --retry-failed does it whole)."""
        from ..video import iter_poses, open_source

        item = unit.items[0]
        tracker = Tracker() if self.settings.track else None
        error = None
        max_pixels = self.settings.estimator.get("max_pixels", DEFAULT_MAX_PIXELS)
        try:
            with open_source(item.location, start=unit.start, end=unit.end,
                             every=self.settings.every, max_pixels=max_pixels) as source:
                for result in iter_poses(source, self.estimator, tracker=tracker):
                    frame = result.frame
                    size = (frame.image.shape[1], frame.image.shape[0])
                    writer.write(make_record(item.name, "video", frame.index, frame.time, size,
                                             result.people, self.stamp))
                    outcome.frames += 1
            if outcome.frames == 0:
                error = "no frame could be read"
        except Exception as exc:
            error = _message(exc)
        outcome.inputs.append((unit.keys[0], item.name, error))
        return error is None
