"""files: atomic writes and the JSON / image writers."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from pafpose.errors import ImageError
from pafpose.files import atomic_path, write_image, write_json


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_path_results_have_the_umask_permissions(tmp_path, umask):
    """Outputs are as readable as a plain open() would make them (mkstemp's are 0600)."""
    old = os.umask(umask)
    try:
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_path_names_its_owner(tmp_path):
    with atomic_path(tmp_path / "out.json") as tmp:
        assert f".{os.getpid()}." in tmp.name and tmp.name.endswith(".part")
    with atomic_path(tmp_path / "clip.mp4", keep_suffix=True) as tmp:
        assert tmp.name.endswith(".part.mp4")


def test_a_failed_block_leaves_nothing(tmp_path):
    (tmp_path / "out.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert (tmp_path / "out.json").read_text() == "old"


def test_write_json_to_a_file_and_to_stdout(tmp_path):
    write_json({"a": [1, 2]}, tmp_path / "sub" / "r.json")
    assert json.loads((tmp_path / "sub" / "r.json").read_text()) == {"a": [1, 2]}
    out = io.StringIO()
    write_json([3], "-", out)
    assert out.getvalue() == "[3]\n"


def test_write_image_round_trip_and_bad_suffix(tmp_path):
    import cv2

    image = np.zeros((8, 10, 3), np.uint8)
    image[2:4, 3:5] = 200
    write_image(tmp_path / "a.png", image)
    assert np.array_equal(cv2.imread(str(tmp_path / "a.png")), image)
    with pytest.raises((ImageError, cv2.error)):
        write_image(tmp_path / "a.unknown", image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
