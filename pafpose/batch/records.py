"""Batch records: one per image or video frame, as JSON lines or Parquet, written atomically.

A record holds the input as given, the frame index and time (0 and 0.0 for an image), the image
size, the people (track id, score, OpenPose-18 and COCO-17 keypoints as [x, y, score] in pixels,
box), and the model, preset and pafpose version that made it. PARQUET_SCHEMA is the Parquet
layout (README, "Batch"); JSON lines hold the same fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError, MissingDependencyError
from ..track import Person
from ..video.writers import _Placement

#: Output formats, and the suffix of their files.
FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet"}
#: Records held before a Parquet row group is written (bounds memory on long videos).
ROW_GROUP = 1024


def make_record(name: str, kind: str, frame: int, time: float, size: tuple[int, int],
                people: list[Person], stamp: dict[str, str]) -> dict[str, Any]:
    """One record: input, kind, frame, time, size, people, then `stamp` (model, preset,
    version)."""
    return {"input": name, "kind": kind, "frame": frame, "time": round(time, 4),
            "size": [int(size[0]), int(size[1])], "people": [p.to_dict() for p in people],
            **stamp}


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingDependencyError("--format parquet needs pyarrow: pip install pyarrow (the "
                                     "ray extra brings it)") from None
    return pyarrow


def parquet_schema():
    """The Parquet schema of the records (pyarrow)."""
    pa = _pyarrow()
    point = pa.list_(pa.float32(), 3)
    person = pa.struct([
        ("id", pa.int64()), ("score", pa.float32()),
        ("openpose18", pa.list_(point, 18)), ("coco17", pa.list_(point, 17)),
        ("bbox", pa.list_(pa.float32(), 4)),
    ])
    return pa.schema([
        ("input", pa.string()), ("kind", pa.string()), ("frame", pa.int64()),
        ("time", pa.float64()), ("size", pa.list_(pa.int32(), 2)),
        ("people", pa.list_(person)),
        ("model", pa.string()), ("preset", pa.string()), ("version", pa.string()),
    ])


def check_format(fmt: str) -> str:
    """The format if known (and its library importable), else InputError / MissingDependency."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use {' or '.join(FORMATS)}")
    if fmt == "parquet":
        _pyarrow()
    return fmt


class RecordWriter:
    """The records of one unit, streamed to a temporary file beside `path`; `close(keep=True)`
    renames it into place (an interrupted unit leaves no file)."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt, self.count = path, check_format(fmt), 0
        self._place = _Placement(path)  # the video writers' atomic placement
        self.tmp = self._place.tmp
        self._buffer: list[dict[str, Any]] = []
        if fmt == "parquet":
            self._pa = _pyarrow()
            self._writer = self._pa.parquet.ParquetWriter(str(self.tmp), parquet_schema())
        else:
            self._file = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        """Add one record."""
        self.count += 1
        if self.fmt == "jsonl":
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
            return
        self._buffer.append(record)
        if len(self._buffer) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            table = self._pa.Table.from_pylist(self._buffer, schema=parquet_schema())
            self._writer.write_table(table)
            self._buffer = []

    def close(self, keep: bool = True) -> Path | None:
        """Finish the file and rename it into place (keep), or remove it; the path kept."""
        try:
            if self.fmt == "parquet":
                if keep:
                    self._flush()
                self._writer.close()
            else:
                self._file.close()
        except BaseException:
            self._place.finish(keep=False)
            raise
        return self._place.finish(keep=keep)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of one output file (JSON lines or Parquet), as plain dicts."""
    if path.suffix == ".parquet":
        return _pyarrow().parquet.read_table(str(path)).to_pylist()
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]
