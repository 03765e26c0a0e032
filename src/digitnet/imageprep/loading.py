"""Reading an image file: a clear error for what cannot be read, frames, EXIF rotation, alpha, grey, reduced."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from digitnet.errors import DigitnetError

MAX_PIXELS = 40_000_000
WORKING_SIDE = 512  # larger images are reduced first: each digit ends up 20 pixels tall anyway
ZOOM = 2.0  # ink in a small part of a large image is read again on its own when that enlarges it this much
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageError(DigitnetError):
    """An image cannot be read, is too large, or holds no digit."""


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
    except MemoryError:
        raise
    except Exception as exc:  # Pillow's plugins raise many types (SyntaxError, RuntimeError, ...) for bad data
        reason = "not an image Pillow can read" if isinstance(exc, UnidentifiedImageError) else _reason(exc)
        raise ImageError(f"{name}: {reason}; use PNG, JPEG, BMP, GIF, WebP or TIFF") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} is {width * height / 1e6:.0f} MP, more than the "
                         f"{max_pixels // 1_000_000} MP limit; downscale it first")
    if width == 0 or height == 0:
        raise ImageError(f"{name}: image has no pixels")
    image.info["source_width"] = width
    try:
        image.seek(0)  # first frame of an animation
        if image.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale when that still exceeds the working
            image.draft(image.mode, (ZOOM * WORKING_SIDE,) * 2)  # size, with room for a closer look
        image.load()
    except MemoryError:
        raise
    except Exception as exc:
        raise ImageError(f"{name}: truncated or corrupt image data ({_reason(exc)})") from None
    return image


def _reason(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:160] or type(exc).__name__


def _planes(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(grey plane, alpha plane or None): single-channel images, so that reducing them never makes
    the full-size premultiplied copy Pillow makes to resize an RGBA image."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L"):
        return image, None
    if image.mode == "P" or "A" in image.getbands() or "transparency" in image.info:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        return rgba.convert("L"), rgba.getchannel("A")
    return image.convert("L"), None


def _to_float(plane: Image.Image) -> np.ndarray:
    """float32 (H, W) in 0..255; 16- and 32-bit planes are stretched to their own range."""
    array = np.asarray(plane, dtype=np.float32)
    if plane.mode == "L":
        return array
    span = float(array.max() - array.min()) or 1.0
    return (array - array.min()) * (255.0 / span)


def _composite(gray: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Transparent pixels take a background the ink contrasts with."""
    if alpha is None or alpha.min() >= 255:
        return gray
    alpha = alpha / 255.0
    opaque = alpha > 0.5
    ink_is_dark = opaque.any() and float(np.median(gray[opaque])) < 128
    background = 255.0 if ink_is_dark else 0.0
    return gray * alpha + background * (1.0 - alpha)


# EXIF orientation -> the transposition that shows the image upright (as ImageOps.exif_transpose),
# applied after reducing, so a large photo is never copied at full size.
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}


def exif_orientation(image: Image.Image) -> int:
    try:
        return image.getexif().get(0x0112, 1) if hasattr(image, "getexif") else 1
    except Exception:  # a damaged EXIF block: show the image as stored
        return 1


def _stored_box(box: tuple[int, int, int, int], size: tuple[int, int], orientation: int
                ) -> tuple[int, int, int, int]:
    """A box (left, top, right, bottom) of the upright image -> the same pixels' box in the image as
    stored (size: its width and height) before the EXIF orientation's transposition."""
    left, top, right, bottom = box
    width, height = size
    return {1: box, 2: (width - right, top, width - left, bottom),
            3: (width - right, height - bottom, width - left, height - top),
            4: (left, height - bottom, right, height - top), 5: (top, left, bottom, right),
            6: (top, height - right, bottom, height - left),
            7: (width - bottom, height - right, width - top, height - left),
            8: (width - bottom, left, width - top, right)}.get(orientation, box)


def _upright_and_reduced(plane: Image.Image, size: tuple[int, int], box: tuple[int, int, int, int], orientation: int
                         ) -> Image.Image:
    if size != plane.size or box != (0, 0, *plane.size):
        if plane.mode == "1":  # Pillow resizes 1-bit images by nearest neighbour, which drops thin strokes
            plane = plane.convert("L")
        if size[0] > box[2] - box[0]:  # enlarged: interpolated, not in blocks
            plane = plane.resize(size, Image.Resampling.BICUBIC, box=box)
        else:  # reduce() first: no full-size copy
            plane = plane.resize(size, Image.Resampling.BOX, box=box, reducing_gap=2.0)
    return plane.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else plane


def _reduce(image: Image.Image, region: tuple[int, int, int, int] | None = None, enlarge: float = 1.0
            ) -> tuple[np.ndarray, float]:
    """The image (or region, a box of the upright image in its pixels as loaded) as grey float32,
    upright, enlarged enlarge times and reduced to at most WORKING_SIDE pixels a side, and source pixels
    per working pixel (the source being the file before any JPEG draft scaling)."""
    source_width = image.info.get("source_width", image.size[0])
    orientation = exif_orientation(image)
    box = (0, 0, *image.size) if region is None else _stored_box(region, image.size, orientation)
    width, height = box[2] - box[0], box[3] - box[1]
    scale = min(enlarge, WORKING_SIDE / max(width, height))
    size = (width, height) if scale == 1.0 else (max(1, round(width * scale)), max(1, round(height * scale)))
    gray, alpha = (None if p is None else _upright_and_reduced(p, size, box, orientation) for p in _planes(image))
    array = _composite(_to_float(gray), None if alpha is None else np.asarray(alpha, dtype=np.float32))
    stored_width = array.shape[0] if orientation in (5, 6, 7, 8) else array.shape[1]
    return array, source_width / image.size[0] * width / stored_width


def grey_array(image: Image.Image | np.ndarray, region: tuple[int, int, int, int] | None = None,
               enlarge: float = 1.0) -> tuple[np.ndarray, float]:
    """A 2-D float array of the image (or of a region of a Pillow image, see _reduce), and source
    pixels per array pixel."""
    if isinstance(image, np.ndarray):
        if image.ndim != 2 or image.size == 0:
            raise ImageError(f"expected a 2-D grayscale array, got shape {image.shape}")
        gray = image.astype(np.float32)
        if not np.isfinite(gray).all():
            raise ImageError("the pixel array holds NaN or infinite values")
        return gray, 1.0
    try:
        return _reduce(image, region, enlarge)
    except (ValueError, OSError) as exc:  # a mode Pillow cannot resize or convert to grey
        raise ImageError(f"cannot read pixels of image mode {image.mode} ({_reason(exc)}); save it as PNG or JPEG"
                         ) from None


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
