"""Writing outputs: atomic writes (a temporary name beside the target, renamed when complete),
JSON and image writers. An interrupted write never leaves a half-written file."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from .errors import ImageError

#: Suffix of every temporary file (`.NAME.PID.TOKEN.part[.SUFFIX]`); the PID lets a later run
#: remove what a killed one left behind.
TEMP_SUFFIX = ".part"


def temp_name(dest: Path, keep_suffix: bool = False) -> Path:
    """A hidden temporary name beside `dest` carrying this process's id (and `dest`'s suffix)."""
    stem = dest.stem if keep_suffix else dest.name
    tail = dest.suffix if keep_suffix else ""
    return dest.parent / f".{stem}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}{tail}"


@contextmanager
def atomic_path(dest: Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; rename it to `dest` only if the block succeeds.

    The temporary file is created with the umask's permissions (as `open` would create
    `dest`), not mkstemp's owner-only 0600, so the renamed result is readable as usual.
    keep_suffix keeps `dest`'s suffix last (writers that pick the format by suffix need it).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = temp_name(dest, keep_suffix)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode and write an image atomically (the format follows the suffix)."""
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise ImageError(f"cannot encode {path.name}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


def write_json(document: Any, destination: str | Path, stdout: TextIO | None = None) -> None:
    """Write JSON to a path (atomically) or to `stdout` for '-'."""
    text = json.dumps(document)
    if str(destination) == "-":
        if stdout is None:
            raise ValueError("write_json to '-' needs a stdout stream")
        stdout.write(text + "\n")
        return
    with atomic_path(Path(destination)) as tmp:
        tmp.write_text(text + "\n")
