"""End to end on real images with the real mobilenet_thin weights."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pafpose import PoseEstimator
from pafpose.tfpose import TfPoseEstimator

from .conftest import MEDIA, need

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
    estimator.inference(astronaut)  # balanced: 512x512 seen at 368x368, stride-8 maps
    assert estimator.heatmaps.shape == (19, 46, 46)
    assert estimator.pafs.shape == (38, 46, 46)
    # the background channel is high away from the person, parts are not
    assert estimator.heatmaps[18].mean() > 0.5


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


def test_tfpose_shim_matches(thin_pb, astronaut):
    seed_like = TfPoseEstimator("mobilenet_thin", target_size=(432, 368))
    humans = seed_like.inference(astronaut, resize_to_default=True, upsample_size=4.0)
    ours = PoseEstimator(preset="seed", progress=False).inference(astronaut, upsample_size=4.0)
    assert [h.body_parts.keys() for h in humans] == [h.body_parts.keys() for h in ours]
    assert seed_like.heatMat.shape == (184, 216, 19) and seed_like.pafMat.shape == (184, 216, 38)
    drawn = TfPoseEstimator.draw_humans(astronaut, humans, imgcopy=True)
    assert drawn.shape == astronaut.shape and not np.array_equal(drawn, astronaut)


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

EXTREME_SIZES = [(3, 40), (40, 3), (500, 2), (2, 500), (3, 2000), (2000, 3), (6000, 40),
                 (40, 6000)]


@pytest.mark.parametrize("preset", ["balanced", "accurate"])
def test_network_inputs_stay_under_the_ceiling(preset):
    from pafpose.presets import get_preset
    from pafpose.scales import Ceiling, scale_views

    p, ceiling = get_preset(preset), Ceiling()
    for w, h in [*EXTREME_SIZES, (1, 1), (4000, 3000), (100000, 100000)]:
        base, views = scale_views((w, h), p.resize, p.size, p.scales, p.flip, ceiling)
        for view in (base, *views):
            iw, ih = view.input_size
            assert 64 <= min(iw, ih) and max(iw, ih) <= ceiling.max_side, (w, h, view)
            assert iw * ih <= ceiling.max_pixels, (w, h, view)
            cw, ch = view.content_size  # never enlarged more than 4x
            assert cw <= max(1, round(4 * w)) and ch <= max(1, round(4 * h)), (w, h, view)
    # ordinary photos (up to ~2.7:1) keep the sizes they had before the ceiling, at every scale
    for w, h in [(640, 480), (480, 640), (1920, 1080), (4032, 1816), (640, 240)]:
        assert scale_views((w, h), p.resize, p.size, p.scales, p.flip, ceiling) == \
            scale_views((w, h), p.resize, p.size, p.scales, p.flip)


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
    humans = estimator.inference(strip)
    assert len(alone) >= 2 and len(humans) >= 1
    for person in humans:
        xs = person.keypoints[person.keypoints[:, 2] > 0, 0]
        assert ((xs > 1990) & (xs < 2650)).all()
    assert estimator.heatmaps.shape[2] * 8 <= 2560  # the network saw at most 2560 px wide


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
