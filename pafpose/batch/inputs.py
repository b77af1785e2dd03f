"""The inputs of a batch run: files, folders (recursive), glob patterns and manifest files
(one path or http(s) URL a line), streamed in a stable order, images and videos told apart."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..images import IMAGE_SUFFIXES
from ..predict import is_url

#: Video containers a folder walk or a glob takes as videos (any other named file is an image,
#: its content decides).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg",
                            ".wmv", ".flv", ".ts"})
#: Files taken as manifests: one path or URL a line, '#' starts a comment.
MANIFEST_SUFFIXES = frozenset({".txt", ".lst"})
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Item:
    """One input: `name` as the user gave it (recorded), `location` the absolute path or the URL
    a worker reads, `kind` "image" or "video"."""

    name: str
    location: str
    kind: str

    @property
    def key(self) -> str:
        """What marks this input done: its absolute path, or its URL."""
        return self.location


def _kind(path: Path) -> str:
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def _item(name: str, path: Path | None = None) -> Item:
    if is_url(name):
        return Item(name, name, "image")
    path = Path(name) if path is None else path
    return Item(name, os.path.abspath(path), _kind(path))


def _walk(folder: Path, skipped: Callable[[Path], None]) -> Iterator[Item]:
    """Images and videos under a folder, in name order, subfolders included (one folder's
    listing at a time in memory)."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES:
                yield _item(str(path), path)
            elif not name.startswith("."):
                skipped(path)


def _manifest(path: Path) -> Iterator[Item]:
    """The lines of a manifest: paths (relative ones from the manifest's folder) or URLs."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            if is_url(entry):
                yield _item(entry)
            else:
                target = Path(entry) if Path(entry).is_absolute() else path.parent / entry
                yield _item(entry if Path(entry).is_absolute() else str(target), target)


def iter_items(inputs: Iterable[str | Path],
               note: Callable[[str], object] | None = None) -> Iterator[Item]:
    """Every input, streamed: folders walked recursively, globs expanded (sorted), manifests
    (.txt, .lst) read line by line, other files and URLs as given (a missing one fails later,
    as that input's error). `note` receives one line per folder on the files it skipped and
    per pattern that matched nothing."""
    tell = note or (lambda text: None)
    for spec in map(str, inputs):
        path = Path(spec)
        if is_url(spec):
            yield _item(spec)
        elif path.is_dir():
            skipped: list[str] = []
            yield from _walk(path, lambda p, s=skipped: s.append(p.suffix.lower() or "no suffix"))
            if skipped:
                kinds = ", ".join(sorted(set(skipped)))
                tell(f"{spec}: skipped {len(skipped)} files that are neither images nor videos "
                     f"({kinds})")
        elif path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            yield from _manifest(path)
        elif not path.exists() and _GLOB_CHARS & set(spec):
            matches = sorted(glob.iglob(spec, recursive=True))
            files = [m for m in matches if not os.path.isdir(m)]
            if not files:
                tell(f"{spec}: matched no file")
            for match in files:
                yield _item(match)
        else:
            yield _item(spec)
