"""`pafpose batch`: inputs, units, the output folder, and whole runs with the real model on
coco-dev photos and a clip of vtest.avi, on the local engine and on a local Ray cluster (two
actors): identical records, a bad file recorded, a rerun doing nothing, a worker killed with
SIGKILL mid-run leaving every input exactly once, SIGTERM keeping the finished units."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from pafpose.batch.inputs import Item, iter_items
from pafpose.batch.records import RecordWriter, read_records
from pafpose.batch.state import OutputFolder
from pafpose.batch.units import check_chunking, plan_units, video_units
from pafpose.errors import InputError, OutputError

from .conftest import COCO_DEV, MEDIA, need

CLIP_FRAMES = 12


def run(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pafpose", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def write_clip(path: Path, frames: int) -> Path:
    """The first `frames` frames of vtest.avi, written with OpenCV (MJPG)."""
    cap = cv2.VideoCapture(str(need(MEDIA / "vtest.avi")))
    fps = cap.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(frames):
        ok, image = cap.read()
        assert ok
        if writer is None:
            size = (image.shape[1], image.shape[0])
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
        writer.write(image)
    writer.release()
    cap.release()
    return path


def all_records(out: Path) -> list[dict]:
    """Every record of an output folder, sorted by input and frame."""
    records = [r for f in sorted((out / "records").iterdir()) for r in read_records(f)]
    return sorted(records, key=lambda r: (r["input"], r["frame"]))


def keys(records: list[dict]) -> list[tuple[str, int]]:
    return [(r["input"], r["frame"]) for r in records]


# -- inputs, units, the output folder (no model) ------------------------------------------


def test_inputs_folders_globs_and_manifests(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/1.jpg", "a/b/2.png", "a/b/clip.mp4", "a/notes.md", "c.jpg"):
        (tmp_path / name).write_bytes(b"x")
    manifest = tmp_path / "list.txt"
    manifest.write_text("# a comment\n\nc.jpg\nhttp://example.invalid/p.jpg\n"
                        f"{tmp_path / 'a' / 'b' / 'clip.mp4'}\n")
    notes: list[str] = []
    items = list(iter_items([tmp_path / "a", str(tmp_path / "*.jpg"), manifest,
                             str(tmp_path / "none*.png"), "missing.jpg"], notes.append))
    assert [(Path(i.name).name, i.kind) for i in items] == [
        ("1.jpg", "image"), ("2.png", "image"), ("clip.mp4", "video"),  # the folder, recursive
        ("c.jpg", "image"),  # the glob
        ("c.jpg", "image"), ("p.jpg", "image"), ("clip.mp4", "video"),  # the manifest
        ("missing.jpg", "image")]  # as given: it fails later as that input's error
    assert items[4].location == str(tmp_path / "c.jpg")  # relative to the manifest
    assert items[5].location == "http://example.invalid/p.jpg"
    assert items[-1].location == os.path.abspath("missing.jpg")
    assert notes == [f"{tmp_path / 'a'}: skipped 1 files that are neither images nor videos "
                     "(.md)", f"{tmp_path / 'none*.png'}: matched no file"]


def test_units_batch_images_keep_videos_whole_or_chunked(tmp_path):
    clip = str(write_clip(tmp_path / "clip.avi", CLIP_FRAMES))
    images = [Item(f"{n}.jpg", f"/x/{n}.jpg", "image") for n in range(5)]
    video = Item("clip.avi", clip, "video")
    units = list(plan_units([*images[:3], video, *images[3:]], batch_size=2))
    assert [(u.kind, [i.name for i in u.items]) for u in units] == [
        ("image", ["0.jpg", "1.jpg"]), ("video", ["clip.avi"]), ("image", ["2.jpg", "3.jpg"]),
        ("image", ["4.jpg"])]
    assert len({u.id for u in units}) == 4
    assert [u.id for u in plan_units([*images[:3], video, *images[3:]], 2)] == [
        u.id for u in units]  # stable ids
    chunks = list(video_units(video, 5))
    assert [(u.start, u.end) for u in chunks] == [(0, 5), (5, 10), (10, 12)]
    assert chunks[1].keys == [f"{clip}#5:10"]
    done = {"/x/1.jpg", f"{clip}#0:5"}
    left = list(plan_units([*images, video], 10, 5, is_done=done.__contains__))
    assert [(u.kind, len(u.items), u.start) for u in left] == [
        ("video", 1, 5), ("video", 1, 10), ("image", 4, 0)]
    with pytest.raises(InputError, match="multiple of --every"):
        check_chunking(10, 3)


def test_output_folder_commits_removes_leftovers_and_refuses_other_settings(tmp_path):
    out = tmp_path / "out"
    folder = OutputFolder(out, {"preset": "fast"})
    with pytest.raises(OutputError, match="another pafpose batch run"):
        OutputFolder(out, {"preset": "fast"})
    (folder.records / "u1.jsonl").write_text("{}\n")
    folder.commit("u1", "u1.jsonl", 1, [("/a.jpg", "a.jpg", None), ("/b.jpg", "b.jpg", "bad")])
    (folder.records / "u2.jsonl").write_text("{}\n")  # renamed, never committed (killed)
    (folder.records / ".u3.jsonl.123.abcd.part.jsonl").write_text("{")  # a killed write
    assert folder.is_done("/a.jpg") and folder.is_done("/b.jpg") and not folder.is_done("/c")
    assert not folder.seen("/c") and folder.seen("/c")
    folder.write_errors()
    folder.close()
    assert [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()] == [
        {"input": "b.jpg", "error": "bad"}]
    folder = OutputFolder(out, {"preset": "fast"})
    assert folder.removed == 2 and sorted(os.listdir(folder.records)) == ["u1.jsonl"]
    assert folder.retry_failed() == 1 and not folder.is_done("/b.jpg")
    folder.close()
    with pytest.raises(OutputError, match="other settings .*preset 'fast'"):
        OutputFolder(out, {"preset": "balanced"})


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_record_files_round_trip_and_discard(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    person = {"id": 3, "score": 0.5, "openpose18": [[1.0, 2.0, 0.5]] * 18,
              "coco17": [[1.0, 2.0, 0.5]] * 17, "bbox": [1.0, 2.0, 3.0, 4.0]}
    record = {"input": "a.jpg", "kind": "image", "frame": 0, "time": 0.0, "size": [4, 3],
              "people": [person], "model": "m", "preset": "p", "version": "v"}
    writer = RecordWriter(tmp_path / f"u.{fmt}", fmt)
    writer.write(record)
    assert writer.close() == tmp_path / f"u.{fmt}"
    assert read_records(tmp_path / f"u.{fmt}") == [record]
    writer = RecordWriter(tmp_path / f"v.{fmt}", fmt)
    writer.write(record)
    assert writer.close(keep=False) is None
    assert sorted(os.listdir(tmp_path)) == [f"u.{fmt}"]


# -- whole runs with the real model ---------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, thin_pb) -> list[str]:
    """8 coco-dev photos (4 in a nested folder, 4 from a manifest), a 12-frame clip of
    vtest.avi, and a damaged 'photo'."""
    photos = sorted(need(COCO_DEV / "images").glob("*.jpg"))[:8]
    root = tmp_path_factory.mktemp("corpus")
    (root / "photos" / "sub").mkdir(parents=True)
    for photo in photos[:4]:
        shutil.copy(photo, root / "photos" / "sub" / photo.name)
    (root / "list.txt").write_text("".join(f"{p}\n" for p in photos[4:]))
    write_clip(root / "clip.avi", CLIP_FRAMES)
    (root / "broken.jpg").write_bytes(b"this is not a picture")
    return [str(root / "photos"), str(root / "list.txt"), str(root / "clip.avi"),
            str(root / "broken.jpg")]


COMMON = ["--track", "--workers", "2", "--batch-size", "2"]


def check_complete(out: Path, corpus: list[str]) -> list[dict]:
    """Every input exactly once: 8 photos (frame 0), the clip's 12 frames; broken.jpg in
    errors.jsonl; no temporary file left."""
    records = all_records(out)
    photos = [r for r in records if r["kind"] == "image"]
    frames = [r for r in records if r["kind"] == "video"]
    assert len(photos) == 8 and len(set(keys(photos))) == 8
    assert [r["frame"] for r in frames] == list(range(CLIP_FRAMES))
    assert {r["input"] for r in frames} == {corpus[2]}
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert errors == [{"input": corpus[3],
                       "error": "not an image, or a damaged or unsupported image file"}]
    assert not [p for p in (out / "records").iterdir() if ".part" in p.name]
    return records


@pytest.fixture(scope="module")
def local_run(corpus, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("local") / "out"
    return out, run("batch", *corpus, "--output", out, *COMMON)


def test_local_engine_records_bad_file_and_rerun(local_run, corpus, estimator):
    out, done = local_run
    assert done.returncode == 1, done.stderr  # one input failed
    assert f"pafpose: {corpus[3]}: not an image" in done.stderr
    assert "Traceback" not in done.stderr
    assert "10 of 10 inputs done" in done.stdout
    assert "1 failed (errors.jsonl)" in done.stdout
    records = check_complete(out, corpus)
    assert {(r["model"], r["preset"]) for r in records} == {("mobilenet_thin", "balanced")}
    # The records are the estimator's: people and keypoints of a photo.
    photo = next(r for r in records if r["kind"] == "image")
    humans = estimator.inference(cv2.imread(photo["input"]))
    assert len(photo["people"]) == len(humans)
    for person, human in zip(photo["people"], humans, strict=True):
        assert np.allclose(person["openpose18"], human.keypoints, atol=0.5)
        assert len(person["coco17"]) == 17 and person["id"] is None
    ids = [p["id"] for r in records if r["kind"] == "video" for p in r["people"]]
    assert any(i is not None for i in ids)  # tracked
    # A rerun does no work: nothing planned, no file touched.
    def files() -> dict[str, int]:
        return {p.name: p.stat().st_mtime_ns for p in [*(out / "records").iterdir(),
                                                       out / "errors.jsonl"]}

    before = files()
    again = run("batch", *corpus, "--output", out, *COMMON, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "nothing to do (10 inputs done before" in again.stdout
    assert files() == before
    # Other settings into the same folder: one line, exit 2.
    other = run("batch", *corpus, "--output", out, "--preset", "fast", timeout=120)
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert "holds results made with other settings" in other.stderr


def units_committed(out: Path) -> int:
    """Units a (running) batch has committed to its output folder."""
    if not (out / "done.sqlite").exists():
        return 0
    try:
        with sqlite3.connect(f"file:{out / 'done.sqlite'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.Error:  # not created yet, or busy
        return 0


def _descendants_matching(pid: int, text: str) -> list:
    psutil = pytest.importorskip("psutil")
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if text in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def run_and_kill(args: list[object], out: Path, owner: int | None, text: str,
                 timeout: float = 240) -> tuple[subprocess.CompletedProcess, int]:
    """Start `pafpose ARGS`; once a unit is done, SIGKILL one worker process (a descendant of
    `owner`, default the run itself, whose command line holds `text`); wait for the end."""
    proc = subprocess.Popen([sys.executable, "-m", "pafpose", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = 0
    try:
        deadline = time.monotonic() + timeout
        while not killed:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no unit done in time"
            if units_committed(out):
                workers = _descendants_matching(owner or proc.pid, text)
                if workers:
                    workers[0].kill()
                    killed = workers[0].pid
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), killed


def test_local_worker_killed_midway_leaves_a_complete_output(local_run, corpus, tmp_path):
    out = tmp_path / "out"
    done, killed = run_and_kill(["batch", *corpus, "--output", out, "--track", "--workers",
                                 "2", "--batch-size", "1"], out, None, "spawn_main")
    assert killed and done.returncode == 1, done.stderr
    assert "a worker process died" in done.stderr and "Traceback" not in done.stderr
    assert check_complete(out, corpus) == all_records(local_run[0])


def stop_midway(corpus: list[str], out: Path, engine: list[object], sig: int, status: int,
                reference: Path) -> None:
    """Send `sig` once a unit is committed: exit 128 + sig, the units done kept, no temporary
    file; the same command again completes the output, every input once."""
    args = ["batch", *corpus, "--output", out, *COMMON, *engine]
    proc = subprocess.Popen([sys.executable, "-m", "pafpose", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not units_committed(out):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == status, stderr
    assert "pafpose: interrupted;" in stderr and "Traceback" not in stderr
    kept = all_records(out)
    assert 0 < len(kept) < 8 + CLIP_FRAMES
    assert not [p for p in (out / "records").iterdir() if ".part" in p.name]
    rest = run("batch", *args[1:])
    assert rest.returncode in (0, 1), rest.stderr
    assert check_complete(out, corpus) == all_records(reference)


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143)])
def test_stop_signal_keeps_finished_units_and_a_rerun_completes(local_run, corpus, tmp_path,
                                                                 sig, status):
    stop_midway(corpus, tmp_path / "out", [], sig, status, local_run[0])


def test_urls_in_a_manifest_and_video_chunks(media_server, corpus, tmp_path):
    """A manifest of URLs (one answers 404) and the clip cut into chunks of 5 frames."""
    manifest = tmp_path / "urls.lst"
    manifest.write_text(f"{media_server}/messi5.jpg\n{media_server}/nothing.jpg\n")
    out = tmp_path / "out"
    done = run("batch", manifest, corpus[2], "--output", out, "--chunk-frames", "5",
               "--workers", "1")
    assert done.returncode == 1, done.stderr
    assert "5 of 5 inputs done" in done.stdout  # 2 URLs, 3 chunks
    records = all_records(out)
    frames = [r["frame"] for r in records if r["kind"] == "video"]
    assert frames == list(range(CLIP_FRAMES))  # three chunks, every frame once
    photo = [r for r in records if r["kind"] == "image"]
    assert [r["input"] for r in photo] == [f"{media_server}/messi5.jpg"]
    assert len(photo[0]["people"]) == 4
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert errors == [{"input": f"{media_server}/nothing.jpg",
                       "error": "cannot fetch: HTTP 404 File not found"}]


def test_bad_options_are_one_line(corpus, tmp_path):
    (tmp_path / "file").write_text("x")
    for args, message in [
        (["--output", tmp_path / "file"], "is a file, not a folder"),
        (["--output", tmp_path / "o", "--chunk-frames", "3", "--every", "2"], "multiple of"),
        (["--output", tmp_path / "o", "--engine", "ray", "--address", "127.0.0.1:9"],
         "no Ray cluster answers there" if importlib.util.find_spec("ray") else "needs Ray"),
    ]:
        done = run("batch", corpus[2], *args, timeout=120)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


# -- the Ray engine, on a local cluster of 2 CPUs shared by the tests below -------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster (2 CPUs, no dashboard) started in this process; its address."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_ray_engine_gives_the_local_records(ray_cluster, local_run, corpus, tmp_path):
    out = tmp_path / "out"
    done = run("batch", *corpus, "--output", out, *COMMON, "--engine", "ray", "--address",
               ray_cluster)
    assert done.returncode == 1, done.stderr
    assert "10 of 10 inputs done" in done.stdout and "ray engine, 2 workers" in done.stdout
    assert check_complete(out, corpus) == all_records(local_run[0])
    again = run("batch", *corpus, "--output", out, *COMMON, "--engine", "ray", "--address",
                ray_cluster)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_ray_engine_stops_cleanly_on_sigterm(ray_cluster, local_run, corpus, tmp_path):
    """Ray's core worker has its own SIGTERM handler; the run's own must win."""
    stop_midway(corpus, tmp_path / "out", ["--engine", "ray", "--address", ray_cluster],
                signal.SIGTERM, 143, local_run[0])


def test_ray_actor_killed_midway_leaves_a_complete_output(ray_cluster, local_run, corpus,
                                                           tmp_path):
    out = tmp_path / "out"
    done, killed = run_and_kill(["batch", *corpus, "--output", out, "--track", "--workers",
                                 "2", "--batch-size", "1", "--engine", "ray", "--address",
                                 ray_cluster], out, os.getpid(), "MapWorker")
    assert killed and done.returncode == 1, done.stderr
    assert check_complete(out, corpus) == all_records(local_run[0])
