"""Model fetching against a real HTTP server on loopback serving a small simple-API index."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pafpose.models import fetch
from pafpose.models.registry import MODELS

MEMBER = "toy-1.0/models/graph/toy/graph_opt.pb"
PAYLOAD = b"frozen graph bytes " * 1000


def _archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in ((MEMBER, PAYLOAD), ("toy-1.0/setup.py", b"raise SystemExit(1)\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


ARCHIVE = _archive()
SPEC = dataclasses.replace(
    MODELS["mobilenet_thin"], name="toy", project="Toy_Pose", archive="toy-1.0.tar.gz",
    archive_sha256=hashlib.sha256(ARCHIVE).hexdigest(), member=MEMBER,
    member_sha256=hashlib.sha256(PAYLOAD).hexdigest(), member_size=len(PAYLOAD),
)


class _Index(BaseHTTPRequestHandler):
    mode = "json"  # json | html | truncate
    hits: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        if self.path == "/simple/toy-pose/":
            if self.mode == "html":
                body = (f'<html><body><a href="../../files/toy-1.0.tar.gz#sha256='
                        f'{SPEC.archive_sha256}">toy-1.0.tar.gz</a></body></html>').encode()
                kind = "text/html"
            else:
                body = json.dumps({"meta": {"api-version": "1.0"}, "name": "toy-pose", "files": [
                    {"filename": "toy-1.0.tar.gz", "url": "/files/toy-1.0.tar.gz",
                     "hashes": {"sha256": SPEC.archive_sha256}}]}).encode()
                kind = "application/vnd.pypi.simple.v1+json"
            self._send(body, kind)
        elif self.path == "/files/toy-1.0.tar.gz":
            if self.mode == "truncate":
                self.send_response(200)
                self.send_header("Content-Length", str(len(ARCHIVE)))
                self.end_headers()
                self.wfile.write(ARCHIVE[: len(ARCHIVE) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(ARCHIVE, "application/octet-stream")
        else:
            self.send_error(404)

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def index(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_port}/simple")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "cache"))
    _Index.mode, _Index.hits = "json", []
    yield _Index
    server.shutdown()
    server.server_close()


def test_fetch_json_index_then_cache(index):
    path = fetch.fetch_source(SPEC, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert path.parent.parent == fetch.cache_dir()
    hits = len(index.hits)
    assert fetch.fetch_source(SPEC, progress=False) == path
    assert len(index.hits) == hits, "a cached model must not be downloaded again"
    assert not (path.parent / "setup.py").exists()


def test_fetch_html_index(index):
    index.mode = "html"
    assert fetch.fetch_source(SPEC, progress=False).read_bytes() == PAYLOAD


def test_archive_hash_mismatch(index):
    bad = dataclasses.replace(SPEC, archive_sha256="0" * 64)
    with pytest.raises(fetch.FetchError, match="sha256"):
        fetch.fetch_source(bad, progress=False)
    assert not fetch.cached_source_path(bad).exists()


def test_member_hash_mismatch(index):
    bad = dataclasses.replace(SPEC, member_sha256="1" * 64)
    with pytest.raises(fetch.FetchError, match="not the published one"):
        fetch.fetch_source(bad, progress=False)
    assert not fetch.cached_source_path(bad).exists()


def test_interrupted_download_leaves_no_cache(index):
    index.mode = "truncate"
    with pytest.raises(fetch.FetchError):
        fetch.fetch_source(SPEC, progress=False)
    leftovers = [p for p in fetch.cache_dir().rglob("*") if p.is_file()]
    assert leftovers == []


def test_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    with pytest.raises(fetch.FetchError, match="--model PATH"):
        fetch.fetch_source(SPEC, progress=False)


def test_corrupt_archive(tmp_path):
    archive = tmp_path / "toy-1.0.tar.gz"
    archive.write_bytes(ARCHIVE[:100])
    with pytest.raises(fetch.FetchError, match="corrupt"):
        fetch.extract_member(archive, SPEC, tmp_path / "out.pb")
    assert not (tmp_path / "out.pb").exists()


def test_index_urls_follow_environment(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://example.invalid/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://a.invalid/simple http://b.invalid/simple")
    assert fetch.index_urls() == ["http://example.invalid/simple", "http://a.invalid/simple",
                                  "http://b.invalid/simple"]


def _no_pip_environment(monkeypatch):
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONFIG_FILE", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_index_urls_follow_the_pip_config_file(monkeypatch, tmp_path):
    _no_pip_environment(monkeypatch)
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://example.invalid/simple\n"
                    "extra-index-url = http://a.invalid/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert fetch.index_urls() == ["http://example.invalid/simple", "http://a.invalid/simple"]


def test_index_urls_follow_the_user_pip_conf(monkeypatch, tmp_path):
    _no_pip_environment(monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".config" / "pip").mkdir(parents=True)
    (tmp_path / ".config" / "pip" / "pip.conf").write_text(
        "[install]\nindex-url = http://user.invalid/simple\n")
    assert fetch.index_urls()[0] == "http://user.invalid/simple"


def test_index_urls_fall_back_to_pips_default(monkeypatch):
    _no_pip_environment(monkeypatch)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip then reads no configuration file
    default = fetch._pip_default_index()
    assert default is not None and re.fullmatch(r"https://[^/\s]+/simple/?", default)
    assert fetch.index_urls() == [default]
    monkeypatch.setattr(fetch, "_pip", lambda *args: "")  # pip missing or mute
    with pytest.raises(fetch.FetchError, match="PIP_INDEX_URL"):
        fetch.index_urls()


def _downloads(index) -> int:
    return sum(hit.startswith("/files/") for hit in index.hits)


def test_damaged_or_truncated_cached_graph_is_fetched_again(index, caplog):
    path = fetch.fetch_source(SPEC, progress=False)
    assert fetch.fetch_source(SPEC, progress=False) == path and _downloads(index) == 1
    damaged = bytearray(PAYLOAD)
    damaged[100] ^= 0xFF  # same size: only the sha256 can tell
    for payload, why in ((bytes(damaged), "is damaged"), (PAYLOAD[:1000], "truncated")):
        before = _downloads(index)
        path.write_bytes(payload)
        caplog.clear()
        assert fetch.fetch_source(SPEC, progress=False) == path
        assert path.read_bytes() == PAYLOAD
        assert _downloads(index) == before + 1
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and why in lines[0] and "fetching it again" in lines[0]
        assert str(path) in lines[0]


def test_intact_cached_graph_is_not_rehashed(index, monkeypatch):
    from pafpose.models import integrity

    path = fetch.fetch_source(SPEC, progress=False)
    hour_ago = path.stat().st_mtime_ns - 3600 * 10**9
    os.utime(path, ns=(hour_ago, hour_ago))  # a cache made an hour ago and checked since
    assert integrity.current_sha256(path) == SPEC.member_sha256

    def no_hashing(p):
        raise AssertionError(f"re-hashed {p}")

    monkeypatch.setattr(integrity, "file_sha256", no_hashing)
    assert fetch.fetch_source(SPEC, progress=False) == path  # size + mtime match the record


def test_leftovers_of_killed_downloads_are_removed_but_not_those_of_running_ones(index, caplog):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        home = fetch.cache_dir()
        model_dir = fetch.cached_source_path(SPEC).parent
        model_dir.mkdir(parents=True)
        killed = [home / f".fetch-{dead_pid}-k2j4z9",
                  model_dir / f".graph_opt.pb.{dead_pid}.0123abcd.part"]
        killed[0].mkdir()
        (killed[0] / "toy-1.0.tar.gz").write_bytes(ARCHIVE[:500])
        killed[1].write_bytes(PAYLOAD[:10])
        running = [home / f".fetch-{alive.pid}-q8w7e6",
                   model_dir / f".graph_opt.pb.{alive.pid}.4567cdef.part"]
        running[0].mkdir()
        running[1].write_bytes(b"")
        other = model_dir / "notes.part"
        other.write_bytes(b"not ours")
        fetch.fetch_source(SPEC, progress=False)
        assert [p.exists() for p in killed] == [False, False]
        assert [p.exists() for p in running] == [True, True] and other.exists()
        assert any("leftover temporary" in r.getMessage() for r in caplog.records)
    finally:
        alive.kill()
        alive.wait()


# --------------------------------------------------------------------------- URL downloads
# OpenPose's models come from their own URLs, after the licence is accepted.

from pafpose.errors import LicenseError  # noqa: E402
from pafpose.models.registry import CaffeSpec, RemoteFile  # noqa: E402

from .conftest import SHARED, interrupt_when, need  # noqa: E402

BODY25 = MODELS["openpose_body25"]
assert isinstance(BODY25, CaffeSpec)


class _Files(BaseHTTPRequestHandler):
    """Serves `files` (URL path -> bytes); in `slow` mode it sends a first chunk, then stalls."""

    files: dict[str, bytes] = {}
    hits: list[str] = []
    slow = False

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.slow:
            self.wfile.write(body[: 1 << 16])
            self.wfile.flush()
            threading.Event().wait(60)  # until the client gives up
            return
        self.wfile.write(body)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A loopback HTTP server standing in for OpenPose's download server (PAFPOSE_OPENPOSE_URL),
    with PAFPOSE_HOME in a temporary folder."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PAFPOSE_OPENPOSE_URL", f"http://127.0.0.1:{server.server_port}/models")
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "cache"))
    _Files.files, _Files.hits, _Files.slow = {}, [], False
    yield _Files
    server.shutdown()
    server.server_close()


def _real_prototxt() -> bytes:
    return need(SHARED / "models" / "openpose" / "body_25.prototxt").read_bytes()


def _left_in_cache() -> list[str]:
    return sorted(p.name for p in fetch.cache_dir().rglob("*") if p.is_file())


def test_licence_refused_unless_accepted_and_nothing_is_downloaded(mirror):
    with pytest.raises(LicenseError) as exc:
        fetch.fetch_remote(BODY25, progress=False)
    message = str(exc.value)
    assert "\n" not in message and message.startswith("openpose_body25: OpenPose's models are "
                                                      "licensed by Carnegie Mellon University")
    assert "non-commercial research use only" in message and "redistributed" in message
    assert "--accept-license" in message and "--model FOLDER" in message
    assert mirror.hits == []


def test_offline_message_names_the_url_and_the_way_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("PAFPOSE_OPENPOSE_URL", "http://127.0.0.1:9/models")  # closed port
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    with pytest.raises(fetch.FetchError) as exc:
        fetch.fetch_remote(BODY25, progress=False, accept_license=True)
    assert str(exc.value) == (
        "cannot download http://127.0.0.1:9/models/pose/body_25/pose_deploy.prototxt ([Errno "
        "111] Connection refused); without network access, put OpenPose's pose_deploy.prototxt "
        "and pose_iter_584000.caffemodel (from its models/pose/body_25 folder) in one folder "
        "and pass --model FOLDER")


def test_caffemodel_of_the_wrong_size_is_refused_and_not_kept(mirror):
    mirror.files = {"/models/pose/body_25/pose_deploy.prototxt": _real_prototxt(),
                    "/models/pose/body_25/pose_iter_584000.caffemodel": b"\0" * 5000}
    with pytest.raises(fetch.FetchError) as exc:
        fetch.fetch_remote(BODY25, progress=False, accept_license=True)
    assert str(exc.value).startswith(
        "http://127.0.0.1:") and "/pose_iter_584000.caffemodel is 5,000 bytes, expected " \
        "104,664,336 to 108,858,640 bytes: not the published file; without network access" \
        in str(exc.value)
    # the verified prototxt stays (with its record); nothing of the caffemodel does
    assert _left_in_cache() == [".pose_deploy.prototxt.sha256", "pose_deploy.prototxt"]
    assert fetch.cache_state(BODY25) == "damaged"


def test_prototxt_with_another_sha256_is_refused(mirror):
    edited = bytearray(_real_prototxt())
    edited[-3] ^= 1  # same size
    mirror.files = {"/models/pose/body_25/pose_deploy.prototxt": bytes(edited)}
    with pytest.raises(fetch.FetchError, match="downloaded pose_deploy.prototxt has sha256 [0-9a-f]"
                       "{64}, expected 44d6ed3a5268.*1f61: the download was corrupted"):
        fetch.fetch_remote(BODY25, progress=False, accept_license=True)
    assert _left_in_cache() == []


def test_md5_mismatch_and_a_verified_download(mirror, tmp_path):
    port = os.environ["PAFPOSE_OPENPOSE_URL"].split(":")[2].split("/")[0]
    mirror.files = {"/w.bin": b"weights" * 1000}
    good = RemoteFile(f"http://127.0.0.1:{port}/w.bin", "w.bin",
                      md5=hashlib.md5(b"weights" * 1000).hexdigest(), min_size=7000,
                      max_size=7000)
    bad = dataclasses.replace(good, md5="0" * 32)
    with pytest.raises(fetch.FetchError, match=f"has md5 {good.md5}, expected 0{{32}}"):
        fetch.download(bad, tmp_path / "w.bin", progress=False)
    assert list(tmp_path.glob("*w.bin*")) == []
    sha = fetch.download(good, tmp_path / "w.bin", progress=False)
    assert sha == hashlib.sha256(b"weights" * 1000).hexdigest()
    assert (tmp_path / "w.bin").read_bytes() == b"weights" * 1000


def test_accepted_fetch_is_cached_and_checked(mirror, caplog):
    weights = b"\1" * 4000
    spec = dataclasses.replace(BODY25, caffemodel_md5=hashlib.md5(weights).hexdigest(),
                               weights=1000)
    mirror.files = {"/models/pose/body_25/pose_deploy.prototxt": _real_prototxt(),
                    "/models/pose/body_25/pose_iter_584000.caffemodel": weights}
    assert fetch.cache_state(spec) == "not cached"
    prototxt, caffemodel = fetch.fetch_remote(spec, progress=False, accept_license=True)
    assert (prototxt.read_bytes(), caffemodel.read_bytes()) == (_real_prototxt(), weights)
    assert fetch.cache_state(spec) == "cached" and len(mirror.hits) == 2
    assert fetch.fetch_remote(spec, progress=False) == [prototxt, caffemodel]  # no licence
    assert len(mirror.hits) == 2  # question once cached, and no download
    caffemodel.write_bytes(b"\2" * 4000)
    assert fetch.cache_state(spec) == "damaged"
    fetch.fetch_remote(spec, progress=False, accept_license=True)
    assert caffemodel.read_bytes() == weights and len(mirror.hits) == 3
    assert any("is damaged" in r.getMessage() and "fetching it again" in r.getMessage()
               for r in caplog.records)


def test_ctrl_c_during_a_download_leaves_nothing(mirror, tmp_path):
    mirror.files = {"/models/pose/body_25/pose_deploy.prototxt": _real_prototxt(),
                    "/models/pose/body_25/pose_iter_584000.caffemodel": b"\0" * (4 * 26_166_084)}
    mirror.slow = True
    folder = tmp_path / "cache" / "openpose_body25"

    def downloading() -> bool:
        return any(p.name.endswith(".part") for p in folder.glob(".*"))

    status, stderr = interrupt_when(["models", "fetch", "openpose_body25", "--accept-license"],
                                    downloading, timeout=120)
    assert status == 130 and "interrupted" in stderr
    # the prototxt came whole and verified; of the caffemodel nothing stays
    assert sorted(p.name for p in folder.iterdir()) == [".pose_deploy.prototxt.sha256",
                                                         "pose_deploy.prototxt"]
