"""defaults: the cache folder and the CPU count."""

from __future__ import annotations

import os
from pathlib import Path

from pafpose import defaults


def test_cache_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path / "x"))
    assert defaults.cache_dir() == Path(tmp_path / "x")


def test_cache_dir_follows_xdg_without_pafpose_home(monkeypatch, tmp_path):
    monkeypatch.delenv("PAFPOSE_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert defaults.cache_dir() == tmp_path / "pafpose"


def test_available_cpus_is_the_affinity_mask():
    cpus = defaults.available_cpus()
    assert cpus >= 1
    if hasattr(os, "sched_getaffinity"):
        assert cpus == len(os.sched_getaffinity(0))
