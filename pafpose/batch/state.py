"""The output folder of a batch run: records, errors, and what is done (for resumption).

    DIR/records/UNIT.jsonl|.parquet   one file per unit, renamed into place when complete
    DIR/errors.jsonl                  one line per input that failed: {"input", "error"}
    DIR/done.sqlite                   units and inputs done, the run's settings

A unit is done once its row is committed to done.sqlite, after its file was renamed into place:
a records file without its row (a run killed in between) is removed by the next run, whose
units then redo those inputs, so every input is in the output exactly once. Lookups go to the
database, so a rerun over a large corpus needs no list of it in memory. One run at a time may
use a folder (a lock file).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..files import TEMP_SUFFIX, atomic_path
from ..predict import check_writable

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None  # type: ignore[assignment]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (id TEXT PRIMARY KEY, file TEXT, records INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (key TEXT PRIMARY KEY, unit TEXT NOT NULL,
                                   name TEXT NOT NULL, error TEXT);
CREATE TEMP TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY);
"""


class OutputFolder:
    """An output folder opened for one run: locked, leftovers of killed runs removed, settings
    checked against those it was made with."""

    def __init__(self, folder: str | Path, settings: dict[str, Any]) -> None:
        self.folder = Path(folder)
        check_writable(self.folder, folder=True)
        self.records = self.folder / "records"
        self.records.mkdir(exist_ok=True)
        self.errors_path = self.folder / "errors.jsonl"
        self._lock = open(self.folder / ".lock", "a+")  # noqa: SIM115
        if fcntl is not None:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lock.close()
                raise OutputError(f"{self.folder}: another pafpose batch run is using this "
                                  "folder") from None
        try:
            self.db = sqlite3.connect(self.folder / "done.sqlite", isolation_level=None)
            self.db.executescript(_SCHEMA)
            self._check_settings(settings)
            self.removed = self.remove_leftovers()
        except sqlite3.Error as exc:
            self.close()
            raise OutputError(f"{self.folder}/done.sqlite: {exc}") from None
        except BaseException:
            self.close()
            raise

    def _check_settings(self, settings: dict[str, Any]) -> None:
        settings = json.loads(json.dumps(settings, sort_keys=True, default=str))
        text = json.dumps(settings, sort_keys=True)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('settings', ?)", (text,))
            return
        before = json.loads(row[0])
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if changed:
            was = ", ".join(f"{k} {before.get(k)!r}" for k in changed)
            raise OutputError(f"{self.folder} holds results made with other settings ({was}); "
                              "give the same settings, or another --output")

    def remove_leftovers(self) -> int:
        """Remove temporary files and records files of units never committed (a killed run's)."""
        removed = 0
        with os.scandir(self.records) as entries:
            for entry in entries:
                unit = entry.name.split(".")[0]
                stray = TEMP_SUFFIX in entry.name or not self.db.execute(
                    "SELECT 1 FROM units WHERE id = ?", (unit,)).fetchone()
                if stray and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def retry_failed(self) -> int:
        """Forget the inputs that failed, so that this run tries them again; how many."""
        return self.db.execute("DELETE FROM inputs WHERE error IS NOT NULL").rowcount

    def new_pass(self) -> None:
        """Start listing the inputs afresh (inputs met twice in one listing count once)."""
        self.db.execute("DELETE FROM seen")

    def is_done(self, key: str) -> bool:
        """Whether an input is done (or failed) in an earlier run."""
        return self.db.execute("SELECT 1 FROM inputs WHERE key = ?", (key,)).fetchone() is not None

    def seen(self, key: str) -> bool:
        """Whether an input was already met in this listing (it is then remembered)."""
        return self.db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,)).rowcount == 0

    def commit(self, unit_id: str, file: str | None, records: int,
               inputs: list[tuple[str, str, str | None]]) -> None:
        """Mark a unit and its inputs (key, name, error or None) done, in one transaction."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO units VALUES (?, ?, ?)",
                            (unit_id, file, records))
            self.db.executemany("INSERT OR REPLACE INTO inputs VALUES (?, ?, ?, ?)",
                                [(key, unit_id, name, error) for key, name, error in inputs])

    def counts(self) -> dict[str, int]:
        """Inputs done and failed, units and records, over every run into this folder."""
        done, failed = self.db.execute(
            "SELECT COUNT(*), COUNT(error) FROM inputs").fetchone()
        units, records = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(records), 0) FROM units").fetchone()
        return {"inputs": done, "failed": failed, "units": units, "records": records}

    def write_errors(self) -> None:
        """Write errors.jsonl (atomically, streamed) from the failed inputs; remove it when
        none failed."""
        rows = self.db.execute("SELECT name, error FROM inputs WHERE error IS NOT NULL "
                               "ORDER BY rowid")
        with atomic_path(self.errors_path) as tmp, open(tmp, "w", encoding="utf-8") as out:
            for name, error in rows:
                out.write(json.dumps({"input": name, "error": error}) + "\n")
        if self.errors_path.stat().st_size == 0:
            self.errors_path.unlink()

    def close(self) -> None:
        """Release the database and the lock."""
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
        self._lock.close()
