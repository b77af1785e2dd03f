"""Reading images: any bit depth and channel count to BGR uint8, a pixel limit, clear errors."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageError, ImageTooLargeError, InputError

#: Default limit on the pixels of an input image (width x height).
DEFAULT_MAX_PIXELS = 200_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm",
                            ".pgm", ".jp2"})


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a WebP file's first chunk (VP8, VP8L or VP8X)."""
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = struct.unpack("<I", data[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return (int.from_bytes(data[24:27], "little") + 1,
                int.from_bytes(data[27:30], "little") + 1)
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first image directory of a TIFF file."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
        found: dict[int, int] = {}
        for k in range(count):
            entry = data[ifd + 2 + 12 * k:ifd + 14 + 12 * k]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
                fmt = "H" if kind == 3 else "I"
                found[tag] = struct.unpack(order + fmt, entry[8:8 + struct.calcsize(fmt)])[0]
    except struct.error:
        return None
    return (found[256], found[257]) if len(found) == 2 else None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, WebP or TIFF header without decoding, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data)
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


_EXPECTED = "a BGR uint8 numpy array of shape HxWx3 (gray HxW and BGRA HxWx4 are accepted too)"


def as_image(image: object) -> np.ndarray:
    """Check an API input and return it as BGR uint8; a PIL image is converted from RGB.

    Raises TypeError (not an array, or an array of objects, complex numbers, strings...) or
    ValueError (wrong shape, empty) with a message saying what is expected.
    """
    if hasattr(image, "convert") and type(image).__module__.startswith("PIL."):
        return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    if not isinstance(image, np.ndarray):
        hint = ("; read files with pafpose.images.read_image(path)"
                if isinstance(image, (str, Path, bytes, bytearray)) else "")
        raise TypeError(f"expected {_EXPECTED} or a PIL image, got {type(image).__name__}{hint}")
    if image.dtype.kind not in "uif":
        raise TypeError(f"expected {_EXPECTED}, got an array of dtype {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        raise InputError(f"expected {_EXPECTED}, got shape {image.shape}")
    if image.size == 0:
        raise InputError(f"expected {_EXPECTED}, got an empty array of shape {image.shape}")
    return to_bgr8(image)


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, orient: bool = True
) -> np.ndarray:
    """Decode encoded image bytes to BGR uint8, refusing images above `max_pixels`.

    orient: turn the image as its EXIF orientation says (as a photo viewer shows it); False
    keeps the stored pixels (as COCO's annotations were made).
    """
    size = header_size(data)
    if size is not None:
        check_pixels(size, max_pixels)
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:].rstrip(b"\x00"):
        raise ImageError("truncated JPEG (no end-of-image marker)")
    # IMREAD_UNCHANGED would ignore the EXIF orientation; ANYDEPTH | ANYCOLOR keeps 16-bit and
    # gray (alpha is dropped, as to_bgr8 does) and applies it unless told to ignore it.
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
    if not orient:
        flags |= cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise ImageError("not an image, or a damaged or unsupported image file")
    check_pixels((image.shape[1], image.shape[0]), max_pixels)
    return to_bgr8(image)


def check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    """Raise ImageTooLargeError when width x height exceeds `max_pixels`."""
    w, h = size
    if w * h > max_pixels:
        raise ImageTooLargeError(
            f"image is {w}x{h} ({w * h / 1e6:.1f} MP), above the pixel limit of "
            f"{max_pixels / 1e6:.1f} MP (raise it with --max-pixels)"
        )


def read_image(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, orient: bool = True
) -> np.ndarray:
    """Read an image file as BGR uint8 (EXIF orientation applied unless `orient` is False);
    raise ImageError with a one-line reason on failure."""
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
    return decode_image(data, max_pixels, orient)


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to their image files (sorted); keep file paths as given."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(path)
    return out
