"""Preparing any image of a digit the way MNIST's digits were prepared.

MNIST: white ink on black, the digit's bounding box scaled (anti-aliased, aspect kept) to fit
20x20, then placed in a 28x28 field so that its centre of mass is at the centre. A photo of a
written digit or a drawing on a white canvas is none of these; `prepare` makes it so. The CLI,
the HTTP API and the draw-a-digit page all call this one function.

Steps: first frame, alpha composited onto a background the ink contrasts with, grayscale;
polarity from the border (a light border means dark ink: invert); background level removed and
contrast stretched; faint noise dropped; crop to the ink's bounding box; fit in 20x20; shift the
centre of mass to (14, 14).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitnet.errors import DigitnetError
from digitnet.settings import FIT, SIDE

MAX_PIXELS = 40_000_000
WORKING_SIDE = 512  # larger images are reduced first: the digit ends up 20 pixels tall anyway
MIN_CONTRAST = 24  # grey levels between background and ink below which the image counts as blank
NOISE_FLOOR = 0.15  # after stretching, intensities below this share of the ink's are background
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageError(DigitnetError):
    """An image cannot be read, is too large, or holds no digit."""


@dataclass
class PreparedDigit:
    pixels: np.ndarray  # uint8 (28, 28), white ink on black, as MNIST
    inverted: bool  # True when the source was dark ink on a light background


def open_image(source, name: str = "image", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open a path, bytes or file object as a Pillow image, checking its size before decoding."""
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    try:
        image = Image.open(source)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: image is far larger than the {max_pixels // 1_000_000} MP limit") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        reason = "not an image Pillow can read" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise ImageError(f"{name}: {reason}; use PNG, JPEG, BMP, GIF, WebP or TIFF") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} is {width * height / 1e6:.0f} MP, more than the "
                         f"{max_pixels // 1_000_000} MP limit; downscale it first")
    if width == 0 or height == 0:
        raise ImageError(f"{name}: image has no pixels")
    try:
        image.seek(0)  # first frame of an animation
        image.load()
    except (OSError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: truncated or corrupt image data ({exc})") from None
    return image


def to_grayscale(image: Image.Image) -> np.ndarray:
    """float32 (H, W) in 0..255. Transparent pixels take a background the ink contrasts with."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float32)
        span = float(array.max() - array.min()) or 1.0
        return (array - array.min()) * (255.0 / span)
    if image.mode == "P" or "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        gray = np.asarray(rgba.convert("L"), dtype=np.float32)
        if alpha.min() < 1.0:
            opaque = alpha > 0.5
            ink_is_dark = opaque.any() and float(np.median(gray[opaque])) < 128
            background = 255.0 if ink_is_dark else 0.0
            return gray * alpha + background * (1.0 - alpha)
        return gray
    return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32)


def _reduce(image: Image.Image) -> Image.Image:
    if max(image.size) > WORKING_SIDE:
        image = image.copy()
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    return image


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def ink_map(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """White-on-black ink intensities in 0..1 and whether the source had to be inverted."""
    gray = np.array(gray, dtype=np.float32)  # a private copy: everything below works in place
    inverted = float(np.median(_border(gray))) > 127.5
    if inverted:
        np.subtract(255.0, gray, out=gray)
    background = float(np.median(_border(gray)))
    peak = float(gray.max())
    if peak - background < MIN_CONTRAST:
        raise ImageError("no digit found: the image is blank or has too little contrast")
    gray -= background
    gray *= 1.0 / (peak - background)
    np.clip(gray, 0.0, 1.0, out=gray)
    gray[gray < NOISE_FLOOR] = 0.0
    return gray, inverted


def _fit_and_centre(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))  # 10x faster than nonzero
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = FIT / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # reducing_gap: a fast integer box reduction first, then Lanczos over the last factor of <= 3.
    digit = Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    digit = np.asarray(digit, dtype=np.float32)
    total = digit.sum()
    if total <= 0:
        raise ImageError("no digit found: the ink vanished when scaled to 20x20")
    ys, xs = np.indices(digit.shape)
    centre_y, centre_x = (ys * digit).sum() / total, (xs * digit).sum() / total
    top, left = round(SIDE / 2 - 0.5 - centre_y), round(SIDE / 2 - 0.5 - centre_x)
    field = np.zeros((SIDE, SIDE), dtype=np.float32)
    # Paste with clipping: a very lopsided digit may need to hang over the edge a little.
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(SIDE, top + digit.shape[0]), min(SIDE, left + digit.shape[1])
    field[y0:y1, x0:x1] = digit[y0 - top : y1 - top, x0 - left : x1 - left]
    return np.clip(np.rint(field), 0, 255).astype(np.uint8)


def prepare(image: Image.Image | np.ndarray) -> PreparedDigit:
    """Any image of one digit -> the 28x28 uint8 white-on-black field MNIST's digits come in."""
    if isinstance(image, np.ndarray):
        if image.ndim != 2 or image.size == 0:
            raise ImageError(f"expected a 2-D grayscale array, got shape {image.shape}")
        gray = image.astype(np.float32)
        if not np.isfinite(gray).all():
            raise ImageError("the pixel array holds NaN or infinite values")
    else:
        gray = to_grayscale(_reduce(ImageOps.exif_transpose(image) if hasattr(image, "getexif") else image))
    ink, inverted = ink_map(gray)
    return PreparedDigit(_fit_and_centre(ink), inverted)


def image_files(paths) -> tuple[list[Path], list[str]]:
    """Expand files and folders into image files (sorted within a folder), with one error per bad path."""
    files, errors = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                errors.append(f"{path}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.exists() or not os.path.lexists(path):
            files.append(path)  # a missing file gets its own clear error when opened
        else:
            errors.append(f"{path}: broken link")
    return files, errors
