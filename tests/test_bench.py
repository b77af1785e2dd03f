"""`pafpose bench` and `run_bench`: real images, real model; figures checked for sanity only."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from pafpose.bench import STAGES, BenchResult, bench_images, conv_macs, run_bench
from pafpose.models.resolve import resolve_model
from pafpose.runtime import BACKENDS

from .conftest import COCO_DEV, MEDIA, need


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pafpose", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def images() -> list:
    return [need(MEDIA / "basketball1.png"), need(MEDIA / "messi5.jpg")]


def test_network_macs_match_the_published_counts(thin_pb) -> None:
    # mobilenet_thin at 432x368: 4.97 GMAC; backbone ~2.44, stage 1 0.48, stages 2-6 0.41 each
    shape = (1, 368, 432, 3)
    full = conv_macs(resolve_model("mobilenet_thin", progress=False), shape) / 1e9
    assert full == pytest.approx(4.97, abs=0.01)
    k = [conv_macs(resolve_model("mobilenet_thin", stages=s, progress=False), shape) / 1e9
         for s in (1, 2, 3)]
    assert k[0] == pytest.approx(2.44 + 0.48, abs=0.02)
    assert k[1] - k[0] == pytest.approx(0.41, abs=0.01)
    assert k[2] - k[1] == pytest.approx(0.41, abs=0.01)
    # MACs grow with the pixels
    assert conv_macs(resolve_model("mobilenet_thin", progress=False), (1, 736, 864, 3)) == \
        pytest.approx(4 * full * 1e9, rel=1e-6)


def test_run_bench_returns_sane_figures(thin_pb, images) -> None:
    r = run_bench(preset="seed", images=images, runs=3, warmup=1, progress=False,
                  backend="onnxruntime", threads=1)
    assert isinstance(r, BenchResult)
    assert (r.runs, r.images, r.backend, r.threads) == (3, 2, "onnxruntime", 1)
    assert r.input_sizes == [(432, 368)] and r.preset == "seed" and r.precision == "fp32"
    for name in STAGES:
        t = r.times[name]
        assert math.isfinite(t.median_ms) and 0 < t.min_ms <= t.median_ms <= t.p90_ms, name
        assert len(r.samples[name]) == 3
    assert len(r.samples["cpu"]) == 3 and r.times["cpu"].median_ms > 0
    # total covers network and decode (read is outside: the image is in memory)
    for tot, net, dec in zip(r.samples["total"], r.samples["network"], r.samples["decode"],
                             strict=True):
        assert tot >= net + dec - 1e-6
    assert r.fps == pytest.approx(1000 / r.times["total"].median_ms)
    assert r.gmac == pytest.approx(4.97, abs=0.01)
    assert r.gflops == pytest.approx(2 * r.gmac / (r.times["network"].median_ms / 1000))
    assert r.peak_mib > 50
    assert r.people > 0.5  # both photos show people
    text = r.format()
    for word in ("read", "preprocess", "network", "decode", "total", "GMAC", "GFLOP/s",
                 "peak memory", "backend onnxruntime", "int8"):
        assert word in text


def test_run_bench_stages_and_auto_backend(thin_pb, images) -> None:
    r = run_bench(preset="seed", stages=2, images=images[:1], runs=2, warmup=1, progress=False)
    assert r.stages == 2 and r.backend in BACKENDS
    assert r.gmac == pytest.approx(2.44 + 0.48 + 0.41, abs=0.03)


def test_bench_images_default_and_errors(tmp_path) -> None:
    need(COCO_DEV)
    assert 0 < len(bench_images()) <= 8
    with pytest.raises(ValueError, match="no benchmark images found"):
        bench_images([tmp_path])
    with pytest.raises(ValueError, match="runs must be >= 1"):
        run_bench(runs=0)


def test_cli_bench_runs(thin_pb) -> None:
    need(MEDIA)
    res = run("bench", "--runs", "3", "--warmup", "1")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "network" in out and "GMAC" in out and "fps" in out
    assert "backend " in out and "backend auto" not in out  # says which backend was picked
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--runs", "0"), "expected a positive integer"),
        (("--stages", "9"), "expected a stage count from 1 to 6"),
        (("--backend", "tensorrt"), "invalid choice"),
        (("--images", "no-such-folder-here"), "no-such-folder-here: no such file or folder"),
    ],
)
def test_cli_bench_bad_input_is_one_line(thin_pb, args, message) -> None:
    res = run("bench", *args)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
