"""Pose estimation over files (pafpose/predict.py): inputs, output checks, the run loop."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pafpose.errors import InputError, OutputError
from pafpose.predict import (
    check_writable,
    prepare_inputs,
    results_document,
    run_predict,
)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), np.zeros((32, 32, 3), np.uint8))
    (folder / "notes.txt").write_text("x")
    return folder


def test_prepare_inputs_reports_skipped_files(images):
    notes = []
    assert prepare_inputs([images], note=notes.append) == [images / "a.png", images / "b.png"]
    assert notes == [f"{images}: skipped 1 file that is not an image (.txt)"]


def test_prepare_inputs_refuses_no_images_and_unwritable_outputs(tmp_path, images):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        prepare_inputs([tmp_path / "empty"])
    with pytest.raises(OutputError, match="is a folder, not a file"):
        prepare_inputs([images], json_output=images)
    with pytest.raises(OSError):  # OutputError is an OSError for API callers
        check_writable(images / "a.png", folder=True)


def test_run_predict_counts_failures_and_writes_json(estimator, tmp_path, images):
    out, err = io.StringIO(), io.StringIO()
    paths = [images / "a.png", images / "notes.txt", images / "b.png"]
    run = run_predict(estimator, paths, tmp_path / "r.json", stdout=out, stderr=err)
    assert (run.total, run.failed, run.interrupted) == (3, 1, False)
    assert f"pafpose: {images / 'notes.txt'}: not an image" in err.getvalue()
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [d["image"] for d in doc] == [str(images / "a.png"), str(images / "b.png")]


def test_run_predict_lines_without_json(estimator, images):
    out = io.StringIO()
    run_predict(estimator, [images / "a.png"], stdout=out, stderr=io.StringIO())
    assert out.getvalue() == f"{images / 'a.png'}: 0 people\n"


def test_unknown_format_is_a_user_error():
    with pytest.raises(InputError, match="unknown format"):
        results_document([], "yaml")
