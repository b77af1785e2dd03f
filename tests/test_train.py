"""Training: COCO targets, loss going down, DDP, resume, ONNX export (the networks and the
seed's weights in PyTorch are in test_networks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pafpose.skeleton import LIMB_PAF_CHANNELS, LIMBS, NUM_PARTS
from pafpose.train.data import (
    AugmentConfig,
    CocoPoseDataset,
    coco_paths,
    flip_keypoints,
    flip_maps,
    make_targets,
)

from .conftest import COCO_DEV, ROOT, SHARED, need

#: An image of coco-dev with a crowd region and unannotated people (index among those with people).
CROWD_IMAGE_ID = 174375


def _torch():
    return pytest.importorskip("torch", reason="PyTorch not installed (pip install torch, "
                                               "see DEVELOPERS.md)")


def _run_maps(net, image_nhwc: np.ndarray) -> np.ndarray:
    """The last stage's maps of a PyTorch network as NHWC numpy, for an NHWC uint8/float batch."""
    torch = _torch()
    with torch.no_grad():
        x = torch.from_numpy(image_nhwc.astype(np.float32)).permute(0, 3, 1, 2)
        return net.eval()(x)[-1].permute(0, 2, 3, 1).numpy()


def _config(tmp: Path, **kw):
    from pafpose.train.loop import TrainConfig

    base = dict(coco_dir=str(COCO_DEV), output=str(tmp), workers=0, val_every=-1, log_every=1,
                progress=False, warmup_steps=0, schedule="constant", device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _dataset(**kw) -> CocoPoseDataset:
    ann, images = coco_paths(need(COCO_DEV), "train2017")
    return CocoPoseDataset(ann, images, **kw)


# --------------------------------------------------------------------------- no PyTorch needed


def test_import_and_cli_do_not_need_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None; import pafpose, pafpose.cli, "
            "pafpose.train.data; from pafpose.cli import main; "
            "sys.exit(main(['train', '--coco-dir', '.']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "pafpose: error: training needs PyTorch: pip install '.[train]' in the pafpose checkout "
        "(see DEVELOPERS.md)"]


def test_targets_of_one_limb() -> None:
    # One person with a horizontal right upper arm (RShoulder -> RElbow) in a 64x32 input.
    kp = np.zeros((1, NUM_PARTS, 3), np.float32)
    kp[0, 2] = (11.5, 19.5, 2)  # map cell (2, 1)
    kp[0, 3] = (43.5, 19.5, 2)  # map cell (2, 5)
    heat, paf = make_targets(kp, (64, 32))
    assert heat.shape == (19, 4, 8) and paf.shape == (38, 4, 8)
    assert heat[2, 2, 1] == pytest.approx(1.0) and heat[3, 2, 5] == pytest.approx(1.0)
    assert heat[2].argmax() == 2 * 8 + 1
    np.testing.assert_allclose(heat[18], 1 - heat[:18].max(axis=0), atol=1e-6)
    cx, cy = LIMB_PAF_CHANNELS[LIMBS.index((2, 3))]
    # Unit vector +x on the segment's cells (and within the limb width of it), 0 elsewhere.
    np.testing.assert_allclose(paf[cx, 2, 1:6], 1.0)
    np.testing.assert_allclose(paf[cy], 0.0)
    assert paf[cx, 0].max() == 0 and paf[cx, 2, 7] == 0
    others = [c for pair in LIMB_PAF_CHANNELS if pair != (cx, cy) for c in pair]
    assert not paf[others].any()


def test_flipped_targets_equal_flipped_maps() -> None:
    ds = _dataset(input_size=(256, 192), augment=AugmentConfig.none())
    for index in range(4):
        s = ds.sample(index)
        assert len(s.keypoints)
        mirrored = flip_keypoints(s.keypoints, 256)
        heat_f, paf_f = make_targets(mirrored, (256, 192))
        heat_m, paf_m = flip_maps(s.heat, s.paf)
        np.testing.assert_allclose(heat_m, heat_f, atol=1e-5)
        np.testing.assert_allclose(paf_m, paf_f, atol=1e-5)


def test_flip_augmentation_swaps_left_and_right() -> None:
    plain = _dataset(input_size=(256, 192), augment=AugmentConfig.none())
    flip = _dataset(input_size=(256, 192), augment=AugmentConfig(1, 1, 0, 0, flip_prob=1.0))
    a, b = plain.sample(1), flip.sample(1)
    np.testing.assert_allclose(b.keypoints, flip_keypoints(a.keypoints, 256), atol=1e-3)
    np.testing.assert_array_equal(b.image, a.image[:, ::-1])
    # A right shoulder of the plain sample is the mirrored sample's left shoulder.
    person = a.keypoints[0]
    if person[2, 2] > 0:
        assert b.keypoints[0, 5, 0] == pytest.approx(255 - person[2, 0], abs=1e-3)


def test_mask_ignores_crowd_and_unannotated_people() -> None:
    ds = _dataset(input_size=(432, 368), augment=AugmentConfig.none())
    index = ds.image_ids.index(CROWD_IMAGE_ID)
    s = ds.sample(index)
    # The crowd of spectators (one crowd region, 9 people without keypoints) is ignored...
    assert 0.05 < (s.mask == 0).mean() < 0.5
    # ...while the annotated people stay supervised (a few keypoints touch the ignored people).
    cells = [s.mask[0, int(y) // 8, int(x) // 8] for x, y, v in s.keypoints.reshape(-1, 3)
             if v > 0]
    assert len(cells) > 50 and np.mean(cells) > 0.9
    assert _dataset(input_size=(432, 368), augment=AugmentConfig.none()).sample(0).mask.all()
    # The neck is the shoulders' midpoint.
    for person in s.keypoints:
        if person[2, 2] > 0 and person[5, 2] > 0:
            np.testing.assert_allclose(person[1, :2], (person[2, :2] + person[5, :2]) / 2,
                                       atol=1e-3)
    # Augmented samples are a function of (seed, epoch, index) only.
    aug = _dataset(input_size=(128, 128), seed=3)
    np.testing.assert_array_equal(aug[len(aug) + 2]["image"], aug[len(aug) + 2]["image"])
    assert not np.array_equal(aug[2]["image"], aug[len(aug) + 2]["image"])


def test_train_sample_command_writes_a_picture(tmp_path: Path) -> None:
    from pafpose.cli import main

    out = tmp_path / "sample.png"
    assert main(["train-sample", "--coco-dir", str(need(COCO_DEV)), "--input", "256x192",
                 "--index", "2", "--output", str(out)]) == 0
    picture = cv2.imread(str(out))
    assert picture.shape == (384, 512, 3)
    assert main(["train-sample", "--coco-dir", str(COCO_DEV), "--input", "100x100",
                 "--output", str(tmp_path / "bad.png")]) == 2
    assert not (tmp_path / "bad.png").exists()


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, thin_pb):
    """mobilenet_thin fine-tuned from the seed's weights on 4 coco-dev images, 5 steps."""
    _torch()
    from pafpose.train.loop import train

    need(COCO_DEV)
    out = tmp_path_factory.mktemp("finetune")
    cfg = _config(out, model="mobilenet_thin", weights="seed", input_size=(128, 128),
                  batch_size=4, steps=5, train_limit=4, augment=False, val_every=0, val_limit=3,
                  val_split="val2017")
    return train(cfg), out


def test_finetune_from_seed_weights_lowers_the_loss(finetuned) -> None:
    result, out = finetuned
    losses = [h["loss"] for h in result.history]
    # The same 4 unaugmented images every step: loss[k] is measured before update k.
    assert len(losses) == 5 and losses[-1] < 0.9 * losses[0], losses
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,lr,loss") and len(rows) == 6
    val = (out / "val.csv").read_text().splitlines()
    assert val[0].startswith("step,AP,AP50") and len(val) == 2
    assert result.validations[0]["images"] == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 5 and len(summary["rank_digests"]) == 1


def test_scratch_training_overfits_four_images(tmp_path: Path) -> None:
    _torch()
    from pafpose.train.loop import train

    need(COCO_DEV)
    cfg = _config(tmp_path, model="mobilenet_v2_small", stages=2, input_size=(64, 64),
                  batch_size=4, steps=16, lr=3e-3, train_limit=4, augment=False, save_every=0)
    result = train(cfg)
    first, last = result.history[0]["loss"], result.history[-1]["loss"]
    assert last <= 0.5 * first, (first, last)


def test_export_round_trip_and_inference(finetuned, tmp_path: Path, astronaut) -> None:
    _torch()
    import onnxruntime as ort

    from pafpose import PoseEstimator
    from pafpose.cli import main
    from pafpose.train.export import network_from_checkpoint

    _, out = finetuned
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", str(out / "last.pt"), "--output", str(onnx_path)]) == 0
    net = network_from_checkpoint(out / "last.pt")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert sess.get_outputs()[0].name == "Openpose/concat_stage7"
    rng = np.random.default_rng(0)
    for h, w in ((128, 128), (176, 240)):  # exported at 128x128; height and width are dynamic
        x = rng.uniform(0, 255, (1, h, w, 3)).astype(np.float32)
        (onnx_out,) = sess.run(None, {"image": x})
        assert onnx_out.shape == (1, h // 8, w // 8, 57)
        # Same float32 graph in two runtimes: ~1e-5; a layout or layer error is >= 1e-2.
        assert float(np.abs(onnx_out - _run_maps(net, x)).max()) <= 1e-4
    humans = PoseEstimator(onnx_path, target_size=(432, 368), progress=False)(astronaut)
    assert isinstance(humans, list)
    assert main(["predict", str(need(SHARED / "media" / "messi5.jpg")), "--model",
                 str(onnx_path), "--json-output", str(tmp_path / "out.json")]) == 0
    assert json.loads((tmp_path / "out.json").read_text())
    bad = tmp_path / "not_a_checkpoint.pt"
    bad.write_bytes(b"junk")
    assert main(["export", str(bad), "--output", str(tmp_path / "x.onnx")]) == 2
    assert not (tmp_path / "x.onnx").exists()


def test_resume_continues_identically(tmp_path: Path) -> None:
    torch = _torch()
    from pafpose.train.export import load_checkpoint
    from pafpose.train.loop import train

    need(COCO_DEV)
    common = dict(model="mobilenet_v2_small", stages=1, input_size=(64, 64), batch_size=2,
                  train_limit=4, lr=1e-3, warmup_steps=3, save_every=0)
    straight = train(_config(tmp_path / "a", steps=5, **common))
    first = train(_config(tmp_path / "b", steps=3, **common))
    assert first.step == 3
    resumed = train(_config(tmp_path / "b", steps=5, resume=True, **common))
    assert [h["step"] for h in resumed.history] == [4, 5]
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history[3:]]
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 5
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 5


def test_ddp_two_processes_hold_identical_weights(tmp_path: Path) -> None:
    _torch()
    need(COCO_DEV)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "pafpose", "train", "--coco-dir", str(COCO_DEV), "--model",
           "mobilenet_v2_small", "--stages", "1", "--input", "64x64", "--batch-size", "2",
           "--steps", "3", "--workers", "0", "--train-limit", "8", "--val-every", "-1",
           "--log-every", "1", "--device", "cpu", "--output", str(out), "--lr", "1e-3",
           "--warmup-steps", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 3
    digests = summary["rank_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert proc.stdout.count("weights identical on every rank") == 1  # only rank 0 reports
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 4  # header + 3 steps, written by rank 0 only
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "log.csv", "summary.json"]


def test_ctrl_c_keeps_the_finished_steps_and_resume_goes_on(tmp_path: Path) -> None:
    _torch()
    import signal
    import time

    from pafpose.train.export import load_checkpoint

    need(COCO_DEV)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pafpose", "train", "--coco-dir", str(COCO_DEV), "--model",
           "mobilenet_v2_small", "--stages", "1", "--input", "64x64", "--batch-size", "2",
           "--steps", "100000", "--workers", "0", "--train-limit", "4", "--val-every", "-1",
           "--log-every", "1", "--save-every", "0", "--device", "cpu", "--output", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 240
        log = out / "log.csv"
        while time.monotonic() < deadline and proc.poll() is None:
            if log.is_file() and len(log.read_text().splitlines()) >= 3:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; step" in err and "Traceback" not in err
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["step"] >= 2 and ckpt["scheduler"]["last_epoch"] == ckpt["step"]
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
