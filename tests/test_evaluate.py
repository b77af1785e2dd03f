"""COCO evaluation, presets, multi-scale and flip: real model, real COCO images, pycocotools."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pafpose import PoseEstimator
from pafpose.decode import decode
from pafpose.evaluate import STAT_NAMES, evaluate_coco, score_results
from pafpose.presets import PRESETS, Preset, get_preset
from pafpose.scales import (
    View,
    canvas_size,
    content_size,
    cubic_matrix,
    flip_maps,
    fuse,
    prepare,
    resample,
    scale_views,
    to_image_coords,
)
from pafpose.skeleton import FLIP_PARTS, LIMB_PAF_CHANNELS, LIMBS

from .conftest import COCO_DEV, MEDIA, need

COCO_JSON = COCO_DEV / "person_keypoints.json"
IMAGES = COCO_DEV / "images"
#: The first 5 images (by id) of coco-dev hold 9 people with keypoints.
FEW = 5


@pytest.fixture(scope="module")
def seed_estimator(thin_pb) -> PoseEstimator:
    """The seed pipeline exactly (432x368 stretched, area x4, 25x25 smoothing)."""
    return PoseEstimator("mobilenet_thin", preset="seed", progress=False)


def _pycocotools(coco_json, results_file, image_ids) -> np.ndarray:
    """pycocotools' own steps, as its documentation shows them."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_json))
        ev = COCOeval(gt, gt.loadRes(str(results_file)), "keypoints")
        ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def _first_ids(n: int) -> list[int]:
    return sorted(im["id"] for im in json.loads(COCO_JSON.read_text())["images"])[:n]


# ---- evaluation --------------------------------------------------------------------------


def test_eval_few_images_equals_pycocotools(estimator, tmp_path):
    need(COCO_JSON)
    result = evaluate_coco(estimator, COCO_JSON, IMAGES, limit=FEW, progress=False)
    ids = _first_ids(FEW)
    assert result.images == result.total == FEW and not result.interrupted
    assert len(result.times_ms) == FEW and result.median_ms > 0
    assert result.results and {r["image_id"] for r in result.results} <= set(ids)
    assert 0.1 < result.stats["AP"] <= 1.0  # people are found in these images
    # the same detections, written out by hand, scored by pycocotools itself
    rows = [{"image_id": r["image_id"], "category_id": 1, "keypoints": r["keypoints"],
             "score": r["score"]} for r in result.results]
    path = tmp_path / "hand.json"
    path.write_text(json.dumps(rows))
    expected = _pycocotools(COCO_JSON, path, ids)
    assert [result.stats[n] for n in STAT_NAMES] == pytest.approx(list(expected), abs=1e-12)


def test_score_results_of_handwritten_ground_truth(tmp_path):
    """Results copied from the annotations score AP 1; moved by 10 px they score less."""
    need(COCO_JSON)
    doc = json.loads(COCO_JSON.read_text())
    ids = _first_ids(FEW)
    people = [a for a in doc["annotations"]
              if a["image_id"] in ids and a["num_keypoints"] > 0 and not a["iscrowd"]]
    exact = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
              "score": 1.0} for a in people]
    assert score_results(COCO_JSON, exact, ids)["AP"] == pytest.approx(1.0)
    moved = [dict(r, keypoints=[v + 10 if i % 3 < 2 and r["keypoints"][i - i % 3 + 2] else v
                                for i, v in enumerate(r["keypoints"])]) for r in exact]
    path = tmp_path / "moved.json"
    path.write_text(json.dumps(moved))
    stats = score_results(COCO_JSON, moved, ids)
    assert stats["AP"] < 0.9
    assert [stats[n] for n in STAT_NAMES] == pytest.approx(
        list(_pycocotools(COCO_JSON, path, ids)), abs=1e-12)


def test_eval_cli_prints_figures_and_writes_results(seed_estimator, tmp_path):
    need(COCO_JSON)
    out = tmp_path / "sub" / "results.json"
    out.parent.mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "pafpose", "eval", "--coco-json", str(COCO_JSON), "--images",
         str(IMAGES), "--preset", "seed", "--limit", "3", "--results-json", str(out)],
        capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    expected = evaluate_coco(seed_estimator, COCO_JSON, IMAGES, limit=3, progress=False)
    assert json.loads(out.read_text()) == expected.results
    assert all(isinstance(v, int) for r in expected.results for v in r["keypoints"])  # seed: ints
    first, second = res.stdout.splitlines()
    assert first.split() == [w for n in ("AP", "AP50", "AP75", "APm", "APl", "AR")
                             for w in (n, f"{expected.stats[n]:.3f}")]
    assert second.startswith("3 images, ") and "ms per image" in second
    assert "eval" in res.stderr  # the progress bar
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]  # no temporary left


@pytest.mark.parametrize("args, message", [
    (["--coco-json", "MISSING.json"], "no such file"),
    (["--limit", "0"], "--limit: expected an image count from 1"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--scales", "1,x"], "expected scales"),
])
def test_eval_cli_bad_input_one_line(tmp_path, args, message):
    need(COCO_JSON)
    base = {"--coco-json": str(COCO_JSON), "--images": str(IMAGES)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value.replace("MISSING", str(tmp_path / "missing"))
    out = tmp_path / "r.json"
    argv = [x for kv in base.items() for x in kv] + ["--results-json", str(out)]
    res = subprocess.run([sys.executable, "-m", "pafpose", "eval", *argv],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


@pytest.mark.parametrize("sig, status", [pytest.param(signal.SIGINT, 130, id="SIGINT"),
                                         pytest.param(signal.SIGTERM, 143, id="SIGTERM")])
def test_eval_cli_ctrl_c_keeps_what_was_finished(thin_pb, tmp_path, sig, status):
    need(COCO_JSON)
    out = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pafpose", "eval", "--coco-json", str(COCO_JSON), "--images",
         str(IMAGES), "--results-json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while " 2/84 " not in seen and proc.poll() is None:  # the bar has counted two images
        seen += proc.stderr.read(1)
    proc.send_signal(sig)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == status
    assert "interrupted: scored on" in stdout and stdout.startswith("AP ")
    done = int(stdout.split("scored on ")[1].split()[0])
    assert 2 <= done < 84
    results = json.loads(out.read_text())
    assert {r["image_id"] for r in results} <= set(_first_ids(done))
    assert [p.name for p in tmp_path.iterdir()] == ["partial.json"]


def test_predict_cli_scales_and_flip(tmp_path):
    image = need(MEDIA / "basketball1.png")
    res = subprocess.run(
        [sys.executable, "-m", "pafpose", "predict", str(image), "--scales", "0.5,1",
         "--flip", "--json-output", "-"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    people = [np.array(p["pose_keypoints_2d"]).reshape(18, 3)
              for p in json.loads(res.stdout)[0]["people"]]
    xs = [k[k[:, 2] > 0, 0] for k in people]
    assert any(len(x) >= 4 and x.max() < 200 for x in xs)  # the two players (see test_cli)
    assert any(len(x) >= 4 and x.min() > 430 for x in xs)


def test_eval_rejects_a_file_that_is_not_coco(estimator, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": 3}')
    with pytest.raises(ValueError, match="not a COCO annotation file"):
        evaluate_coco(estimator, bad, tmp_path)


# ---- accuracy on the development set (each runs the whole set once) -----------------------


def test_seed_parity_r4(seed_estimator):
    """The seed's own code scores AP 0.217 on coco-dev at 432x368, upsample 4."""
    need(COCO_JSON)
    result = evaluate_coco(seed_estimator, COCO_JSON, IMAGES, progress=False)
    assert result.images == 84
    assert abs(result.stats["AP"] - 0.217) <= 0.01, result.stats


def test_balanced_is_the_default_and_meets_its_target(estimator):
    """Same weights, same cost class, better decoding: AP >= 0.27 (the seed: 0.217)."""
    need(COCO_JSON)
    assert estimator.preset.name == "balanced"
    result = evaluate_coco(estimator, COCO_JSON, IMAGES, progress=False)
    assert result.stats["AP"] >= 0.27, result.stats


def test_balanced_input_area_matches_the_seed():
    """The aspect-preserving network input keeps the seed's 432x368 area within 20%."""
    images = json.loads(need(COCO_JSON).read_text())["images"]
    p = PRESETS["balanced"]
    areas = [np.prod(View((im["width"], im["height"]),
                          content_size((im["width"], im["height"]), p.resize, p.size)).input_size)
             for im in images]
    assert 0.8 <= np.mean(areas) / (432 * 368) <= 1.2


@pytest.fixture(scope="module")
def accurate_estimator(thin_pb) -> PoseEstimator:
    """Four scales (network heights 184, 368, 552, 736) and the mirrored image."""
    return PoseEstimator("mobilenet_thin", preset="accurate", progress=False)


def test_accurate_meets_its_target(accurate_estimator):
    """AP >= 0.36 on the whole development set."""
    need(COCO_JSON)
    result = evaluate_coco(accurate_estimator, COCO_JSON, IMAGES, progress=False)
    assert result.stats["AP"] >= 0.36, result.stats


def test_accurate_beats_balanced_on_a_few_images(accurate_estimator, estimator):
    """The cheap, always-run check of the accurate preset: the first 5 images (9 people)."""
    need(COCO_JSON)
    accurate = evaluate_coco(accurate_estimator, COCO_JSON, IMAGES, limit=FEW, progress=False)
    balanced = evaluate_coco(estimator, COCO_JSON, IMAGES, limit=FEW, progress=False)
    assert accurate.stats["AP"] > balanced.stats["AP"] + 0.03, (accurate.stats, balanced.stats)
    assert accurate.stats["AR"] > balanced.stats["AR"]


# ---- multi-scale and flip on real maps -----------------------------------------------------


def _mirror(humans, width):
    """OpenPose-18 keypoints of people as seen in the mirrored image, sorted by nose x."""
    out = []
    for h in humans:
        k = h.keypoints[list(FLIP_PARTS)].copy()
        k[:, 0] = np.where(k[:, 2] > 0, width - 1 - k[:, 0], 0)
        out.append(k)
    return out


@pytest.mark.parametrize("flip, tol", [(True, 0.05), (False, 11.0)])
def test_flipped_image_gives_mirrored_people(thin_pb, astronaut, flip, tol):
    """With flip averaging the result is mirror-symmetric by construction (to float
    rounding); without it the network itself decides: its confident parts agree within a
    stride-8 cell of the input (8 x 512/368 = 11 image pixels)."""
    est = PoseEstimator("mobilenet_thin", flip=flip, progress=False)
    plain = est.inference(astronaut)
    mirrored = est.inference(np.ascontiguousarray(astronaut[:, ::-1]))
    assert len(plain) == len(mirrored) == 1
    want = _mirror(mirrored, astronaut.shape[1])[0]
    got = plain[0].keypoints
    both = (got[:, 2] > 0) & (want[:, 2] > 0)
    assert both.sum() >= 8 and (got[:, 2] > 0).sum() - both.sum() <= 1
    sure = both if flip else both & (got[:, 2] > 0.3) & (want[:, 2] > 0.3)
    assert sure.sum() >= 6
    assert np.abs(got[sure, :2] - want[sure, :2]).max() <= tol
    assert np.isclose(plain[0].score, mirrored[0].score, atol=0.05 if flip else 0.2)


def test_one_scale_on_the_canvas_equals_single_scale(estimator, astronaut):
    """Resampling one view onto the canvas is the decoder's cubic upsampling, exactly."""
    single = estimator.inference(astronaut)
    image_size = (astronaut.shape[1], astronaut.shape[0])
    p = estimator.preset
    base, views = scale_views(image_size, p.resize, p.size, (1.0,), False)
    assert views == [base]
    maps = estimator.network(prepare(astronaut, base.content_size, p.interpolation))
    canvas = canvas_size(base, estimator.decode_params.upsample)
    heat, paf = fuse([maps], views, base, canvas)
    poses = decode(heat, paf, dataclasses.replace(estimator.decode_params, upsample=1.0))
    kp = to_image_coords(poses.keypoints, poses.map_size, base, p.coords)
    assert len(kp) == len(single) == 1
    np.testing.assert_allclose(kp[0], single[0].keypoints, atol=1e-3)
    # and through the estimator: two identical scales take the multi-view path, same people
    twice = PoseEstimator("mobilenet_thin", scales=(1.0, 1.0), progress=False)
    np.testing.assert_allclose(twice.inference(astronaut)[0].keypoints, single[0].keypoints,
                               atol=1e-3)
    assert twice.heatmaps.shape[1:] == (92, 92)  # the canvas: 368 / 4, cropped to the image


def test_multiscale_and_flip_find_the_astronaut(thin_pb, astronaut):
    est = PoseEstimator("mobilenet_thin", scales=(0.5, 1.0, 1.5), flip=True, progress=False)
    humans = est.inference(astronaut)
    assert len(humans) == 1
    nose, reye, leye = humans[0].keypoints[[0, 14, 15]]
    assert np.hypot(*(nose[:2] - (222, 125))) < 10
    assert reye[0] < nose[0] < leye[0]


# ---- unit tests on synthetic input ---------------------------------------------------------


@pytest.mark.parametrize("shape, r", [((7, 9), 2), ((5, 6), 4), ((4, 3), 3)])
def test_cubic_matrix_is_cv2_resize(shape, r):
    rng = np.random.default_rng(0)
    src = rng.random(shape, dtype=np.float32)
    h, w = shape
    ay = cubic_matrix((np.arange(h * r) + 0.5) / r - 0.5, h)
    ax = cubic_matrix((np.arange(w * r) + 0.5) / r - 0.5, w)
    ref = cv2.resize(src, (w * r, h * r), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(ay @ src @ ax.T, ref, atol=1e-5)


def test_flip_maps_swaps_sides_and_negates_x():
    heat = np.zeros((19, 4, 10), np.float32)
    pafs = np.zeros((38, 4, 10), np.float32)
    heat[2, 1, 3] = 1.0  # a right shoulder at column 3
    heat[18] = 0.5
    cx, cy = LIMB_PAF_CHANNELS[LIMBS.index((1, 2))]  # neck -> right shoulder
    pafs[cx, 1, 3], pafs[cy, 1, 3] = -0.6, 0.8
    fh, fp = flip_maps(heat, pafs)
    assert fh[5, 1, 6] == 1.0 and fh[2].sum() == 0  # now a left shoulder at column 6
    np.testing.assert_array_equal(fh[18], heat[18])
    mx, my = LIMB_PAF_CHANNELS[LIMBS.index((1, 5))]  # neck -> left shoulder
    assert (fp[mx, 1, 6], fp[my, 1, 6]) == (0.6, 0.8)
    assert np.count_nonzero(fp) == 2
    back_h, back_p = flip_maps(fh, fp)
    np.testing.assert_array_equal(back_h, heat)
    np.testing.assert_array_equal(back_p, pafs)


def test_resample_of_a_mirrored_view_mirrors_back():
    view = View((64, 32), (64, 32))
    maps = np.random.default_rng(1).random((57, 4, 8), dtype=np.float32)
    flipped = dataclasses.replace(view, flip=True)
    out = resample(maps[:, :, ::-1], flipped, view, (8, 4))
    np.testing.assert_allclose(out, maps, atol=1e-6)
    # a perfectly mirror-equivariant network: the mirrored image's maps are flip_maps(maps)
    mirrored = np.concatenate(flip_maps(maps[:19], maps[19:]))
    heat, paf = fuse([maps, mirrored], [view, flipped], view, (8, 4))
    np.testing.assert_allclose(np.concatenate([heat, paf]), maps, atol=1e-6)


def test_coordinates_half_pixel_and_seed():
    view = View((100, 50), (50, 25))  # image shrunk by 2, padded to 64x64 (the minimum)
    kp = np.zeros((1, 18, 3), np.float32)
    kp[0, 0] = (3.0, 2.0, 0.9)  # map pixel (3, 2) on a 4x map of stride 8: 2 input px
    out = to_image_coords(kp, (32, 32), view, "center")
    # centre of map pixel 3 = input 2 * 3.5 = 7 (continuous) = image 14, index 13.5
    assert tuple(out[0, 0]) == pytest.approx((13.5, 9.5, 0.9))
    assert tuple(to_image_coords(kp, (32, 32), view, "seed")[0, 0]) == (12.0, 8.0, 0.9)
    assert not to_image_coords(kp, (32, 32), view)[0, 1].any()  # missing parts stay 0


def test_content_sizes_and_views():
    assert content_size((640, 480), "stretch", (432, 368)) == (432, 368)
    assert content_size((640, 480), "height", 368) == (491, 368)
    assert content_size((640, 480), "height", 368, 0.5) == (245, 184)
    assert content_size((640, 480), "native", None, 2.0) == (1280, 960)
    assert View((640, 480), (491, 368)).input_size == (496, 368)
    base, views = scale_views((640, 480), "height", 368, (0.5, 2.0), True)
    assert base.content_size == (491, 368)
    assert [(v.content_size[1], v.flip) for v in views] == [
        (184, False), (184, True), (736, False), (736, True)]
    with pytest.raises(ValueError, match="scales must be positive"):
        scale_views((640, 480), "height", 368, (0.0,), False)


def test_presets_are_data_and_explicit_arguments_win(thin_pb, astronaut):
    assert {"seed", "balanced", "accurate"} <= set(PRESETS)
    seed = get_preset("seed")
    assert (seed.resize, seed.size, seed.coords, seed.round_coco) == (
        "stretch", (432, 368), "seed", True)
    assert get_preset(seed) is seed
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("fastest")
    with pytest.raises(ValueError, match="resize must be"):
        Preset("x", "squash", None)
    est = PoseEstimator("mobilenet_thin", (320, 240), preset="accurate", upsample=3,
                        scales=[1], flip=False, progress=False)
    assert est.target_size == (320, 240) and est.decode_params.upsample == 3.0
    assert est.scales == (1.0,) and est.flip is False
    est.inference(astronaut)
    assert est.heatmaps.shape == (19, 30, 40)  # stretched to 320x240: stride-8 maps
    native = PoseEstimator("mobilenet_thin", (0, 0), progress=False)
    native.inference(astronaut[:200, :300])
    assert native.heatmaps.shape == (19, 25, 38)
