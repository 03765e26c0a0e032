"""One digit's ink -> the 28x28 field MNIST's digits come in."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage

from digitnet.imageprep.loading import ImageError
from digitnet.imageprep.measures import extent, stroke_width
from digitnet.settings import FIT, SIDE

MNIST_CENTRE = (14.0, 14.0)  # mean centre of mass of MNIST's digits, (row, column)
MIN_STROKE = 2.0  # MNIST's strokes are 2-3 px wide in the 20x20 box; thinner ones are thickened


def fit_and_centre(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One digit's ink -> the 28x28 field: thickened if thin, fitted in 20x20, centre of mass at MNIST's."""
    rows, cols = extent(mask)
    scale = FIT / max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    width = stroke_width(mask)
    if width * scale < MIN_STROKE:
        radius = int(np.ceil((MIN_STROKE / scale - width) / 2))
        ink = _dilated_by_disk(ink, radius)
        grown = ndimage.distance_transform_edt(~mask) <= radius  # binary dilation by the same disk
        rows, cols = extent(grown)
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = FIT / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # reducing_gap: a fast integer box reduction first, then Lanczos over the last factor of <= 3.
    digit = Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    digit = np.asarray(digit, dtype=np.float32)
    if digit.sum() <= 0:
        raise ImageError("no digit found: the ink vanished when scaled to 20x20")
    field = np.zeros((SIDE, SIDE), dtype=np.float32)
    top, left = (SIDE - digit.shape[0]) // 2, (SIDE - digit.shape[1]) // 2
    field[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    centre = ndimage.center_of_mass(field)
    field = ndimage.shift(field, (MNIST_CENTRE[0] - centre[0], MNIST_CENTRE[1] - centre[1]), order=1)
    field *= 255.0 / field.max()  # the interpolation of the shift dims the peak; MNIST's digits peak at 255
    return np.clip(np.rint(field), 0, 255).astype(np.uint8)


def _dilated_by_disk(ink: np.ndarray, radius: int) -> np.ndarray:
    """ndimage.grey_dilation(ink, footprint=_disk(radius)), edges reflected as there, computed as one
    running maximum along the rows for each row of the disk: its cost grows with the radius, not with
    the disk's area (a large digit drawn thin needs a radius of 20 or more)."""
    h, w = ink.shape
    # scipy's "reflect"; where the disk is larger than the array scipy's own result varies from call to
    # call (scipy 1.x, seen here), numpy's padding reflects again, the same every time
    padded = np.pad(ink, radius, mode="symmetric")
    out = np.full_like(ink, -np.inf)
    for dy in range(-radius, radius + 1):
        half = math.isqrt(radius * radius - dy * dy)
        band = ndimage.maximum_filter1d(padded[radius + dy : radius + dy + h], 2 * half + 1, axis=1)
        np.maximum(out, band[:, radius : radius + w], out=out)
    return out


def _disk(radius: int) -> np.ndarray:
    ys, xs = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return ys * ys + xs * xs <= radius * radius
