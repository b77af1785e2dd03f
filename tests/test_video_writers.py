"""Video writers: the annotated video and JSON lines, renamed into place when closed, no file
without frames, no temporary file left."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest

from pafpose.human import Human
from pafpose.track import Person
from pafpose.video import (
    Frame,
    FrameResult,
    JsonLinesWriter,
    VideoError,
    VideoWriter,
    frame_record,
)


def frames_in(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def a_result(index: int = 3, name: str | None = None) -> FrameResult:
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[1] = (40, 30, 0.9)
    keypoints[2] = (30, 35, 0.8)
    person = Person(7, Human(keypoints, 0.85, (64, 48)))
    return FrameResult(Frame(index, index / 10, np.zeros((48, 64, 3), np.uint8), name), [person])


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_writer_renames_into_place_when_closed(tmp_path, suffix):
    path = tmp_path / "sub" / f"out{suffix}"
    writer = VideoWriter(path, 10.0, (64, 48))
    assert writer.tmp.parent == path.parent and writer.tmp.suffix == suffix
    assert not path.exists()
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.write(np.zeros((96, 128, 3), np.uint8))  # resized to the video's size
    assert writer.close() == path
    assert frames_in(path) == 6
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_video_writer_in_real_time_repeats_frames_up_to_their_time(tmp_path):
    writer = VideoWriter(tmp_path / "live.mp4", 10.0, (64, 48), real_time=True)
    image = np.zeros((48, 64, 3), np.uint8)
    for t in (0.0, 0.05, 0.42):
        writer.write(image, t)
    assert writer.frames == 5  # 0 s: 1, 0.05 s: 1 (at least once), 0.42 s: up to frame 4
    writer.close()


def test_writers_without_frames_leave_no_file(tmp_path):
    video = VideoWriter(tmp_path / "out.mp4", 10.0, (64, 48))
    lines = JsonLinesWriter(tmp_path / "out.jsonl")
    assert video.close() is None and lines.close() is None
    assert list(tmp_path.iterdir()) == []


def test_video_writer_refuses_unknown_types_and_leaves_nothing(tmp_path):
    with pytest.raises(VideoError, match="unknown video type '.gif'"):
        VideoWriter(tmp_path / "out.gif", 10.0, (64, 48))
    assert list(tmp_path.iterdir()) == []


def test_json_lines_to_a_file_and_to_stdout(tmp_path):
    path = tmp_path / "out.jsonl"
    writer = JsonLinesWriter(path)
    writer.write(frame_record(a_result(3)))
    writer.write(frame_record(a_result(4, "000004.jpg")))
    assert not path.exists()
    assert writer.close() == path
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["frame"] for r in records] == [3, 4]
    assert records[0]["time"] == pytest.approx(0.3) and records[0]["size"] == [64, 48]
    assert "image" not in records[0] and records[1]["image"] == "000004.jpg"
    assert [p["id"] for p in records[0]["people"]] == [7]
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    out = io.StringIO()
    writer = JsonLinesWriter("-", stdout=out)
    writer.write(frame_record(a_result(3)))
    assert writer.close() is None
    assert json.loads(out.getvalue()) == records[0]
