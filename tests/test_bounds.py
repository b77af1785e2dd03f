"""Bounded work through the CLI: extreme images finish small and quick, a huge --resize is
refused in one line, an EXIF-turned photo is reported in the viewer's orientation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import MEDIA, need

# Runs `pafpose ARGS` as a child and prints the child's peak RSS (kB) on the last line.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run([sys.executable, '-m', 'pafpose', *sys.argv[1:]]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def pafpose(*args: str | Path, timeout: float = 180) -> tuple[int, str, str, int]:
    """Run `pafpose ARGS`: (exit status, stdout, stderr, peak memory in MB)."""
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    *out, peak = proc.stdout.splitlines()
    return proc.returncode, "\n".join(out), proc.stderr, int(peak) // 1024


def test_extreme_images_bounded_through_the_cli(thin_pb, tmp_path):
    paths = []
    for w, h in [(3, 2000), (2000, 3), (6000, 40), (40, 6000)]:
        paths.append(tmp_path / f"{w}x{h}.png")
        cv2.imwrite(str(paths[-1]), np.random.default_rng(w).integers(0, 255, (h, w, 3), np.uint8))
    out = tmp_path / "out.json"
    status, _, err, peak_mb = pafpose("predict", *paths, "--json", out)
    assert status == 0, err
    assert [len(doc["people"]) for doc in json.loads(out.read_text())] == [0, 0, 0, 0]
    assert peak_mb < 1000, peak_mb  # unbounded, 3x2000 alone took > 10 GB


def test_resize_above_the_ceiling_is_one_line(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    status, out, err, _ = pafpose("predict", image, "--resize", "99999x99999", timeout=60)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "above the ceiling" in err and "Traceback" not in err
    status, _, err, _ = pafpose("predict", image, "--max-input-side", "8", timeout=60)
    assert status == 2 and err.count("\n") == 1 and "at least 64 px" in err


def test_exif_turned_photo_reported_upright(thin_pb, tmp_path):
    pil = pytest.importorskip("PIL.Image")
    upright = pil.open(need(MEDIA / "messi5.jpg")).convert("RGB")
    exif = pil.Exif()
    exif[0x0112] = 6  # the viewer turns the stored pixels 90 degrees clockwise
    path = tmp_path / "sideways.jpg"
    upright.transpose(pil.Transpose.ROTATE_90).save(path, quality=100, exif=exif.tobytes())
    out, shown = tmp_path / "out.json", tmp_path / "shown"
    status, _, err, _ = pafpose("predict", path, "--json", out, "--image-output", shown)
    assert status == 0, err
    people = json.loads(out.read_text())[0]["people"]
    assert people
    drawn = cv2.imread(str(next(shown.iterdir())))
    assert drawn.shape[:2] == (upright.height, upright.width)  # drawn as the viewer shows it
    for person in people:
        xy = np.array(person["pose_keypoints_2d"]).reshape(-1, 3)
        found = xy[xy[:, 2] > 0]
        assert (found[:, 0] < upright.width).all() and (found[:, 1] < upright.height).all()
