"""Video sources: frame selection, truncated files and unusable inputs, on the real footage
(vtest.avi)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pafpose.video import VideoError, open_source

from .conftest import MEDIA, need


def test_file_source_selects_frames():
    video = need(MEDIA / "vtest.avi")
    src = open_source(video, start=10, end=40, every=3)
    assert (src.size, src.fps, src.count, src.live) == ((768, 576), 10.0, 10, False)
    frames = list(src)
    src.close()
    assert [f.index for f in frames] == list(range(10, 40, 3))
    assert frames[1].time == pytest.approx(1.3)
    # frame 13 read by skipping equals frame 13 read in order
    cap = cv2.VideoCapture(str(video))
    for _ in range(14):
        _, image = cap.read()
    assert np.array_equal(image, frames[1].image)


def test_truncated_video_ends_with_a_warning(tmp_path):
    video = need(MEDIA / "vtest.avi")
    cut = tmp_path / "cut.avi"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 8])
    src = open_source(cut)
    n = sum(1 for _ in src)
    assert 0 < n < 795
    assert "truncated or damaged" in src.warning


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.mp4", "no such file or folder"),
    (lambda d: (d / "notes.mp4").write_text("not a video") and d / "notes.mp4",
     "cannot open as a video"),
    (lambda d: d, "no images in this folder"),
])
def test_unusable_sources_raise_one_line_errors(tmp_path, make, message):
    with pytest.raises(VideoError, match=message) as info:
        open_source(make(tmp_path))
    assert "\n" not in str(info.value)

