"""Integrity of cached model files: sha256 records beside them, and leftovers of killed runs.

Each cached file `x` may have a small record `.x.sha256` (JSON: sha256, size, mtime_ns, and
whether pafpose wrote the file itself). A file is re-hashed only when its size or mtime differ
from the record, so checking a multi-MB model costs one `stat` on most runs. As in git's
"racily clean" rule, a file modified less than RACY_NS before its record was written is re-hashed
anyway (file times are coarse: a change right after the record could keep size and mtime).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

from ..errors import ModelError

#: Where pafpose reports repairs of its cache (one line each; stderr unless configured).
log = logging.getLogger("pafpose.models")

#: Temporary names of `atomic_path` (`.NAME.PID.TOKEN.part`, older: `.NAME.TOKEN.part`) and of
#: the staging folders of a download (`.fetch-PID-*`) and of an INT8 build (`.int8-PID-*`).
_PART = re.compile(r"^\..+?(?:\.(\d+))?\.[0-9a-f]{8}\.part$")
_FETCH_DIR = re.compile(r"^\.(?:fetch|int8)-(\d+)-")
#: Age after which a temporary file whose owner is unknown (or whose PID may have been reused)
#: counts as left over.
STALE_AGE_NAMELESS = 3600.0
STALE_AGE_LIVE_PID = 24 * 3600.0
#: A record trusts size + mtime only for files last modified this long before it was written.
RACY_NS = 2_000_000_000


class ModelFileError(ModelError):
    """A model file is damaged, truncated or not a model; the message names the file."""


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _record_path(path: Path) -> Path:
    return path.parent / f".{path.name}.sha256"


def read_record(path: Path) -> dict | None:
    """The integrity record of `path`, or None when absent or unreadable."""
    try:
        record = json.loads(_record_path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        return None
    return record


def write_record(path: Path, sha256: str, built: bool = True,
                 meta: dict[str, str] | None = None) -> None:
    """Record `path`'s sha256 with its current size and mtime (skipped if not writable).

    `built` marks a file that pafpose wrote itself and whose recorded hash is the reference;
    `meta` keeps a copy of its metadata (e.g. the ONNX metadata_props) for cheap checks.
    """
    from ..files import atomic_path

    st = path.stat()
    record = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "built": built,
              "meta": meta or {}, "recorded_ns": time.time_ns()}
    try:
        with atomic_path(_record_path(path)) as tmp:
            tmp.write_text(json.dumps(record))
    except OSError:
        pass


def _stat_matches(path: Path, record: dict) -> bool:
    """True when size and mtime are the recorded ones and the record is not racy."""
    st = path.stat()
    settled = int(record.get("recorded_ns") or 0) - st.st_mtime_ns >= RACY_NS
    return settled and record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns


def current_sha256(path: Path) -> str:
    """sha256 of `path`, taken from its record while size and mtime are unchanged."""
    record = read_record(path)
    if record is not None and _stat_matches(path, record):
        return record["sha256"]
    sha = file_sha256(path)
    if record is None or not record.get("built") or record["sha256"] == sha:
        write_record(path, sha, built=bool(record and record.get("built")))
    return sha  # a built file that changed keeps its reference record: `check` reports it


def check_built(path: Path) -> str | None:
    """None when a file pafpose wrote is unchanged since, else why not ("damaged", ...)."""
    if not path.is_file():
        return "is missing"
    record = read_record(path)
    if record is None or not record.get("built"):
        return "has no integrity record"
    if _stat_matches(path, record):
        return None
    size = path.stat().st_size
    if size != record.get("size"):
        return f"is damaged or truncated ({size} bytes, {record.get('size')} written)"
    if file_sha256(path) != record["sha256"]:
        return "is damaged (its sha256 differs from the one recorded when it was written)"
    write_record(path, record["sha256"], meta=record.get("meta"))  # touched, not changed
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _is_stale(pid: str | None, age: float) -> bool:
    if pid is None:
        return age > STALE_AGE_NAMELESS
    if int(pid) == os.getpid():
        return False
    return not _pid_alive(int(pid)) or age > STALE_AGE_LIVE_PID


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files and folders of killed downloads/conversions in `folder`.

    A temporary is stale when the process named in it is gone (or, without a PID, after an
    hour); those of running processes are left alone. Returns how many were removed.
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    removed = 0
    now = time.time()
    for entry in entries:
        m = _PART.match(entry.name) or _FETCH_DIR.match(entry.name)
        if m is None:
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if not _is_stale(m.group(1), age):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
        except OSError:
            continue
    if removed:
        log.warning("pafpose: removed %d leftover temporary file(s) of an interrupted download "
                    "or conversion in %s", removed, folder)
    return removed
