"""An image -> its digits, left to right: the steps of the package in order."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage

from digitnet.imageprep.dots import joined_dots
from digitnet.imageprep.fitting import MIN_STROKE, fit_and_centre
from digitnet.imageprep.ink import ink_map
from digitnet.imageprep.lines import without_rulings
from digitnet.imageprep.loading import MAX_PIXELS, WORKING_SIDE, ZOOM, ImageError, exif_orientation, grey_array, open_image
from digitnet.imageprep.measures import extent
from digitnet.imageprep.pieces import components, digit_groups, doubtful_cuts, number_box, row_turn, split_touching
from digitnet.settings import FIT

SMALL_DIGIT = 20  # digits fewer pixels tall than this are read again enlarged ...
CLOSE_DIGIT = 40  # ... to this height


@dataclass
class PreparedDigit:
    pixels: np.ndarray  # uint8 (28, 28), white ink on black, as MNIST
    inverted: bool  # True when the source was dark ink on a light background
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # (left, top, right, bottom) in the source image
    # the same ink as two touching digits, cut in a few places, where its shape leaves that in doubt
    # (pieces.doubtful_cuts): a reader with a model keeps whichever it reads most surely
    splits: list[tuple[PreparedDigit, PreparedDigit]] = field(default_factory=list)
    # the first of `joins` digits cut from one piece of ink for its shape (pieces.split_touching): that
    # ink as one digit (a wide 0 cut in two), for a reader to keep where it reads it far more surely
    joined: PreparedDigit | None = None
    joins: int = 0


class _Ink(NamedTuple):
    """An image's ink: intensities, mask, polarity, its pieces (labels, those kept, their slices), and
    where it lies in the source: source pixels per array pixel, the array's origin in source pixels."""
    intensity: np.ndarray
    mask: np.ndarray
    inverted: bool
    labels: np.ndarray
    kept: list[int]
    slices: list[tuple]
    factor: float
    origin: tuple[float, float] = (0.0, 0.0)


def _ink_without_rulings(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """ink_map, with the rulings and frames (without_rulings) and their anti-aliased rims taken out, and
    the dots of dot-matrix print joined (joined_dots)."""
    intensity, mask, inverted = ink_map(gray)
    clean = without_rulings(mask, intensity)
    if clean is not mask:
        rims = ndimage.binary_dilation(mask & ~clean, iterations=2) & ~clean
        intensity[rims] = 0.0
    joined = joined_dots(clean, intensity)
    if joined is not None:
        clean, intensity = joined
    return intensity, clean, inverted


def _ink(gray: np.ndarray, factor: float, origin: tuple[float, float] = (0.0, 0.0)) -> _Ink:
    intensity, mask, inverted = _ink_without_rulings(gray)
    return _Ink(intensity, mask, inverted, *components(mask, intensity), factor, origin)


def _found_ink(image: Image.Image | np.ndarray) -> _Ink:
    """The image's ink, looked at again more closely where it covers a small part of a large image
    (a number in a photo of a page): reduced to the working size, its digits would be a few pixels tall."""
    gray, factor = grey_array(image)
    ink = _ink(gray, factor)
    if not isinstance(image, Image.Image):
        return ink
    upright_width = image.size[1] if exif_orientation(image) in (5, 6, 7, 8) else image.size[0]
    loaded_per_pixel = upright_width / gray.shape[1]
    closer_look = _closer_region(ink, gray.shape, loaded_per_pixel)
    if closer_look is None:
        return ink
    region, enlarge = closer_look
    closer, closer_factor = grey_array(image, region, enlarge)
    source_per_loaded = factor / loaded_per_pixel
    try:
        return _ink(closer, closer_factor, (region[0] * source_per_loaded, region[1] * source_per_loaded))
    except ImageError:  # nothing there after all, looked at closely: keep what the whole image showed
        return ink


def _closer_region(ink: _Ink, shape: tuple[int, int], loaded_per_pixel: float
                   ) -> tuple[tuple[int, int, int, int], float] | None:
    """The box (left, top, right, bottom, in the upright image's pixels as loaded) around the number
    (number_box), with its height of paper all round, and how much to enlarge the loaded pixels, when
    reading that alone enlarges it ZOOM times or more: from the source's own pixels where the first
    look reduced them, and interpolated where the digits are under SMALL_DIGIT pixels tall (a number in
    small print), to CLOSE_DIGIT pixels."""
    left, top, right, bottom = number_box(ink.slices)
    margin = bottom - top
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(shape[0], bottom + margin), min(shape[1], right + margin)
    digit_height = float(np.median([rows.stop - rows.start for rows, _ in ink.slices]))
    wanted = CLOSE_DIGIT / digit_height if digit_height < SMALL_DIGIT else 1.0
    gain = min(max(loaded_per_pixel, wanted), WORKING_SIDE / max(bottom - top, right - left))
    if gain < ZOOM:
        return None
    region = (math.floor(left * loaded_per_pixel), math.floor(top * loaded_per_pixel),
              math.ceil(right * loaded_per_pixel), math.ceil(bottom * loaded_per_pixel))
    return region, max(1.0, gain / loaded_per_pixel)


def _digit(ink: _Ink, mask: np.ndarray, rows_and_cols: tuple[np.ndarray, np.ndarray], turn: float = 0.0
           ) -> PreparedDigit:
    """The digit whose ink is under mask (the rows and columns it covers: measures.extent) -> its 28x28
    field and its box in source pixels; its ink turned by turn degrees (counter-clockwise, row_turn's)
    before it is fitted."""
    rows, cols = rows_and_cols
    left, top = ink.origin
    box = (round(left + cols[0] * ink.factor), round(top + rows[0] * ink.factor),
           round(left + (cols[-1] + 1) * ink.factor), round(top + (rows[-1] + 1) * ink.factor))
    # Only the digit's surroundings from here on: its box and room for the edges kept below and the
    # thickening in fit_and_centre (a radius under a tenth of the box's side), so that the work is
    # the digit's size, not the image's: a page of 27 pieces of ink took 15 s, each over the whole page.
    margin = int(np.ceil(MIN_STROKE / FIT * max(rows[-1] - rows[0], cols[-1] - cols[0]))) + 4
    around = (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1), slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))
    mask = mask[around]
    near = ndimage.binary_dilation(mask, iterations=2)  # keep the anti-aliased edges around the ink
    intensity = ink.intensity[around] * near
    if turn:
        # Paper round the ink first: ndimage.rotate reads nothing past an array's edge, where ink can
        # lie (a digit at the image's edge); the turned array grows to hold all of it. A mask a pixel or
        # two wide is nowhere wholly under a turned pixel: its turned mask is its half-level.
        intensity = ndimage.rotate(np.pad(intensity, 1), turn, order=1)
        turned = ndimage.rotate(np.pad(mask, 1).astype(np.float32), turn, order=1)
        mask = turned > 0.5 * turned.max()
    return PreparedDigit(fit_and_centre(intensity, mask), ink.inverted, box)


def prepare_digits(image: Image.Image | np.ndarray) -> list[PreparedDigit]:
    """Any image of one or more digits side by side -> one MNIST-format field per digit, left to right;
    a row written or photographed askew turned towards level first (row_turn)."""
    ink = _found_ink(image)
    labels, kept, slices = ink.labels, ink.kept, ink.slices
    pieces, wholes = [], {}
    groups = digit_groups(labels, kept, slices)
    row_height = float(np.median([y1 - y0 for _, _, _, y0, y1 in groups]))
    widths = {label: piece[1].stop - piece[1].start for label, piece in zip(kept, slices)}
    for members, gx0, gx1, _, _ in groups:
        member_mask = np.isin(labels, members)
        # Touching digits are one piece of ink spanning the group; a group whose width comes from
        # several pieces was merged as one broken digit and stays whole.
        spanning = max(widths[m] for m in members) >= 0.8 * (gx1 - gx0)
        parts = split_touching(member_mask, gx0, gx1, row_height) if spanning else [(gx0, gx1)]
        if len(parts) > 1:
            wholes[len(pieces)] = (member_mask, len(parts))
        pieces += [(member_mask, x0, x1, spanning) for x0, x1 in parts]
    masks = [_columns(member_mask, x0, x1) for member_mask, x0, x1, _ in pieces]
    extents = [extent(part) for part in masks]
    turn = row_turn([((cols[0] + cols[-1]) / 2, (rows[0] + rows[-1]) / 2) for rows, cols in extents])
    digits = []
    for (member_mask, x0, x1, spanning), part, part_extent in zip(pieces, masks, extents):
        digit = _digit(ink, part, part_extent, turn)
        splits = doubtful_cuts(member_mask, x0, x1, row_height, turn) if spanning else []
        digit.splits = [tuple(_digit(ink, half, extent(half), turn) for half in halves) for halves in splits]
        digits.append(digit)
    for first, (whole, count) in wholes.items():
        digits[first].joined, digits[first].joins = _digit(ink, whole, extent(whole), turn), count
    return digits


def _columns(mask: np.ndarray, x0: int, x1: int) -> np.ndarray:
    """mask with only its columns x0:x1 kept."""
    part = np.zeros_like(mask)
    part[:, x0:x1] = mask[:, x0:x1]
    return part


def prepare(image: Image.Image | np.ndarray) -> PreparedDigit:
    """Any image of one digit -> the 28x28 uint8 white-on-black field MNIST's digits come in.

    All the ink counts as one digit (specks dropped); prepare_digits reads several.
    """
    ink = _found_ink(image)
    mask = np.isin(ink.labels, ink.kept)
    return _digit(ink, mask, extent(mask))


def read_digits(source, name: str = "image", max_pixels: int = MAX_PIXELS, one: bool = False
                ) -> list[PreparedDigit]:
    """A path, bytes, file object or Pillow image -> its digits, left to right (one: all its ink as
    one digit). Every ImageError names the source."""
    image = source if isinstance(source, Image.Image) else open_image(source, name, max_pixels)
    try:
        return [prepare(image)] if one else prepare_digits(image)
    except ImageError as exc:
        if str(exc).startswith(name):
            raise
        raise ImageError(f"{name}: {exc}") from None
