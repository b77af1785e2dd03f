"""Network inputs: content sizes, the ceiling on the network input, keypoints mapped back."""

from __future__ import annotations

import numpy as np
import pytest

from pafpose.errors import ImageTooLargeError, InputError
from pafpose.multiscale import scale_views
from pafpose.preprocess import (
    Ceiling,
    View,
    content_size,
    prepare,
    preprocess,
    to_image_coords,
)
from pafpose.presets import get_preset

EXTREME_SIZES = [(3, 40), (40, 3), (500, 2), (2, 500), (3, 2000), (2000, 3), (6000, 40),
                 (40, 6000)]


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


@pytest.mark.parametrize("preset", ["balanced", "accurate"])
def test_network_inputs_stay_under_the_ceiling(preset):
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


def test_prepare_pads_to_16_and_mirrors():
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    prepared = prepare(image, (30, 20))
    assert prepared.tensor.shape == (1, 64, 64, 3) and prepared.tensor.dtype == np.float32
    np.testing.assert_array_equal(prepared.tensor[0, :20, :30], image)
    assert not prepared.tensor[0, 20:].any() and not prepared.tensor[0, :, 30:].any()
    assert prepared.view == View((30, 20), (30, 20))
    mirrored = prepare(image, (30, 20), flip=True)
    np.testing.assert_array_equal(mirrored.tensor[0, :20, :30], image[:, ::-1])
    assert mirrored.view.flip
    seed = preprocess(np.zeros((100, 200, 3), np.uint8), (432, 368))
    assert seed.tensor.shape == (1, 368, 432, 3) and seed.content_size == (432, 368)
    assert preprocess(image, None).content_size == (30, 20)


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="resize must be"):
        content_size((640, 480), "squash", None)
    with pytest.raises(InputError, match="needs a \\(width, height\\) size"):
        content_size((640, 480), "stretch", 368)
    with pytest.raises(InputError, match="interpolation must be"):
        prepare(np.zeros((8, 8, 3), np.uint8), (16, 16), "nearest")
    with pytest.raises(InputError, match="coords must be"):
        to_image_coords(np.zeros((1, 18, 3)), (8, 8), View((8, 8), (8, 8)), "corner")
    with pytest.raises(InputError, match="ceiling must be at least 64 px"):
        Ceiling(max_side=32)
    with pytest.raises(InputError, match="max_upscale"):
        Ceiling(max_upscale=0.5)
    with pytest.raises(ImageTooLargeError, match="above the ceiling"):
        Ceiling().check((4000, 4000))
