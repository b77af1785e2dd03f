"""Damaged, truncated and foreign model files: rebuilt with one line, or refused naming the file.

Every test works in its own PAFPOSE_HOME holding a copy of the real cached graph, never in the
shared cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from pafpose import PoseEstimator
from pafpose.models import integrity, resolve
from pafpose.models.fetch import cache_state, cached_source_path
from pafpose.models.graphdef import GraphDefError
from pafpose.models.integrity import ModelFileError
from pafpose.models.registry import MODELS
from pafpose.runtime import available_backends

from .conftest import MEDIA, ROOT, need


@pytest.fixture
def home(tmp_path: Path, thin_pb: Path, monkeypatch) -> Path:
    """An isolated cache holding a copy of the real mobilenet_thin graph (not yet converted)."""
    home = tmp_path / "home"
    monkeypatch.setenv("PAFPOSE_HOME", str(home))
    source = cached_source_path(MODELS["mobilenet_thin"])
    source.parent.mkdir(parents=True)
    shutil.copyfile(thin_pb, source)
    return home


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PAFPOSE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pafpose", *args], capture_output=True,
                          text=True, timeout=300, env=env, check=False)


def _damage(path: Path, truncate: bool = False) -> None:
    data = path.read_bytes()
    if truncate:
        path.write_bytes(data[: len(data) // 3])
    else:  # same size: zero 64 KiB of weights in the middle
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes(65536) + data[mid + 65536:])


def test_damaged_converted_model_is_rebuilt_with_one_line(home: Path) -> None:
    photo = need(MEDIA / "messi5.jpg")
    onnx_path = resolve.resolve_model("mobilenet_thin", progress=False)
    assert onnx_path.parent == cached_source_path(MODELS["mobilenet_thin"]).parent
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta == {"pafpose.converter": resolve.CONVERTER_VERSION,
                    "pafpose.source_sha256": MODELS["mobilenet_thin"].member_sha256}
    good = onnx_path.read_bytes()
    _damage(onnx_path)
    # fp32: the model checked here (auto may build an INT8 model from it on a VNNI CPU)
    run = _cli("predict", str(photo), "--precision", "fp32", home=home)
    assert run.returncode == 0, run.stderr
    assert "people" in run.stdout and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert str(onnx_path) in lines[0] and "damaged" in lines[0] and "rebuilding" in lines[0]
    assert onnx_path.read_bytes() == good  # the conversion is deterministic


def test_truncated_or_stale_converted_model_is_rebuilt(home: Path, caplog) -> None:
    onnx_path = resolve.resolve_model("mobilenet_thin", progress=False)
    good = onnx_path.read_bytes()
    assert caplog.records == []  # a first conversion is not a repair
    _damage(onnx_path, truncate=True)
    assert resolve.resolve_model("mobilenet_thin", progress=False) == onnx_path
    assert onnx_path.read_bytes() == good
    (message,) = [r.getMessage() for r in caplog.records]
    assert "truncated" in message and str(onnx_path) in message
    caplog.clear()
    resolve.resolve_model("mobilenet_thin", progress=False)
    assert caplog.records == []  # intact now: nothing to say
    onnx_path.with_name(f".{onnx_path.name}.sha256").unlink()  # a cache from an older pafpose
    resolve.resolve_model("mobilenet_thin", progress=False)
    (message,) = [r.getMessage() for r in caplog.records]
    assert "no integrity record" in message and onnx_path.read_bytes() == good


def test_leftover_conversion_temporaries_are_removed(home: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    folder = cached_source_path(MODELS["mobilenet_thin"]).parent
    killed = folder / f".graph_opt.onnx.{int(dead.stdout)}.89abcdef.part"
    killed.write_bytes(b"half a model")
    int8 = folder / f".int8-{int(dead.stdout)}-x7y8z9"  # staging folder of a killed INT8 build
    int8.mkdir()
    (int8 / "model.int8.onnx").write_bytes(b"partial")
    mine = folder / f".graph_opt.onnx.{os.getpid()}.01234567.part"  # a running conversion
    mine.write_bytes(b"")
    resolve.resolve_model("mobilenet_thin", progress=False)
    assert not killed.exists() and not int8.exists() and mine.exists()


def test_models_listing_says_when_the_cached_graph_is_damaged(home: Path) -> None:
    spec = MODELS["mobilenet_thin"]
    assert cache_state(spec) == "cached"
    _damage(cached_source_path(spec))
    assert cache_state(spec) == "damaged"
    cached_source_path(spec).unlink()
    assert cache_state(spec) == "not cached"


def test_record_check_costs_a_stat_and_sees_changes(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x" * 1000)
    integrity.write_record(path, integrity.file_sha256(path))
    assert integrity.check_built(path) is None  # racy: re-hashed, still intact
    hour_ago = path.stat().st_mtime_ns - 3600 * 10**9
    os.utime(path, ns=(hour_ago, hour_ago))
    assert integrity.check_built(path) is None  # touched: re-hashed once, record refreshed
    record = integrity.read_record(path)
    assert record is not None and record["mtime_ns"] == hour_ago
    path.write_bytes(b"y" * 1000)  # same size, new mtime
    assert "damaged" in (integrity.check_built(path) or "")
    path.write_bytes(b"x" * 10)
    assert "truncated" in (integrity.check_built(path) or "")
    path.unlink()
    assert integrity.check_built(path) == "is missing"


def _bad_files(folder: Path, thin_pb: Path, onnx_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    model = onnx.load(str(onnx_path))
    del model.graph.initializer[len(model.graph.initializer) // 2:]  # cut at a field boundary
    payloads = {
        "empty.onnx": b"",
        "random.onnx": rng.bytes(50_000),
        "truncated.onnx": onnx_path.read_bytes()[:2_000_000],
        "no-weights.onnx": model.SerializeToString(),
        "empty.pb": b"",
        "random.pb": rng.bytes(50_000),
        "truncated.pb": thin_pb.read_bytes()[:3_000_000],
    }
    files = {}
    for name, data in payloads.items():
        files[name] = folder / name
        files[name].write_bytes(data)
    return files


def test_bad_model_files_raise_a_clear_error_naming_them(home: Path, thin_pb: Path) -> None:
    onnx_path = resolve.resolve_model("mobilenet_thin", progress=False)
    for name, path in _bad_files(home, thin_pb, onnx_path).items():
        for backend in available_backends():
            kind = GraphDefError if name.endswith(".pb") else ModelFileError
            with pytest.raises(kind) as info:
                PoseEstimator(path, backend=backend, progress=False)
            assert str(path) in str(info.value), (name, backend)
            assert len(str(info.value).splitlines()) == 1


def test_bad_model_file_on_the_command_line_gives_one_line(home: Path, thin_pb: Path) -> None:
    photo = need(MEDIA / "messi5.jpg")
    onnx_path = resolve.resolve_model("mobilenet_thin", progress=False)
    files = _bad_files(home, thin_pb, onnx_path)
    for name in ("random.onnx", "truncated.pb"):
        run = _cli("predict", "--model", str(files[name]), str(photo), home=home)
        assert run.returncode == 2, run.stderr
        assert run.stderr.count("\n") == 1 and str(files[name]) in run.stderr, run.stderr
        assert run.stderr.startswith("pafpose: error:")
