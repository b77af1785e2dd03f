"""End to end on real images with the real mobilenet_thin weights."""

from __future__ import annotations

import dataclasses
import threading

import cv2
import numpy as np
import pytest

from pafpose import PoseEstimator, Result
from pafpose.errors import ImageTooLargeError, InputError
from pafpose.preprocess import View

from .conftest import MEDIA, need
from .test_preprocess import EXTREME_SIZES

# Hand-labelled on the 512x512 astronaut photo (pixels): eye centres and the tip of the nose.
# The eyes are 44 px apart; the network sees the photo at 368x368 (balanced preset), where one
# output cell (stride 8) spans 11.1 x 11.1 image pixels, so a part may sit up to half a cell plus
# the labelling uncertainty (~3 px) from the label: 12 px for the face.
R_EYE, L_EYE, NOSE = (202, 103), (246, 103), (222, 125)
FACE_TOL = 12.0


def _dist(p, q) -> float:
    return float(np.hypot(p[0] - q[0], p[1] - q[1]))


def test_astronaut_one_person_face_and_neck(estimator, astronaut):
    humans = estimator.inference(astronaut)
    assert len(humans) == 1
    kp = humans[0].keypoints
    for idx, label in ((0, NOSE), (14, R_EYE), (15, L_EYE)):
        assert kp[idx, 2] > 0.3, f"part {idx} not found confidently"
        assert _dist(kp[idx], label) < FACE_TOL, (idx, kp[idx], label)
    # The neck (OpenPose: between the shoulders) lies under the face: horizontally between the
    # eyes, and below the nose by 1 to 3 eye distances (the collar ring hides the exact point).
    neck = kp[1]
    assert neck[2] > 0.3
    assert R_EYE[0] - 10 < neck[0] < L_EYE[0] + 10
    assert NOSE[1] + 44 < neck[1] < NOSE[1] + 3 * 44
    assert humans[0].image_size == (512, 512)


def test_maps_kept_and_shaped(estimator, astronaut):
    result = estimator.run(astronaut)  # balanced: 512x512 seen at 368x368, stride-8 maps
    assert result.heatmaps.shape == (19, 46, 46)
    assert result.pafs.shape == (38, 46, 46)
    # the background channel is high away from the person, parts are not
    assert result.heatmaps[18].mean() > 0.5


def test_any_image_size_and_native_resolution(estimator, astronaut):
    crop = astronaut[:300, 100:357]  # 257x300: not a multiple of 16
    humans = estimator.inference(crop, resize_to_default=False)
    assert len(humans) == 1
    nose = humans[0].keypoints[0]
    assert _dist(nose, (NOSE[0] - 100, NOSE[1])) < FACE_TOL


def test_gray_and_tiny_images(estimator, astronaut):
    assert len(estimator.inference(astronaut.mean(axis=2).astype(np.uint8))) == 1
    assert estimator.inference(np.zeros((1, 1, 3), np.uint8)) == []


def test_thread_safe_inference(estimator, astronaut):
    expected = estimator.inference(astronaut)[0].keypoints
    out: list[np.ndarray] = []

    def work() -> None:
        for _ in range(2):
            out.append(estimator.inference(astronaut)[0].keypoints)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 6 and all(np.array_equal(k, expected) for k in out)


def test_run_returns_a_result(estimator, astronaut):
    result = estimator.run(astronaut)
    assert isinstance(result, Result)
    assert [h.keypoints.tolist() for h in result.humans] == \
        [h.keypoints.tolist() for h in estimator.inference(astronaut)]
    assert result.image_size == (512, 512) and result.num_views == 1
    assert result.view == View((512, 512), (368, 368))
    assert result.heatmaps.shape == (19, 46, 46) and result.pafs.shape == (38, 46, 46)
    assert result.heatmaps.dtype == result.pafs.dtype == np.float32
    assert set(result.timings) == {"preprocess", "network", "decode", "total"}
    assert all(v >= 0 for v in result.timings.values())
    assert result.timings["total"] >= result.timings["network"] + result.timings["decode"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.humans = []  # type: ignore[misc]
    # nothing of the call is kept on the estimator
    assert not {"heatmaps", "pafs", "timings", "_clock"} & set(vars(estimator))
    tiny = estimator.run(np.zeros((1, 1, 3), np.uint8))
    assert tiny.humans == [] and tiny.heatmaps is None and tiny.pafs is None
    assert tiny.image_size == (1, 1) and tiny.timings["network"] == 0.0


def test_concurrent_runs_each_get_their_own_maps(estimator, astronaut):
    """Two images on two threads at once: each Result holds the maps of its own image."""
    import cv2

    other = cv2.imread(str(need(MEDIA / "messi5.jpg")))
    images = [astronaut, other]
    alone = [estimator.run(image) for image in images]
    assert alone[0].heatmaps.shape != alone[1].heatmaps.shape
    got: dict[int, list[Result]] = {0: [], 1: []}
    barrier = threading.Barrier(2)

    def work(i: int) -> None:
        barrier.wait()
        for _ in range(3):
            got[i].append(estimator.run(images[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in (0, 1):
        assert len(got[i]) == 3
        for result in got[i]:
            np.testing.assert_array_equal(result.heatmaps, alone[i].heatmaps)
            np.testing.assert_array_equal(result.pafs, alone[i].pafs)
            assert [h.keypoints.tolist() for h in result.humans] == \
                [h.keypoints.tolist() for h in alone[i].humans]
            assert result.image_size == alone[i].image_size


def test_multiscale_result_holds_the_fused_canvas(thin_pb, astronaut):
    est = PoseEstimator("mobilenet_thin", scales=(0.5, 1.0), flip=True, progress=False)
    result = est.run(astronaut)
    assert result.num_views == 4 and len(result.humans) == 1
    # the canvas: the scale-1 input (368) upsampled by the preset's ratio, cropped to the image
    side = 368 // 8 * est.decode_params.upsample
    assert result.heatmaps.shape == (19, side, side) and result.pafs.shape == (38, side, side)


def test_bad_settings_are_input_errors():
    with pytest.raises(InputError, match="at least one scale"):
        PoseEstimator(scales=(), progress=False)
    with pytest.raises(ImageTooLargeError):
        PoseEstimator(target_size=(99999, 99999), progress=False)


def test_local_pb_model_path(thin_pb, astronaut):
    est = PoseEstimator(thin_pb, progress=False)
    assert len(est.inference(astronaut)) == 1
    with pytest.raises(FileNotFoundError, match="neither a known name"):
        PoseEstimator("no_such_model")



def test_parts_stay_inside_the_image(estimator):
    """People cut by the frame's edge: a peak in the map cell over the edge and the padding
    still gives a part inside the image (vtest.avi frame 11 has one 4 px right of it)."""
    import cv2

    video = need(MEDIA / "vtest.avi")
    cap = cv2.VideoCapture(str(video))
    near_edge = 0
    for _ in range(20):
        ok, image = cap.read()
        assert ok
        h, w = image.shape[:2]
        for human in estimator.inference(image):
            xy = human.xy[human.conf > 0]
            assert (xy >= 0).all() and (xy[:, 0] <= w - 1).all() and (xy[:, 1] <= h - 1).all()
            near_edge += int((xy[:, 0] > w - 8).sum())
    cap.release()
    assert near_edge > 0  # the stretch does have parts at the right edge


def _pieces(humans: list, cell: float) -> int:
    """Neck-less people whose shoulder is within `cell` image pixels of the neck of a person
    who has none of their parts (what the decoder's attach step joins)."""
    count = 0
    for piece in humans:
        has = piece.conf > 0
        if piece.conf[1] > 0:
            continue
        count += any(
            host.conf[1] > 0 and not (host.conf[has] > 0).any()
            and np.hypot(*(host.xy[1] - piece.xy[s])) <= cell
            for host in humans for s in (2, 5) if has[s])
    return count


def test_small_people_keep_their_arms(estimator):
    """vtest.avi: people ~100 px tall, whose shoulder peaks sit on the neck. Without the
    attach step their arm + ear come out as extra 4-part "people"; with it they are joined to
    their bodies and no part is lost."""
    import dataclasses

    import cv2

    video = need(MEDIA / "vtest.avi")
    plain = PoseEstimator("mobilenet_thin", progress=False, decode_params=dataclasses.replace(
        estimator.decode_params, attach_cells=0.0))
    cap = cv2.VideoCapture(str(video))
    cell = 8 * 576 / 368  # one network cell in image pixels (the default height is 368)
    before = after = parts_before = parts_after = 0
    for _ in range(30):
        ok, image = cap.read()
        assert ok
        a, b = plain.inference(image), estimator.inference(image)
        before, after = before + _pieces(a, cell), after + _pieces(b, cell)
        parts_before += sum(h.num_parts for h in a)
        parts_after += sum(h.num_parts for h in b)
    cap.release()
    assert before >= 5 and after == 0
    assert parts_after == parts_before


# --------------------------------------------------------------------------------------------
# Bounded network input, blank images, input checks, EXIF orientation
# --------------------------------------------------------------------------------------------

def test_blank_and_extreme_images_give_no_people(estimator):
    for w, h in [*EXTREME_SIZES, (1, 1), (432, 368)]:
        for value in (0, 128, 255):
            humans = estimator.inference(np.full((h, w, 3), value, np.uint8))
            assert humans == [], (w, h, value, len(humans))


def test_letterboxed_wide_image_finds_the_people_of_the_photo(estimator):
    """A photo pasted into a 6000x480 strip: found as in the photo, at the right place."""
    image = need(MEDIA / "basketball1.png")
    import cv2

    photo = cv2.imread(str(image))
    alone = estimator.inference(photo)
    strip = np.zeros((480, 6000, 3), np.uint8)
    strip[:, 2000:2640] = photo
    result = estimator.run(strip)
    humans = result.humans
    assert len(alone) >= 2 and len(humans) >= 1
    for person in humans:
        xs = person.keypoints[person.keypoints[:, 2] > 0, 0]
        assert ((xs > 1990) & (xs < 2650)).all()
    assert result.heatmaps.shape[2] * 8 <= 2560  # the network saw at most 2560 px wide


def test_explicit_size_above_the_ceiling_refused():
    with pytest.raises(ValueError, match="above the ceiling"):
        PoseEstimator(target_size=(99999, 99999), progress=False)
    with pytest.raises(ValueError, match="above the ceiling"):
        PoseEstimator(target_size=(1000, 1000), max_input_pixels=500_000, progress=False)


@pytest.mark.parametrize(("value", "error"), [
    (None, TypeError), ("photo.jpg", TypeError), (b"\xff\xd8\xff", TypeError),
    ([[0, 0, 0]], TypeError), (np.zeros((8, 8, 3), object), TypeError),
    (np.zeros((8, 8, 3), complex), TypeError), (np.zeros((8, 8, 2), np.uint8), ValueError),
    (np.zeros(8, np.uint8), ValueError), (np.zeros((0, 8, 3), np.uint8), ValueError),
])
def test_inference_says_what_it_expects(estimator, value, error):
    with pytest.raises(error, match="BGR uint8 numpy array of shape HxWx3"):
        estimator.inference(value)


def test_pil_image_is_taken_as_rgb(estimator, astronaut):
    pil = pytest.importorskip("PIL.Image")
    from_pil = estimator.inference(pil.fromarray(astronaut[:, :, ::-1].copy()))
    from_bgr = estimator.inference(astronaut)
    assert len(from_pil) == len(from_bgr) == 1
    assert np.allclose(from_pil[0].keypoints, from_bgr[0].keypoints)


@pytest.mark.parametrize("orientation", [6, 8])
def test_photo_turned_by_exif_found_as_a_viewer_shows_it(estimator, tmp_path, orientation):
    """messi5.jpg stored sideways with an EXIF orientation tag: same people, same places."""
    pil = pytest.importorskip("PIL.Image")
    from pafpose.images import read_image

    source = need(MEDIA / "messi5.jpg")
    upright = pil.open(source).convert("RGB")
    # orientation 6: the viewer turns the stored pixels 90 degrees clockwise; 8: anticlockwise
    stored = upright.transpose(pil.Transpose.ROTATE_90 if orientation == 6
                               else pil.Transpose.ROTATE_270)
    exif = pil.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "sideways.jpg"
    stored.save(path, "JPEG", quality=100, exif=exif.tobytes())

    def people(image: np.ndarray) -> list:  # whole people (a marginal part-person may flicker
        return [p for p in estimator.inference(image) if p.num_parts >= 6]  # with re-encoding)

    reference = people(read_image(source))
    image = read_image(path)
    assert image.shape == (upright.height, upright.width, 3)
    turned = people(image)
    assert len(turned) == len(reference) >= 1
    for a, b in zip(sorted(turned, key=lambda p: p.keypoints[1, 0]),
                    sorted(reference, key=lambda p: p.keypoints[1, 0]), strict=True):
        both = (a.keypoints[:, 2] > 0) & (b.keypoints[:, 2] > 0)
        assert both.sum() >= 3
        # the same places (JPEG re-encoding may move an odd ambiguous part: the median)
        assert np.median(np.hypot(*(a.keypoints[both, :2] - b.keypoints[both, :2]).T)) < 3
    assert read_image(path, orient=False).shape == (upright.width, upright.height, 3)


# ---- adaptive zoom ---------------------------------------------------------------------------


def _small_people(path, fraction: float) -> np.ndarray:
    """A photo shrunk to `fraction` of its size, at the bottom of a gray canvas of its size."""
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    sw, sh = int(w * fraction), int(h * fraction)
    canvas = np.full_like(image, 120)
    canvas[h - sh:, (w - sw) // 2:(w - sw) // 2 + sw] = cv2.resize(image, (sw, sh),
                                                                    interpolation=cv2.INTER_AREA)
    return canvas


@pytest.fixture(scope="module")
def zoom_estimator(thin_pb):
    return PoseEstimator("mobilenet_thin", preset="zoom", progress=False)


def test_result_lists_the_zoomed_regions(estimator, zoom_estimator):
    image = _small_people(need(MEDIA / "messi5.jpg"), 0.3)  # a player ~110 px tall
    plain, zoomed = estimator.run(image), zoom_estimator.run(image)
    assert plain.zoom_views == () and plain.num_views == 1
    assert len(zoomed.zoom_views) >= 1
    first = len(zoom_estimator.scales)  # the first pass: scales 0.5 and 1
    assert zoomed.num_views == first + sum(z.runs for z in zoomed.zoom_views)
    h, w = image.shape[:2]
    for z in zoomed.zoom_views:
        x0, y0, x1, y1 = z.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and z.scale > 1
        # it holds the person found
        assert any(x0 <= p.keypoints[1, 0] < x1 and y0 <= p.keypoints[1, 1] < y1
                   for p in zoomed.humans)
    # the maps: the canvas (stride 4) of the same scale-1 view, cropped to the image
    assert zoomed.view == plain.view
    assert zoomed.heatmaps.shape[1:] == (plain.heatmaps.shape[1] * 2, plain.heatmaps.shape[2] * 2)
    assert zoomed.pafs.shape[1:] == zoomed.heatmaps.shape[1:]
    # a large person is not zoomed into
    large = zoom_estimator.run(cv2.imread(str(MEDIA / "basketball1.png")))
    biggest = max(large.humans, key=lambda p: np.ptp(p.keypoints[p.keypoints[:, 2] > 0, 1]))
    parts = biggest.keypoints[biggest.keypoints[:, 2] > 0]
    assert np.ptp(parts[:, 1]) > 200
    for z in large.zoom_views:
        x0, y0, x1, y1 = z.box
        inside = ((parts[:, 0] >= x0) & (parts[:, 0] < x1) & (parts[:, 1] >= y0)
                  & (parts[:, 1] < y1))
        assert not inside.all()
