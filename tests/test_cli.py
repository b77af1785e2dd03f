"""The command line, run as a user runs it: a subprocess on real images."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import MEDIA, SHARED, STOP_SIGNALS, need


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pafpose", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", autouse=True)
def _model(thin_pb):
    """Fetch the model before the first subprocess, so no download bar mixes into outputs."""


def test_predict_basketball_draws_two_players(tmp_path):
    image = need(MEDIA / "basketball1.png")
    out = tmp_path / "out"
    res = run("predict", image, "--image-output", out, "--json-output", tmp_path / "r.json")
    assert res.returncode == 0, res.stderr
    drawn = cv2.imread(str(out / "basketball1.png"))
    original = cv2.imread(str(image))
    assert drawn.shape == original.shape
    assert np.count_nonzero(np.any(drawn != original, axis=2)) > 500  # skeletons were drawn
    doc = json.loads((tmp_path / "r.json").read_text())
    assert len(doc) == 1 and doc[0]["version"] == 1.3
    people = [np.array(p["pose_keypoints_2d"]).reshape(18, 3) for p in doc[0]["people"]]
    # both players are found: the left one stands within x < 200, the right one within x > 430
    # (image 640x480); a person belongs to a player when all its found parts lie in that band
    found = [k[k[:, 2] > 0, 0] for k in people]
    assert any(len(x) >= 4 and x.max() < 200 for x in found)
    assert any(len(x) >= 4 and x.min() > 430 for x in found)


def test_predict_coco_json_to_stdout_and_maps(tmp_path):
    image = need(MEDIA / "messi5.jpg")
    res = run("predict", image, "--json-output", "-", "--format", "coco",
              "--show-maps", tmp_path)
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)
    assert len(results) >= 1
    assert all(r["image_id"] == "messi5.jpg" and len(r["keypoints"]) == 51 for r in results)
    h, w = cv2.imread(str(image)).shape[:2]
    figure = cv2.imread(str(tmp_path / "messi5_maps.png"))
    assert figure.shape == (2 * h, 2 * w, 3)


def test_bad_inputs_reported_one_line_each_others_processed(tmp_path):
    good = need(MEDIA / "messi5.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    data = good.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    missing = tmp_path / "missing.png"
    res = run("predict", text, good, cut, missing, "--json-output", tmp_path / "r.json")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("pafpose:")]
    assert len(errors) == 3, res.stderr
    assert any("notes.jpg: not an image" in e for e in errors)
    assert any("cut.jpg: truncated JPEG" in e for e in errors)
    assert any("missing.png: no such file" in e for e in errors)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [d["image"] for d in doc] == [str(good)]


def test_unusual_images_are_processed(tmp_path, astronaut):
    gray = tmp_path / "gray.png"
    rgba = tmp_path / "rgba.png"
    deep = tmp_path / "deep.png"
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(gray), cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(rgba), cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(deep), astronaut.astype(np.uint16) * 257)
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    res = run("predict", tmp_path, "--json-output", tmp_path / "r.json")
    assert res.returncode == 0, res.stderr
    people = {d["image"].rsplit("/", 1)[-1]: len(d["people"]) for d in
              json.loads((tmp_path / "r.json").read_text())}
    assert people == {"deep.png": 1, "gray.png": 1, "rgba.png": 1, "tiny.png": 0}


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    image = np.zeros((20000, 20000), np.uint8)
    cv2.rectangle(image, (9000, 9000), (11000, 11000), 255, -1)
    cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return path


def test_huge_image_refused_naming_the_limit(huge_png):
    res = run("predict", huge_png)
    assert res.returncode == 1
    assert "20000x20000 (400.0 MP), above the pixel limit of 200.0 MP" in res.stderr
    assert "Traceback" not in res.stderr


def test_huge_image_processed_under_a_raised_limit(huge_png):
    res = run("predict", huge_png, "--max-pixels", "400000000", "--json-output", "-")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["people"] == []


def test_usage_errors_are_one_line():
    res = run("predict", "x.png", "--resize", "big")
    assert res.returncode == 2 and "expected WxH" in res.stderr
    res = run("predict", "x.png", "--model", "nowhere.pb")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "pafpose: error: model 'nowhere.pb' is neither a known name (lightweight_openpose, "
        "mobilenet_thin, openpose_body25, openpose_coco, openpose_mpi) nor a file or folder"]


def test_models_lists_cache_state():
    res = run("models")
    assert res.returncode == 0
    assert "mobilenet_thin" in res.stdout and "cached" in res.stdout


@pytest.mark.parametrize("sig, status", STOP_SIGNALS)
def test_predict_interrupted_keeps_the_images_done(tmp_path, sig, status):
    """Ctrl-C, SIGTERM or SIGHUP during a folder: exit 128 + signal, and the JSON file holds
    every image finished; no temporary file is left."""
    from .conftest import COCO_DEV, interrupt_when

    images = need(COCO_DEV / "images")
    drawn, out = tmp_path / "drawn", tmp_path / "poses.json"
    code, stderr = interrupt_when(
        ["predict", images, "--preset", "accurate", "--image-output", drawn, "--json-output", out],
        ready=lambda: len(list(drawn.glob("*.png"))) >= 2, sig=sig)
    assert code == status, stderr
    assert "Traceback" not in stderr
    done = json.loads(out.read_text())
    total = len(list(images.iterdir()))
    assert f"pafpose: interrupted after {len(done)} of {total} images" in stderr
    assert 2 <= len(done) < total
    # every image listed was drawn (one more may have been drawn as Ctrl-C arrived)
    listed, pictures = {Path(d["image"]).stem for d in done}, {p.stem for p in drawn.glob("*.png")}
    assert listed <= pictures and len(pictures - listed) <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawn", "poses.json"]
    assert not [p for p in drawn.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("args, message", [
    (["predict", "x.jpg", "--max-pixels", "0"], "--max-pixels: expected a pixel count from 1"),
    (["predict", "x.jpg", "--max-pixels", "-5"], "--max-pixels: expected a pixel count from 1"),
    (["predict", "x.jpg", "--threads", str(10**12)], "--threads: expected a thread count"),
    (["predict", "x.jpg", "--threads", "0"], "--threads: expected a thread count"),
    (["video", "x.avi", "--every", "0"], "--every: expected a frame count"),
    (["video", "x.avi", "--workers", str(10**12)], "--workers: expected a worker count"),
    (["video", "x.avi", "--start", "-1"], "--start: expected a frame number"),
    (["webcam", "--max-frames", "0"], "--max-frames: expected a frame count"),
    (["eval", "--coco-json", "a", "--images", "b", "--limit", "-1"], "--limit: expected"),
    (["serve", "--port", "65536"], "--port: expected a port from 0 to 65535, got '65536'"),
    (["serve", "--port", "-1"], "--port: expected a port from 0 to 65535"),
])
def test_absurd_option_values_refused_in_one_line(args, message):
    res = run(*args, timeout=60)
    assert res.returncode == 2
    assert message in res.stderr.strip().splitlines()[-1]
    assert "Traceback" not in res.stderr


def test_serve_port_in_use_is_one_line():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = run("serve", "--port", port, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"pafpose: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another server uses it; pick another --port)"]


@pytest.mark.parametrize("option, target, message", [
    ("--image-output", "afile", "afile: is a file, not a folder"),
    ("--json-output", "afile/poses.json", "afile: is a file, not a folder"),
    ("--json-output", "afile/deeper/poses.json", "cannot create this folder"),
    ("--json-output", "adir", "adir: is a folder, not a file"),
    ("--show-maps", "afile/maps", "cannot create this folder"),
])
def test_unwritable_outputs_refused_before_the_work(tmp_path, option, target, message):
    image = need(MEDIA / "messi5.jpg")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    res = run("predict", image, option, tmp_path / target, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pafpose: error: ") and message in lines[0]
    assert res.stdout == ""  # no image was processed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]


def test_same_names_get_suffixes_and_skipped_files_are_reported(tmp_path, astronaut):
    small = cv2.resize(astronaut, (128, 128))
    cam1, cam2, out = tmp_path / "cam1", tmp_path / "cam2", tmp_path / "out"
    (cam1 / "sub").mkdir(parents=True)
    cam2.mkdir()
    for path in (cam1 / "a.jpg", cam1 / "a.png", cam2 / "a.jpg"):
        cv2.imwrite(str(path), small)
    (cam1 / "notes.txt").write_text("x")
    (cam1 / "meta.json").write_text("{}")
    res = run("predict", cam1, cam2, "--image-output", out, "--json-output", tmp_path / "r.json")
    assert res.returncode == 0, res.stderr
    assert [line for line in res.stderr.splitlines() if line.startswith("pafpose")] == [
        f"pafpose: {cam1}: skipped 2 files that are not images (.json, .txt) and 1 subfolder "
        "(folders are not searched recursively)"]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_2.png", "a_3.png"]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [d["image"] for d in doc] == [str(cam1 / "a.jpg"), str(cam1 / "a.png"),
                                         str(cam2 / "a.jpg")]


def test_predict_fetches_an_http_url(media_server, tmp_path):
    need(MEDIA / "messi5.jpg")
    url = f"{media_server}/messi5.jpg"
    res = run("predict", url, f"{media_server}/missing.jpg", "--image-output", tmp_path,
              "--json-output", "-")
    assert res.returncode == 1
    assert [line for line in res.stderr.splitlines() if line.startswith("pafpose")] == [
        f"pafpose: {media_server}/missing.jpg: cannot fetch: HTTP 404 File not found"]
    doc = json.loads(res.stdout)
    assert [d["image"] for d in doc] == [url] and len(doc[0]["people"]) >= 3
    assert [p.name for p in tmp_path.iterdir()] == ["messi5.png"]


def test_url_download_is_bounded(media_server):
    from pafpose.images import ImageError
    from pafpose.predict import fetch_image

    need(MEDIA / "messi5.jpg")
    with pytest.raises(ImageError, match="larger than the download limit of 0.01 MB"):
        fetch_image(f"{media_server}/messi5.jpg", max_pixels=10**8, max_bytes=10_000)
    with pytest.raises(ImageError, match="above the pixel limit"):
        fetch_image(f"{media_server}/messi5.jpg", max_pixels=1000)


# --------------------------------------------------------------------------- OpenPose's models


@pytest.fixture(scope="module")
def coco_folder(tmp_path_factory):
    """An OpenPose models/pose/coco/ folder: the real deploy prototxt (from the shared data,
    never from this repository) beside a caffemodel of random weights."""
    from pafpose.models.caffe import random_weights
    from pafpose.models.caffeproto import read_prototxt, write_caffemodel

    folder = tmp_path_factory.mktemp("coco")
    prototxt = folder / "pose_deploy_linevec.prototxt"
    shutil.copy(need(SHARED / "models" / "openpose" / "coco.prototxt"), prototxt)
    net = read_prototxt(prototxt)
    write_caffemodel(folder / "pose_iter_440000.caffemodel", net, random_weights(net, seed=2))
    yield folder
    shutil.rmtree(folder)  # 0.4 GB (weights and their ONNX) that pytest would keep


def test_predict_with_an_openpose_model_folder(coco_folder, tmp_path):
    import onnx

    image = need(MEDIA / "messi5.jpg")
    res = run("predict", image, "--model", coco_folder, "--resize", "128x96",
              "--json-output", tmp_path / "r.json", timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc[0]["image"] == str(image) and isinstance(doc[0]["people"], list)
    converted = coco_folder / "pose_iter_440000.pose_deploy_linevec.onnx"
    meta = {p.key: p.value for p in onnx.load(str(converted), load_external_data=False)
            .metadata_props}
    assert (meta["pafpose.skeleton"], meta["pafpose.input"], meta["pafpose.stride"]) == (
        "openpose18", "bgr/256-0.5", "8")


def test_predict_with_a_body25_folder_writes_25_keypoints_and_a_drawing(tmp_path):
    """OpenPose's BODY_25 deploy prototxt with a random-weight caffemodel: OpenPose JSON with
    25 keypoints (x, y, score) a person, COCO results with 17, and a drawing."""
    from pafpose.models.caffe import random_weights
    from pafpose.models.caffeproto import read_prototxt, write_caffemodel

    image = need(MEDIA / "messi5.jpg")
    folder = tmp_path / "body_25"
    folder.mkdir()
    prototxt = folder / "pose_deploy.prototxt"
    shutil.copy(need(SHARED / "models" / "openpose" / "body_25.prototxt"), prototxt)
    net = read_prototxt(prototxt)
    write_caffemodel(folder / "pose_iter_584000.caffemodel", net, random_weights(net, seed=0))
    drawn, out = tmp_path / "drawn", tmp_path / "people.json"
    res = run("predict", image, "--model", folder, "--resize", "128x96", "--json-output", out,
              "--image-output", drawn, timeout=300)
    assert res.returncode == 0, res.stderr
    (entry,) = json.loads(out.read_text())
    people = entry["people"]
    assert people and all(len(p["pose_keypoints_2d"]) == 25 * 3 for p in people)
    picture = cv2.imread(str(drawn / "messi5.png"))
    assert picture is not None and picture.shape[:2] == cv2.imread(str(image)).shape[:2]
    res = run("predict", image, "--model", folder, "--resize", "128x96", "--format", "coco",
              "--json-output", "-", timeout=300)
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)
    assert len(results) == len(people) and all(len(r["keypoints"]) == 17 * 3 for r in results)
    shutil.rmtree(folder)  # 0.2 GB of weights and their ONNX that pytest would keep


def test_caffe_model_errors_are_one_line(coco_folder, tmp_path):
    image = need(MEDIA / "messi5.jpg")
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(coco_folder / "pose_deploy_linevec.prototxt", broken)
    with open(coco_folder / "pose_iter_440000.caffemodel", "rb") as f:
        (broken / "pose_iter_440000.caffemodel").write_bytes(f.read(1_000_001))
    for args, line in [
        (["--model", broken], "pafpose: error: caffemodel pose_iter_440000.caffemodel is "
                              "truncated or not a Caffe model"),
        (["--model", tmp_path], f"pafpose: error: model folder {tmp_path} must hold one "
                                ".caffemodel (found: none); pass --model FILE.caffemodel to "
                                "choose"),
        (["--prototxt", broken / "pose_deploy_linevec.prototxt"],
         "pafpose: error: a prototxt goes with a .caffemodel file (--model FILE.caffemodel)"),
    ]:
        res = run("predict", image, *args)
        assert res.returncode == 2
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith(line), \
            res.stderr


def test_openpose_names_need_the_licence_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    monkeypatch.setenv("PAFPOSE_OPENPOSE_URL", "http://127.0.0.1:9/models")  # closed port
    image = need(MEDIA / "messi5.jpg")
    res = run("predict", image, "--model", "openpose_coco")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith("pafpose: error: openpose_coco: OpenPose's models are licensed "
                                 "by Carnegie Mellon University for non-commercial research")
    res = run("predict", image, "--model", "openpose_coco", "--accept-license")
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "pafpose: error: cannot download http://127.0.0.1:9/models/pose/coco/pose_deploy_linevec"
        ".prototxt ([Errno 111] Connection refused); without network access, put OpenPose's "
        "pose_deploy_linevec.prototxt and pose_iter_440000.caffemodel (from its models/pose/coco "
        "folder) in one folder and pass --model FOLDER"]


def test_the_licence_is_asked_on_a_terminal(tmp_path, monkeypatch):
    """On a terminal, the terms are shown and a yes goes on to the download."""
    import os
    import pty

    monkeypatch.setenv("PAFPOSE_HOME", str(tmp_path))
    monkeypatch.setenv("PAFPOSE_OPENPOSE_URL", "http://127.0.0.1:9/models")
    outcomes = {}
    for answer in ("n", "yes"):
        leader, follower = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "pafpose", "models", "fetch",
                                 "openpose_mpi"], stdin=follower, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        os.close(follower)
        os.write(leader, f"{answer}\n".encode())
        _, stderr = proc.communicate(timeout=120)
        os.close(leader)
        outcomes[answer] = (proc.returncode, stderr)
    status, stderr = outcomes["n"]
    assert status == 2 and "Accept these terms and download the model? [y/N]" in stderr
    assert stderr.count("non-commercial research use only") == 2  # shown, then refused
    status, stderr = outcomes["yes"]
    assert status == 2 and "cannot download http://127.0.0.1:9/models/pose/mpi/" in stderr
