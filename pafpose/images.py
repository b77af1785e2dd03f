"""Reading images: any bit depth and channel count to BGR uint8, a pixel limit, clear errors."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

#: Default limit on the pixels of an input image (width x height).
DEFAULT_MAX_PIXELS = 200_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm",
                            ".pgm", ".jp2"})


class ImageError(ValueError):
    """An input that cannot be used as an image; the message is one line for the user."""


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG or JPEG header without decoding, or None if unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            length = struct.unpack(">H", data[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return int(w), int(h)
            i += 2 + length
    return None


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Convert a grayscale / BGRA / 16-bit / float image to 3-channel BGR uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        scale = 255.0 if np.nanmax(image, initial=0.0) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ImageError(f"unsupported image shape {image.shape}")


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to BGR uint8, refusing images above `max_pixels`."""
    size = header_size(data)
    if size is not None:
        check_pixels(size, max_pixels)
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:].rstrip(b"\x00"):
        raise ImageError("truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError("not an image, or a damaged or unsupported image file")
    check_pixels((image.shape[1], image.shape[0]), max_pixels)
    return to_bgr8(image)


def check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    """Raise ImageError when width x height exceeds `max_pixels`."""
    w, h = size
    if w * h > max_pixels:
        raise ImageError(
            f"image is {w}x{h} ({w * h / 1e6:.1f} MP), above the pixel limit of "
            f"{max_pixels / 1e6:.1f} MP (raise it with --max-pixels)"
        )


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as BGR uint8; raise ImageError with a one-line reason on failure."""
    p = Path(path)
    if not p.exists():
        raise ImageError("no such file")
    if p.is_dir():
        raise ImageError("is a directory")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror}") from None
    if not data:
        raise ImageError("empty file")
    return decode_image(data, max_pixels)


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to their image files (sorted); keep file paths as given."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(path)
    return out
