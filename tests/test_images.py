"""Image reading: unusual formats are converted, bad files give one-line errors, limits hold."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from pafpose.images import ImageError, check_pixels, decode_image, header_size, read_image, to_bgr8


def _encode(image: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(
    "image",
    [
        np.full((20, 30), 200, np.uint8),  # grayscale
        np.full((20, 30, 4), 200, np.uint8),  # BGRA
        np.full((20, 30, 3), 200 * 257, np.uint16),  # 16-bit
        np.full((20, 30), 200 * 257, np.uint16),  # 16-bit gray
    ],
)
def test_png_variants_become_bgr8(image):
    out = decode_image(_encode(image, ".png"))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert int(out[5, 5, 0]) == 200


def test_float_image_in_unit_range_is_scaled():
    out = to_bgr8(np.full((4, 4, 3), 0.5, np.float32))
    assert out.dtype == np.uint8 and out[0, 0, 0] == 127


def test_header_size_png_and_jpeg():
    img = np.zeros((37, 53, 3), np.uint8)
    assert header_size(_encode(img, ".png")) == (53, 37)
    assert header_size(_encode(img, ".jpg")) == (53, 37)
    assert header_size(b"not an image") is None


def test_truncated_jpeg_refused(tmp_path):
    data = _encode(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8), ".jpg")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        read_image(path)


def test_not_an_image_and_missing(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    with pytest.raises(ImageError, match="not an image"):
        read_image(bad)
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_image(empty)


def test_pixel_limit_checked_from_header_before_decoding():
    # a PNG header claiming 20000x20000: refused without decoding the (absent) pixel data
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (20000).to_bytes(4, "big") * 2
    with pytest.raises(ImageError, match="pixel limit of 200.0 MP"):
        decode_image(header + b"\x08\x02\x00\x00\x00", max_pixels=200_000_000)
    check_pixels((20000, 20000), 400_000_000)  # within a raised limit: accepted


def _tiff_header(width: int, height: int) -> bytes:
    """A little-endian TIFF header whose only directory declares width x height (no pixels)."""
    entries = [(256, 4, 1, width), (257, 4, 1, height)]
    ifd = len(entries).to_bytes(2, "little") + b"".join(
        t.to_bytes(2, "little") + k.to_bytes(2, "little") + n.to_bytes(4, "little")
        + v.to_bytes(4, "little") for t, k, n, v in entries)
    return b"II*\x00" + (8).to_bytes(4, "little") + ifd + b"\x00" * 4


def test_header_size_webp_and_tiff():
    img = np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8)
    assert header_size(_encode(img, ".webp")) == (53, 37)
    assert header_size(_encode(img, ".tiff")) == (53, 37)
    pil = pytest.importorskip("PIL.Image")
    for fmt, options in (("WEBP", {"lossless": True}), ("WEBP", {"exif": b"Exif\x00\x00"}),
                         ("TIFF", {"compression": "tiff_lzw"})):
        buf = io.BytesIO()
        pil.fromarray(img).save(buf, fmt, **options)
        assert header_size(buf.getvalue()) == (53, 37), (fmt, options)


def test_webp_and_tiff_pixel_limit_checked_before_decoding():
    # headers that claim 30000x30000 with no pixel data: refused from the header alone
    with pytest.raises(ImageError, match="30000x30000"):
        decode_image(_tiff_header(30000, 30000), max_pixels=200_000_000)
    vp8x = (b"RIFF" + (30).to_bytes(4, "little") + b"WEBPVP8X" + (10).to_bytes(4, "little")
            + b"\x00" * 4 + (29999).to_bytes(3, "little") * 2)
    with pytest.raises(ImageError, match="30000x30000"):
        decode_image(vp8x, max_pixels=200_000_000)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applied_as_a_viewer_does(fmt, orientation):
    pil = pytest.importorskip("PIL.Image")
    ops = pytest.importorskip("PIL.ImageOps")
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :20] = (255, 255, 255)  # a white block at the stored top-left
    exif = pil.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    pil.fromarray(stored).save(buf, fmt, exif=exif.tobytes(), quality=95)
    data = buf.getvalue()
    viewer = np.asarray(ops.exif_transpose(pil.open(io.BytesIO(data))).convert("RGB"))[:, :, ::-1]
    out = decode_image(data)
    assert out.shape == viewer.shape
    assert np.abs(out.astype(int) - viewer).mean() < 3  # the same picture, JPEG noise aside
    assert decode_image(data, orient=False).shape == stored.shape  # stored pixels on request
