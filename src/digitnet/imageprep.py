"""Preparing any image of digits the way MNIST's digits were prepared.

MNIST: white ink on black, each digit's bounding box scaled (anti-aliased, aspect kept) to fit
20x20, then placed in a 28x28 field with its centre of mass at (14.0, 14.0) in index coordinates
(the mean over MNIST's own digits). A photo of a written number, a scan or a drawing on a white
canvas is none of these; `prepare_digits` makes it so, one 28x28 field per digit, left to right.
The CLI, the HTTP API and the draw-a-digit page all call it.

Steps (scipy.ndimage for the filters, morphology and labelling):
1. first frame, EXIF rotation, alpha composited onto a background the ink contrasts with, grey,
   reduced to at most 512 pixels a side;
2. polarity: a white border means dark ink (invert); otherwise the ink is the side, dark or light,
   with more thin structures (top-hats over growing windows: strokes are long and narrow, a glare
   spot or a shadow is not), which also tells how wide the strokes are;
3. background removed: a grey opening just wider than the strokes follows the paper's uneven light,
   shadows and their edges, and is subtracted; dark ink in shadow has its contrast lifted as if in
   full light; light smoothing removes grain and JPEG noise;
4. ink separated from paper by Otsu's threshold on what remains; straight lines that cannot be part
   of a digit (an underline, the lines of ruled paper, the boxes of a form) taken out, keeping where
   strokes cross them; specks (components with far less ink than the largest), thick regions at or
   near the edge (a table beyond the paper), faint ones there (light the background estimate left at
   a photo's edge) and far larger ones (the paper's edge) dropped; ink in a small part of a large
   image (a number in a photo of a page) is looked at again from the source, on its own;
5. components grouped into digits: pieces that overlap horizontally are one digit (a broken
   stroke), a piece far shorter than the row's digits joins its neighbour, and one piece of ink
   much wider than the row is tall is split at a clearly thinnest column (touching digits);
6. each digit: strokes thickened where they would be thinner than MNIST's after scaling, cropped,
   fitted into 20x20, shifted by a sub-pixel amount so its centre of mass is at (14.0, 14.0).
"""

from __future__ import annotations

import functools
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from digitnet.errors import DigitnetError
from digitnet.settings import FIT, SIDE

MAX_PIXELS = 40_000_000
WORKING_SIDE = 512  # larger images are reduced first: each digit ends up 20 pixels tall anyway
ZOOM = 2.0  # ink in a small part of a large image is read again on its own when that enlarges it this much
NUMBER_SPAN = 1.5  # ... framed from its tallest piece no taller than this times the pieces' median height
WHITE_PAPER = 200  # a border at least this bright is paper, whatever covers the rest
MIN_LIGHT = 32  # paper this dark (grey level) or darker counts as this dark when its shadow is lifted
MIN_CONTRAST = 24  # grey levels between background and ink below which the image counts as blank
SPECTRUM_SIDE = 256  # the ink's side and its strokes' widths are judged on a copy about this large
STROKES_END = 0.1  # ... the strokes end at the width with fewer than this share of the most at any width
SPECK_SHARE = 0.06  # components with less ink than this share of the largest one's are specks
MNIST_CENTRE = (14.0, 14.0)  # mean centre of mass of MNIST's digits, (row, column)
MIN_STROKE = 2.0  # MNIST's strokes are 2-3 px wide in the 20x20 box; thinner ones are thickened
SPLIT_ASPECT = 1.25  # a group wider than this times its height may hold touching digits
FORCE_SPLIT_ASPECT = 1.6  # ... and one wider than this does, even with no clear valley between them
SURROUNDINGS_THICKNESS = 2.0  # an edge region this many times thicker than the strokes is not ink
EDGE_SHARE = 0.02  # ... components this close to the edge (a share of its side) count as touching it
SURROUNDINGS_SIZE = 3.0  # ... nor one this many times taller or wider than the ink away from the edges
FAINT_SHARE = 0.6  # an edge component whose strongest ink is below this share of the digits' is light, not ink
SOFT_SHARE = 0.6  # ... so is one whose rim is less steep than this share of the sharpest digit's
DIM_SHARE = 0.9  # ... and whose strongest ink is below this share of the digits'
FRAGMENT_SHARE = 0.45  # a group less tall than this share of the tallest is part of a neighbour, not a digit
STRAY_SHARE = 0.5  # ... unless farther from it than this share of the tallest: then it is none
LINE_STROKES, MIN_LINE = 6, 8  # a straight run of ink this many stroke widths long (and pixels) may be a line
RULING_SPAN = 1.5  # a horizontal line this many times longer than the digits are tall is not part of one
MAX_TILT = 0.25  # ... and rises at most this much over its length
PAST_SHARE = 0.25  # ... and, where it touches digits, reaches past them on both sides by this share of their height,
UNDER_SHARE = 0.1  # ... or lies under them (all but this share of their ink above it) and past them by this share
FAINT_LINE = 0.1  # ink this faint (intensity) may still be part of a box's thin printed lines
ALONE_SHARE = 1.25  # a piece of ink with at most this much more ink than the straight line in it is that line alone
FRAME_END = 0.1  # a box's sides run across or down it to within this share of its size of either end
MAX_BEND = 0.15  # ... and are straight: no wider the other way than this share of their length
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageError(DigitnetError):
    """An image cannot be read, is too large, or holds no digit."""


@dataclass
class PreparedDigit:
    pixels: np.ndarray  # uint8 (28, 28), white ink on black, as MNIST
    inverted: bool  # True when the source was dark ink on a light background
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # (left, top, right, bottom) in the source image


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


def _orientation(image: Image.Image) -> int:
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
        # reduce() first: no full-size copy
        plane = plane.resize(size, Image.Resampling.BOX, box=box, reducing_gap=2.0)
    return plane.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else plane


def _reduce(image: Image.Image, region: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, float]:
    """The image (or region, a box of the upright image in its pixels as loaded) as grey float32,
    upright and reduced to at most WORKING_SIDE pixels a side, and source pixels per working pixel
    (the source being the file before any JPEG draft scaling)."""
    source_width = image.info.get("source_width", image.size[0])
    orientation = _orientation(image)
    box = (0, 0, *image.size) if region is None else _stored_box(region, image.size, orientation)
    width, height = box[2] - box[0], box[3] - box[1]
    size = (width, height)
    if max(size) > WORKING_SIDE:
        scale = WORKING_SIDE / max(size)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
    gray, alpha = (None if p is None else _upright_and_reduced(p, size, box, orientation) for p in _planes(image))
    array = _composite(_to_float(gray), None if alpha is None else np.asarray(alpha, dtype=np.float32))
    stored_width = array.shape[0] if orientation in (5, 6, 7, 8) else array.shape[1]
    return array, source_width / image.size[0] * width / stored_width


def _border(array: np.ndarray) -> np.ndarray:
    """The values along an image's four edges."""
    return np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])


def _polarity(gray: np.ndarray) -> tuple[bool, int | None]:
    """(whether the ink is darker than the paper, the width just past its strokes' widths in gray's
    pixels, or None when the strokes show no end).

    A white border is paper: a scan, a drawing, a tight crop of a bold digit whose ink covers most
    of the image. Otherwise (a photo: grey paper, shadows, glare, a table around it) the ink is the
    side with more thin structures: strokes are long and narrow, while a glare spot or a shadow is
    as wide as it is long, and grain departs alike on both sides. The strokes end at the width
    from which the ink's side shows few structures (a share STROKES_END of the most at any width)."""
    scales, dark, light = _thin_structures(gray)
    inverted = float(np.median(_border(gray))) >= WHITE_PAPER or float(dark.sum()) > float(light.sum())
    ink_side, paper_side = (dark, light) if inverted else (light, dark)
    strokes = int(np.argmax(ink_side - paper_side))  # (grain, at the smallest widths, is on both sides)
    wider = np.flatnonzero(ink_side[strokes:] < STROKES_END * ink_side[strokes])
    if not len(wider):
        return inverted, None
    return inverted, int(scales[strokes + wider[0]]) | 1


def _thin_structures(gray: np.ndarray) -> tuple[list[float], np.ndarray, np.ndarray]:
    """(window sizes s, growing, on a copy reduced to about SPECTRUM_SIDE, given in gray's pixels; for
    each, how many dark and how many light structures up to s wide, and wider than the size before,
    it shows).

    A structure's volume under a top-hat is its contrast times its area, its width times its length;
    over s squared it counts length over width, so thin strokes outweigh a shadow or a glare spot of
    the same contrast as large as the digits (a pattern spectrum of the dark and light top-hats)."""
    small, _ = _reduced(gray, SPECTRUM_SIDE)
    to_gray = max(gray.shape) / max(small.shape)
    scales, dark, light = [], [], []
    dark_before = light_before = 0.0
    size = 3
    while size <= max(3, min(small.shape) // 2):
        dark_volume = float((ndimage.grey_closing(small, size=(size, size)) - small).sum())
        light_volume = float((small - ndimage.grey_opening(small, size=(size, size))).sum())
        scales.append(size * to_gray)
        dark.append((dark_volume - dark_before) / size**2)
        light.append((light_volume - light_before) / size**2)
        dark_before, light_before = dark_volume, light_volume
        size = 2 * size + 1
    return scales, np.array(dark), np.array(light)


def _reduced(array: np.ndarray, side: int) -> tuple[np.ndarray, int]:
    """(array averaged over square blocks to about side pixels along its longer side, edges padded;
    the blocks' side)."""
    h, w = array.shape
    step = max(1, round(max(h, w) / side))
    if step == 1:
        return array, 1
    ph, pw = -(-h // step) * step, -(-w // step) * step
    padded = np.pad(array, ((0, ph - h), (0, pw - w)), mode="edge")
    return padded.reshape(ph // step, step, pw // step, step).mean(axis=(1, 3)), step


def _background(ink: np.ndarray, scale: int | None) -> np.ndarray:
    """The slowly varying paper level under white-on-black ink (uneven light, shadows): a grey
    opening just wider than the strokes (scale), so that it follows a shadow's edge, on a lightly
    smoothed copy (grain would pull its minima down). Without a scale, an opening a quarter of the
    image wide on a copy reduced to about 64 pixels, smoothed and enlarged."""
    if scale is not None:
        # The paper goes on past the image's edges: windows reaching out there, as far as they would
        # on the other side, follow a shadow into a corner (a window inside would not fit there).
        reach = scale // 2 + 1
        padded = np.pad(ndimage.gaussian_filter(ink, 1.0), reach, mode="edge")
        return ndimage.grey_opening(padded, size=(scale, scale))[reach:-reach, reach:-reach]
    small, step = _reduced(ink, 64)
    size = max(5, max(small.shape) // 4)
    level = ndimage.uniform_filter(ndimage.grey_opening(small, size=(size, size)), size)
    return np.repeat(np.repeat(level, step, axis=0), step, axis=1)[: ink.shape[0], : ink.shape[1]]


def _ink_and_background(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray | float, bool, bool]:
    """(the ink side's levels, the paper's level under them, whether the source was inverted, whether
    that level is one number: paper evenly lit everywhere)."""
    if float(np.median(_border(gray))) >= WHITE_PAPER:
        ink = 255.0 - gray
        paper = _clean_paper(ink)
        if float(ink.min()) >= paper:
            # Nothing in the image is lighter than the paper at its edges (a drawing on a blank
            # canvas): the background below, capped at that paper, would be that paper everywhere.
            # The costly part of a drawing's preparation (the spectrum, the opening) is not needed.
            return ink, paper, True, True
    return (*_measured_ink_and_background(gray), False)


def _measured_ink_and_background(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(the ink side's levels, the paper's level under them, whether the source was inverted), the
    side and the paper's level measured from the strokes' widths (_polarity, _background)."""
    inverted, scale = _polarity(gray)
    ink = 255.0 - gray if inverted else gray.copy()
    background = _background(ink, scale)
    paper = _clean_paper(ink)
    if paper is not None:
        np.minimum(background, paper, out=background)
    return ink, background, inverted


def _clean_paper(ink: np.ndarray) -> float | None:
    """Where the paper is clean all round (white under dark ink, black under light ink), the level it
    reaches at its darkest along the edges; None elsewhere.

    The paper is nowhere further from the ink than at its edges: capping the background there keeps
    the estimate from taking the strokes of a bold digit, cropped tightly, for a shadow. Where the
    light varies along the edges (a photo of a white page), the paper reaches as dark as its darkest
    there."""
    border = _border(ink)
    paper = float(np.median(border))
    if paper > 255.0 - WHITE_PAPER:
        return None
    return float(border[border <= paper + MIN_CONTRAST].max())


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold: the level that best separates the values into two classes."""
    counts, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mass = np.cumsum(counts * centres)
    total, total_mass = weight[-1], mass[-1]
    below, above = weight[:-1], total - weight[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mass * below / total - mass[:-1]) ** 2 / (below * above)
    return float(centres[np.nanargmax(np.where(below * above > 0, between, np.nan))])


def ink_map(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(ink intensities in 0..1, the ink mask, whether the source was inverted) of a grey image."""
    gray = np.asarray(gray, dtype=np.float32)
    ink, background, inverted, even = _ink_and_background(gray)
    ink -= background
    np.clip(ink, 0.0, None, out=ink)
    if inverted and not even:
        # A shadow dims the ink's contrast as much as the paper's light: the contrast where the paper
        # lies in shadow, scaled as if it were in the light of the best-lit paper (evenly lit paper
        # has no shadow to lift).
        light = 255.0 - background
        full = max(float(np.percentile(light, 95)), MIN_LIGHT)
        ink *= full / np.clip(light, MIN_LIGHT, full)
    smooth = ndimage.gaussian_filter(ink, sigma=max(0.5, max(ink.shape) / 400))
    peak = float(smooth.max())
    if peak < MIN_CONTRAST:
        raise ImageError("no digit found: the image is blank or has too little contrast")
    candidates = smooth[smooth > 0.02 * peak]  # Otsu between paper and ink, not over the empty paper
    mask = smooth > max(_otsu(candidates) if len(candidates) > 1 else 0.0, 0.2 * peak)
    strong = float(np.percentile(smooth[mask], 90))
    intensity = np.clip((smooth - 0.1 * strong) / (0.9 * strong), 0.0, 1.0)
    return intensity, mask, inverted


def _components(mask: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, list[int], list[tuple]]:
    """(labels, the labels kept, their bounding slices): 8-connected components, specks dropped."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    index = np.arange(1, count + 1)
    slices = ndimage.find_objects(labels)
    outside = _edge_regions_not_ink(labels, index, slices, mask, intensity)
    mass = _label_sums(labels, count, intensity)
    mass[outside] = 0
    kept = [i + 1 for i in range(count) if mass[i] > 0 and mass[i] >= SPECK_SHARE * mass.max()]
    if not kept:
        raise ImageError("no digit found: the image holds only lines, boxes or its surroundings")
    return labels, kept, [slices[i - 1] for i in kept]


def _label_sums(labels: np.ndarray, count: int, values: np.ndarray | None = None) -> np.ndarray:
    """ndimage.sum(values, labels, index=1..count), or each label's pixel count without values, in
    one pass over the labelled pixels alone (ndimage's passes over all of them, several times)."""
    labelled = labels > 0
    return np.bincount(labels[labelled], None if values is None else values[labelled], minlength=count + 1)[1:]


def _edge_regions_not_ink(labels: np.ndarray, index: np.ndarray, slices: list[tuple], mask: np.ndarray,
                          intensity: np.ndarray) -> np.ndarray:
    """Which components touching the image's edge are not ink, judged against those that do not
    touch it:
    - what lies beyond the paper (a table, a dark frame): far thicker than any of their strokes.
      Strokes of a digit cropped tightly touch the edge too, but are no thicker than the others;
    - light left at the edge: its strongest part far fainter than theirs, or a little fainter and
      with a soft rim. Ink is dark all along a stroke, with a sharp edge; what the background
      estimate leaves at an edge (a shadow's end, the darker rim of the paper in a photo, the dark
      corners of a photo beside a tilted sheet's edge) is not, and would read as a digit more;
    - the paper's edge or a frame around a number that fills a small part of the photo: far larger
      than any of them."""
    on_edge = np.zeros(len(index) + 1, dtype=bool)
    reach = max(1, round(EDGE_SHARE * max(labels.shape)))
    near_edge = [labels[:reach], labels[-reach:], labels[:, :reach], labels[:, -reach:]]
    on_edge[np.unique(np.concatenate([band.ravel() for band in near_edge]))] = True
    on_edge = on_edge[1:]
    if on_edge.all() or not on_edge.any():
        return np.zeros(len(index), dtype=bool)
    inside = ~on_edge
    thickness = ndimage.maximum(ndimage.distance_transform_edt(mask), labels, index=index)
    strongest = ndimage.labeled_comprehension(intensity, labels, index, lambda v: np.percentile(v, 90), float, 0.0)
    thick = thickness > SURROUNDINGS_THICKNESS * thickness[inside].max()
    faint = strongest < FAINT_SHARE * strongest[inside].max()
    sizes = np.array([max(rows.stop - rows.start, cols.stop - cols.start) for rows, cols in slices])
    large = sizes > SURROUNDINGS_SIZE * sizes[inside].max()
    slopes = _rim_slopes(labels, index, mask, intensity)
    soft = (slopes < SOFT_SHARE * slopes[inside].max()) & (strongest < DIM_SHARE * strongest[inside].max())
    return on_edge & (thick | faint | large | soft)


def _rim_slopes(labels: np.ndarray, index: np.ndarray, mask: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """How steeply each component's intensity falls at its rim (the mean slope there; where the
    image's edge cuts it off is no rim): ink has an edge as sharp as the photo's focus allows, what
    is left of a shading rises gently over many pixels. Infinite for a component with no rim."""
    rim = labels * (mask & ~ndimage.binary_erosion(mask, border_value=1))
    slope = np.hypot(ndimage.sobel(intensity, 0), ndimage.sobel(intensity, 1))
    total = _label_sums(rim, len(index), slope)
    count = _label_sums(rim, len(index))
    return np.divide(total, count, out=np.full(len(index), np.inf), where=count > 0)


def _ink_without_rulings(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """ink_map, with the rulings and frames (without_rulings) and their anti-aliased rims taken out."""
    intensity, mask, inverted = ink_map(gray)
    clean = without_rulings(mask, intensity)
    if clean is not mask:
        rims = ndimage.binary_dilation(mask & ~clean, iterations=2) & ~clean
        intensity[rims] = 0.0
    return intensity, clean, inverted


def without_rulings(mask: np.ndarray, intensity: np.ndarray | None = None) -> np.ndarray:
    """The ink mask without the straight lines printed or drawn around the digits: rulings (an
    underline, the lines of ruled paper, a strike-through) and the boxes a form asks for one digit in.
    Where a digit's stroke crosses a removed line, the crossing stays, so the stroke stays whole.

    A straight run of ink is a line only where it cannot be part of a digit: a horizontal one longer than
    RULING_SPAN times the digits' height (no digit is that much wider than tall) or lying apart under or
    over two digits or more, or the sides of a box with other ink inside (a square 0 or an LCD-style 8
    has nothing else inside, and stays). Straight strokes of digits (a 1, the bar of a 7 or a 4) are
    shorter, and stay. With intensity (ink_map's), boxes are looked for in fainter ink too (above
    FAINT_LINE): the thin printed lines of a form, smoothed, fall partly below the ink's threshold, and
    what is left of them (a row of boxes' dividers, where two sides meet) would read as 1s."""
    seen = mask if intensity is None else mask | (intensity > FAINT_LINE)
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    if not len(rows):
        return mask
    # the ink's extent and a pixel of paper round it (the distances to paper stay those of the whole mask)
    box = (slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2))
    ink, faint = mask[box], seen[box]
    if not ink.any():
        return mask
    length = max(MIN_LINE, round(LINE_STROKES * _stroke_width(ink))) | 1  # odd: the filters' windows are centred
    faint_across = _straight_runs(faint, length, axis=1)
    if not faint_across.any():
        return mask
    boxes = _frames(ink, faint_across, _straight_runs(faint, length, axis=0), length)
    lines = (boxes | _long_rows(ink, _straight_runs(ink, length, axis=1))) & ink
    if not lines.any():
        return mask
    kept = ink & ~lines
    thickness = 2 * int(np.ceil(ndimage.distance_transform_edt(lines).max())) + 2
    crossings = (ndimage.binary_closing(kept, structure=np.ones((thickness, 1), dtype=bool))
                 | ndimage.binary_closing(kept, structure=np.ones((1, thickness), dtype=bool)))
    clean = mask.copy()
    clean[box] = kept | (lines & crossings)
    return clean


def _straight_runs(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """The pixels of mask in runs of at least length (odd) along axis, where a run may step a pixel
    sideways (a line photographed at a slight tilt): a binary opening by a straight line of the mask
    widened by a pixel each side, as a running minimum then maximum (whose cost does not grow with the
    length), then only the mask's own pixels."""
    wide = ndimage.maximum_filter1d(mask.view(np.uint8), 3, axis=1 - axis)
    eroded = ndimage.minimum_filter1d(wide, length, axis=axis, mode="constant", cval=0)
    return ndimage.maximum_filter1d(eroded, length, axis=axis, mode="constant", cval=0).astype(bool) & mask


def _long_rows(mask: np.ndarray, horizontal: np.ndarray) -> np.ndarray:
    """Horizontal straight lines that are not part of a digit: longer than RULING_SPAN times the height
    of the ink around them (the piece of ink the line belongs to: a digit whose bar it is, or the
    digits an underline touches; or, if taller, the tallest piece left when the line is taken away),
    or a line on its own under or over two digits or more, as long as they are tall. Each line's work
    is done within its own piece's box (a page of text holds hundreds of short straight runs)."""
    pieces, count = ndimage.label(mask, structure=np.ones((3, 3)))
    boxes = ndimage.find_objects(pieces)
    mass = _label_sums(pieces, count)
    heights = np.array([rows.stop - rows.start for rows, _ in boxes])
    digits = [k for k in range(count) if mass[k] >= SPECK_SHARE * mass.max()]  # pieces, specks aside
    lines, _ = ndimage.label(horizontal, structure=np.ones((3, 3)))
    rulings = []
    for i, (rows, cols) in enumerate(ndimage.find_objects(lines)):
        length = cols.stop - cols.start
        if rows.stop - rows.start > MAX_TILT * length:
            continue
        own = int(pieces[rows, cols][lines[rows, cols] == i + 1][0]) - 1
        place = boxes[own]
        piece, line = pieces[place] == own + 1, lines[place] == i + 1
        alone = mass[own] <= ALONE_SHARE * line.sum()  # the line touches no digit
        if (length >= RULING_SPAN * heights[own]
                and length >= RULING_SPAN * _tallest_without(piece & ~line, np.delete(heights, own), np.delete(mass, own))
                and (alone or _outside(line, piece & ~horizontal[place]))):
            rulings.append(i + 1)
        elif alone:
            spanned = [heights[k] for k in digits if k != own
                       and min(boxes[k][1].stop, cols.stop) - max(boxes[k][1].start, cols.start)
                       >= 0.5 * (boxes[k][1].stop - boxes[k][1].start)]
            if len(spanned) >= 2 and length >= max(spanned):
                rulings.append(i + 1)
    return np.isin(lines, rulings)


def _outside(line: np.ndarray, rest: np.ndarray) -> bool:
    """Whether a line lies outside the rest of the ink it touches (rest: the other ink of its piece, its
    straight lines aside): under (nearly) all of it and past it on one side at least by UNDER_SHARE of
    its height (digits standing on an underline), or past it on both sides by PAST_SHARE of its height
    (a line of ruled paper, a strike-through). Touching printed digits make lines of their own, which
    end about where the digits do: the bases of 222, the bars of 777 (over the rest, past it on the left
    only) or of 444 (through it); they stay. The merged base serifs of touching 1111 reach past the last
    stem as an underline would, and go."""
    total = rest.sum()
    if not total:
        return True
    rows, cols = np.flatnonzero(line.any(axis=1)), np.flatnonzero(line.any(axis=0))
    rest_rows, rest_cols = np.flatnonzero(rest.any(axis=1)), np.flatnonzero(rest.any(axis=0))
    height = rest_rows[-1] - rest_rows[0] + 1
    if rest[rows[-1] + 1 :].sum() <= UNDER_SHARE * total:  # an underline
        margin = UNDER_SHARE * height
        return cols[0] <= rest_cols[0] - margin or cols[-1] >= rest_cols[-1] + margin
    margin = PAST_SHARE * height
    return cols[0] <= rest_cols[0] - margin and cols[-1] >= rest_cols[-1] + margin


def _tallest_without(rest: np.ndarray, heights: np.ndarray, mass: np.ndarray) -> int:
    """The height of the tallest piece of ink once a line is taken out of its piece, specks (as
    _components drops them) aside; 0 if none: the other pieces (their heights and masses) and what
    is left of the line's own piece (rest, within its box)."""
    labels, count = ndimage.label(rest, structure=np.ones((3, 3)))
    if count:
        heights = np.concatenate([heights, [rows.stop - rows.start for rows, _ in ndimage.find_objects(labels)]])
        mass = np.concatenate([mass, _label_sums(labels, count)])
    if not len(mass):
        return 0
    return int(heights[mass >= SPECK_SHARE * mass.max()].max())


def _frames(mask: np.ndarray, horizontal: np.ndarray, vertical: np.ndarray, length: int) -> np.ndarray:
    """The lines of boxes drawn round ink. A piece of straight lines (horizontal and vertical runs of at
    least length) is a box, or a row of boxes, where it holds a line across it (_long_parts) near its top
    and another near its bottom and no third (more make a grid: squared paper), a line down it near its
    left and another near its right, and ink inside that is none of these lines (a square 0 or an
    LCD-style 8 is nothing but such lines, and stays). Its lines across or down it go: the sides, and the
    dividers of a row of boxes; shorter straight strokes touching them (a 1 written against a side) stay."""
    labels, _ = ndimage.label(horizontal | vertical, structure=np.ones((3, 3)))
    frames = np.zeros_like(mask)
    for i, (rows, cols) in enumerate(ndimage.find_objects(labels)):
        piece = labels[rows, cols] == i + 1
        h, w = piece.shape
        if min(h, w) < length:
            continue
        across = _long_parts(horizontal[rows, cols] & piece, axis=1)
        down = _long_parts(vertical[rows, cols] & piece, axis=0)
        if not (_near_both_ends(across.any(axis=1)) and _near_both_ends(down.any(axis=0))):
            continue
        if ndimage.label(across, structure=np.ones((3, 3)))[1] > 2:  # a grid, not a box or a row of boxes
            continue
        if (mask[rows, cols] & ~(across | down)).sum() >= length:
            frames[rows, cols] |= across | down
    return frames


def _long_parts(runs: np.ndarray, axis: int) -> np.ndarray:
    """The connected parts of runs that run along axis (1: across, 0: down) from one side of runs to the
    other (to within FRAME_END of its size: a box's sides meet at its corners; a digit's stem against
    a box too small for it does not) and are straight: no wider the other way than MAX_BEND of their
    length (an arc of a small 8 or 0 made of short runs is not a side of a box)."""
    size = runs.shape[axis]
    labels, _ = ndimage.label(runs, structure=np.ones((3, 3)))
    long = []
    for i, box in enumerate(ndimage.find_objects(labels)):
        along, other = box[axis].stop - box[axis].start, box[1 - axis].stop - box[1 - axis].start
        if box[axis].start <= FRAME_END * size and box[axis].stop >= (1 - FRAME_END) * size and other <= MAX_BEND * along:
            long.append(i + 1)
    return np.isin(labels, long)


def _near_both_ends(occupied: np.ndarray) -> bool:
    """Whether occupied (along one axis) has something in its first quarter and in its last."""
    where = np.flatnonzero(occupied)
    return len(where) > 0 and where[0] < len(occupied) / 4 and where[-1] >= 3 * len(occupied) / 4


def _group(kept: list[int], slices: list[tuple]) -> list[list]:
    """Components -> digits, left to right: [labels, first column, last column + 1, top row,
    bottom row + 1]. Pieces that overlap horizontally by half the narrower one's width are one digit
    (a broken stroke); a piece far shorter than the row's digits (the detached bar of a 5, a stray
    arc) joins its nearest neighbour instead of counting as a digit, or, lying far from it (a speck,
    what a shadow's edge leaves), is no part of any."""
    order = sorted(range(len(kept)), key=lambda i: slices[i][1].start)
    tallest = max(rows.stop - rows.start for rows, _ in slices)
    groups: list[list] = []
    for i in order:
        rows, columns = slices[i]
        piece = [[kept[i]], columns.start, columns.stop, rows.start, rows.stop]
        if groups:
            g = groups[-1]
            overlap = min(g[2], piece[2]) - max(g[1], piece[1])
            if overlap >= 0.5 * min(g[2] - g[1], piece[2] - piece[1]):
                if _stray(piece, g, tallest):
                    continue
                if _stray(g, piece, tallest):
                    groups[-1] = piece
                    continue
                _absorb(g, piece)
                continue
        groups.append(piece)
    return _merge_fragments(groups)


def _stray(piece: list, group: list, tallest: int) -> bool:
    """Whether piece is a fragment (shorter than FRAGMENT_SHARE of the tallest) farther from group
    than STRAY_SHARE of the tallest, across or down."""
    if piece[4] - piece[3] >= FRAGMENT_SHARE * tallest:
        return False
    return _gap(piece[1:], group[1:]) > STRAY_SHARE * tallest


def _gap(a: tuple | list, b: tuple | list) -> int:
    """The gap between two boxes (first column, last column + 1, top row, bottom row + 1), across or
    down, whichever is wider; 0 where they overlap."""
    return max(b[0] - a[1], a[0] - b[1], b[2] - a[3], a[2] - b[3], 0)


def _absorb(group: list, other: list) -> None:
    """group takes other's labels, and its extent grows to cover other's."""
    group[0] += other[0]
    group[1], group[2] = min(group[1], other[1]), max(group[2], other[2])
    group[3], group[4] = min(group[3], other[3]), max(group[4], other[4])


def _merge_fragments(groups: list[list]) -> list[list]:
    """Groups shorter than FRAGMENT_SHARE of the tallest join the neighbour with the smaller gap,
    unless they lie far from it."""
    tallest = max(g[4] - g[3] for g in groups)
    while len(groups) > 1:
        short = [k for k, g in enumerate(groups) if g[4] - g[3] < FRAGMENT_SHARE * tallest]
        if not short:
            break
        k = short[0]
        gaps = [(groups[n][1] - groups[k][2] if n > k else groups[k][1] - groups[n][2], n)
                for n in (k - 1, k + 1) if 0 <= n < len(groups)]
        _, n = min(gaps)
        fragment = groups.pop(k)
        neighbour = groups[n if n < k else n - 1]
        if not _stray(fragment, neighbour, tallest):
            _absorb(neighbour, fragment)
    return groups


def _height(mask: np.ndarray) -> int:
    rows = np.flatnonzero(mask.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if len(rows) else 0


def _split_touching(mask: np.ndarray, x0: int, x1: int, row_height: float = 0.0) -> list[tuple[int, int]]:
    """Column ranges of the digits in mask[:, x0:x1]: split at the thinnest middle column while the
    part is wider than tall and that column is a clear valley, or the part is far wider than tall.
    Tall means the part's own height or the row's typical digit height, whichever is more: a small
    digit beside tall ones is not a pair."""
    part = mask[:, x0:x1]
    own = _height(part)
    if not own:
        return []
    height, width = max(own, row_height), x1 - x0
    if width <= SPLIT_ASPECT * height or width < 4:
        return [(x0, x1)]
    columns = part.sum(axis=0).astype(float)
    middle = slice(width // 4, width - width // 4)
    cut = middle.start + int(np.argmin(columns[middle]))
    if columns[cut] > 0.6 * np.median(columns[columns > 0]) and width <= FORCE_SPLIT_ASPECT * height:
        return [(x0, x1)]
    if min(_height(part[:, :cut]), _height(part[:, cut:])) < FRAGMENT_SHARE * height:
        return [(x0, x1)]  # one side is a 2's long tail or a 7's bar, not a digit of its own
    return _split_touching(mask, x0, x0 + cut, row_height) + _split_touching(mask, x0 + cut, x1, row_height)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels, from the distance transform (w = 4 mean - 3 for a band)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    # The ink and a pixel of paper round it: the paper farther out is never the nearest to any ink.
    mask = mask[max(rows[0] - 1, 0) : rows[-1] + 2, max(cols[0] - 1, 0) : cols[-1] + 2]
    return _band_width(mask.shape, np.packbits(mask).tobytes())


@functools.lru_cache(maxsize=8)
def _band_width(shape: tuple[int, int], packed: bytes) -> float:
    """_stroke_width of a mask (its bits packed, so it can be a cache key): a one-digit image's ink
    is measured twice, once to tell its lines from its strokes and once to fit it."""
    mask = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=shape[0] * shape[1]).reshape(shape).view(bool)
    distances = ndimage.distance_transform_edt(mask)
    return max(1.0, 4.0 * float(distances[mask].mean()) - 3.0)


def _fit_and_centre(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One digit's ink -> the 28x28 field: thickened if thin, fitted in 20x20, centre of mass at MNIST's."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    scale = FIT / max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    width = _stroke_width(mask)
    if width * scale < MIN_STROKE:
        radius = int(np.ceil((MIN_STROKE / scale - width) / 2))
        ink = _dilated_by_disk(ink, radius)
        grown = ndimage.distance_transform_edt(~mask) <= radius  # binary dilation by the same disk
        rows, cols = np.flatnonzero(grown.any(axis=1)), np.flatnonzero(grown.any(axis=0))
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


def _grey(image: Image.Image | np.ndarray, region: tuple[int, int, int, int] | None = None
          ) -> tuple[np.ndarray, float]:
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
        return _reduce(image, region)
    except (ValueError, OSError) as exc:  # a mode Pillow cannot resize or convert to grey
        raise ImageError(f"cannot read pixels of image mode {image.mode} ({_reason(exc)}); save it as PNG or JPEG"
                         ) from None


def _digit(ink: _Ink, mask: np.ndarray) -> PreparedDigit:
    """The digit whose ink is under mask -> its 28x28 field and its box in source pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    left, top = ink.origin
    box = (round(left + cols[0] * ink.factor), round(top + rows[0] * ink.factor),
           round(left + (cols[-1] + 1) * ink.factor), round(top + (rows[-1] + 1) * ink.factor))
    # Only the digit's surroundings from here on: its box and room for the edges kept below and the
    # thickening in _fit_and_centre (a radius under a tenth of the box's side), so that the work is
    # the digit's size, not the image's: a page of 27 pieces of ink took 15 s, each over the whole page.
    margin = int(np.ceil(MIN_STROKE / FIT * max(rows[-1] - rows[0], cols[-1] - cols[0]))) + 4
    around = (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1), slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))
    mask = mask[around]
    near = ndimage.binary_dilation(mask, iterations=2)  # keep the anti-aliased edges around the ink
    return PreparedDigit(_fit_and_centre(ink.intensity[around] * near, mask), ink.inverted, box)


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


def _ink(gray: np.ndarray, factor: float, origin: tuple[float, float] = (0.0, 0.0)) -> _Ink:
    intensity, mask, inverted = _ink_without_rulings(gray)
    return _Ink(intensity, mask, inverted, *_components(mask, intensity), factor, origin)


def _found_ink(image: Image.Image | np.ndarray) -> _Ink:
    """The image's ink, looked at again more closely where it covers a small part of a large image
    (a number in a photo of a page): reduced to the working size, its digits would be a few pixels tall."""
    gray, factor = _grey(image)
    ink = _ink(gray, factor)
    if not isinstance(image, Image.Image):
        return ink
    upright_width = image.size[1] if _orientation(image) in (5, 6, 7, 8) else image.size[0]
    loaded_per_pixel = upright_width / gray.shape[1]
    region = _closer_region(ink, gray.shape, loaded_per_pixel)
    if region is None:
        return ink
    closer, closer_factor = _grey(image, region)
    source_per_loaded = factor / loaded_per_pixel
    try:
        return _ink(closer, closer_factor, (region[0] * source_per_loaded, region[1] * source_per_loaded))
    except ImageError:  # nothing there after all, looked at closely: keep what the whole image showed
        return ink


def _number_box(slices: list[tuple]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) around the number in a photo of a page, not around what lies far
    from it (the paper's edge, a blot, a fold): from its tallest digit (the tallest piece no taller than
    NUMBER_SPAN times the pieces' median height: a paper's edge is far longer), the pieces within the
    height of what it has gathered, one by one (its neighbours, their broken strokes)."""
    pieces = [[[k], cols.start, cols.stop, rows.start, rows.stop] for k, (rows, cols) in enumerate(slices)]
    heights = np.array([piece[4] - piece[3] for piece in pieces])
    number = pieces.pop(int(np.argmax(np.where(heights <= NUMBER_SPAN * np.median(heights), heights, -1))))
    while near := [piece for piece in pieces if _gap(piece[1:], number[1:]) <= number[4] - number[3]]:
        for piece in near:
            _absorb(number, piece)
            pieces.remove(piece)
    return number[1], number[3], number[2], number[4]


def _closer_region(ink: _Ink, shape: tuple[int, int], loaded_per_pixel: float) -> tuple[int, int, int, int] | None:
    """The box (left, top, right, bottom, in the upright image's pixels as loaded) around the number
    (_number_box), with its height of paper all round, when reading that alone enlarges it ZOOM times
    or more."""
    left, top, right, bottom = _number_box(ink.slices)
    margin = bottom - top
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(shape[0], bottom + margin), min(shape[1], right + margin)
    gain = min(loaded_per_pixel, WORKING_SIDE / max(bottom - top, right - left))
    if gain < ZOOM:
        return None
    return (math.floor(left * loaded_per_pixel), math.floor(top * loaded_per_pixel),
            math.ceil(right * loaded_per_pixel), math.ceil(bottom * loaded_per_pixel))


def prepare_digits(image: Image.Image | np.ndarray) -> list[PreparedDigit]:
    """Any image of one or more digits side by side -> one MNIST-format field per digit, left to right."""
    ink = _found_ink(image)
    labels, kept, slices = ink.labels, ink.kept, ink.slices
    digits = []
    groups = _group(kept, slices)
    row_height = float(np.median([y1 - y0 for _, _, _, y0, y1 in groups]))
    widths = {label: piece[1].stop - piece[1].start for label, piece in zip(kept, slices)}
    for members, gx0, gx1, _, _ in groups:
        member_mask = np.isin(labels, members)
        # Touching digits are one piece of ink spanning the group; a group whose width comes from
        # several pieces was merged as one broken digit and stays whole.
        spanning = max(widths[m] for m in members) >= 0.8 * (gx1 - gx0)
        parts = _split_touching(member_mask, gx0, gx1, row_height) if spanning else [(gx0, gx1)]
        for x0, x1 in parts:
            part = np.zeros_like(member_mask)
            part[:, x0:x1] = member_mask[:, x0:x1]
            digits.append(_digit(ink, part))
    return digits


def prepare(image: Image.Image | np.ndarray) -> PreparedDigit:
    """Any image of one digit -> the 28x28 uint8 white-on-black field MNIST's digits come in.

    All the ink counts as one digit (specks dropped); prepare_digits reads several.
    """
    ink = _found_ink(image)
    return _digit(ink, np.isin(ink.labels, ink.kept))


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
