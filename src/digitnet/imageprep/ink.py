"""A grey image -> its ink: which side is ink, the paper's level under it, the ink's intensity and mask."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull

from digitnet.imageprep.loading import ImageError
from digitnet.imageprep.measures import around, stroke_width

WHITE_PAPER = 200  # a border at least this bright is paper, whatever covers the rest
MIN_LIGHT = 32  # paper this dark (grey level) or darker counts as this dark when its shadow is lifted
MIN_CONTRAST = 24  # grey levels between background and ink below which the image counts as blank
SPECTRUM_SIDE = 256  # the ink's side and its strokes' widths are judged on a copy about this large
STROKES_END = 0.1  # ... the strokes end at the width with fewer than this share of the most at any width
SHEET_SHARE = 0.25  # paper darker than a white table around it, this share of the photo or more, is a sheet on it
SHEET_RIM = 3  # ... its level judged this many pixels in from its rims
STROKE_LEVEL = 0.75  # ... unless nearly as dark (this share of the way) as the darkest ink: a bold digit's strokes
LIGHT_SHEET_SHARE = 0.05  # a sheet lighter than the desk covers this share of the photo or more
MARK_LENGTH = 3.0  # a sheet lighter than the desk holds writing: its largest dark mark this many times longer than wide
MARK_WIDTH = 0.25  # ... and narrower than this share of the sheet's width
SHEET_FILL = 0.9  # ... and its outline a rectangle's (the share of the smallest one round it that it fills)
BLACK_BORDER_SHARE = 0.9  # a border this evenly as dark as the darkest of the image is paper under light ink
GRAIN = 3.0  # an image grainier than this (_grain, grey levels) is smoothed before its ink is looked for
SHEET_WEIGHT = 1.25  # the light side's thin structures must outweigh the dark this many times on such a sheet


def _border(array: np.ndarray) -> np.ndarray:
    """The values along an image's four edges."""
    return np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])


def _white_border(gray: np.ndarray) -> bool:
    return float(np.median(_border(gray))) >= WHITE_PAPER


def _black_border(gray: np.ndarray) -> bool:
    """Whether nearly all the border is as dark as the darkest of the image (BLACK_BORDER_SHARE of it
    within MIN_CONTRAST / 2 of the image's darkest level, lightly smoothed against grain): a black
    canvas, MNIST's own field."""
    darkest = float(ndimage.gaussian_filter(gray, 1.0).min())
    return float(np.percentile(_border(gray), 100 * BLACK_BORDER_SHARE)) <= darkest + MIN_CONTRAST / 2


def _polarity(gray: np.ndarray, dark_ink: bool | None = None) -> tuple[bool, int | None]:
    """(whether the ink is darker than the paper, the width just past its strokes' widths in gray's
    pixels, or None when the strokes show no end); dark_ink, where given, is the ink's side.

    A white border is paper: a scan, a drawing, a tight crop of a bold digit whose ink covers most
    of the image. So is a black one as dark as the darkest of the image (_black_border: a black
    canvas, where the black between a broad brush's strokes, a loop narrowed to a slit, is thinner
    than the strokes), unless a written light sheet shows (a page pasted on black). Otherwise (a
    photo: grey paper, shadows, glare, a table around it) the ink is the side with more thin
    structures: strokes are long and narrow, while a glare spot or a shadow is as wide as it is long,
    and grain departs alike on both sides. A light sheet on a dark desk adds light structures of its
    own, its corners and its narrow parts: where the image shows such a sheet written on
    (_written_light_sheet), the light side must outweigh the dark SHEET_WEIGHT times. The strokes end
    at the width from which the ink's side shows few structures (a share STROKES_END of the most at
    any width)."""
    scales, dark, light = _thin_structures(gray)
    if dark_ink is not None:
        inverted = dark_ink
    elif _white_border(gray):
        inverted = True
    elif _black_border(gray) and not _written_light_sheet(gray):
        inverted = False
    else:
        inverted = _dark_outweighs(gray, dark, light)
    ink_side, paper_side = (dark, light) if inverted else (light, dark)
    strokes = int(np.argmax(ink_side - paper_side))  # (grain, at the smallest widths, is on both sides)
    wider = np.flatnonzero(ink_side[strokes:] < STROKES_END * ink_side[strokes])
    if not len(wider):
        return inverted, None
    return inverted, int(scales[strokes + wider[0]]) | 1


def _dark_outweighs(gray: np.ndarray, dark: np.ndarray, light: np.ndarray) -> bool:
    """Whether the dark side's thin structures outweigh the light's (_polarity)."""
    if float(dark.sum()) > float(light.sum()):
        return True
    return float(light.sum()) < SHEET_WEIGHT * float(dark.sum()) and _written_light_sheet(gray)


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
    if _white_border(gray):
        ink = 255.0 - gray
        paper = _clean_paper(ink)
        sheet = _sheet_on_desk(ink, paper)
        if sheet is not None:
            # The sheet alone: the desk, where lighter, given the sheet's level, so that the sheet's
            # paper, not the desk, is the paper the ink lies on (else all of the sheet, darker than
            # the desk, is ink). Darker things stay: ink on a part of the sheet as light as the desk.
            desk, level = sheet
            gray = np.where(desk, np.minimum(gray, np.float32(255.0 - level)), gray)
        elif float(ink.min()) >= paper:
            # Nothing in the image is lighter than the paper at its edges (a drawing on a blank
            # canvas): the background below, capped at that paper, would be that paper everywhere.
            # The costly part of a drawing's preparation (the spectrum, the opening) is not needed.
            return ink, paper, True, True
        elif (plate := _dark_plate(gray, ink)) is not None:
            # Light print, lighter than the wall, on a dark plate on a white wall (a house number, a
            # sign): the plate alone, the wall given the plate's level, and the light side is the ink.
            gray = np.where(plate, gray, np.float32(np.median(gray[plate])))
            return (*_measured_ink_and_background(gray, dark_ink=False), False)
    return (*_measured_ink_and_background(gray), False)


def _measured_ink_and_background(gray: np.ndarray, dark_ink: bool | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(the ink side's levels, the paper's level under them, whether the source was inverted), the
    side (unless dark_ink gives it) and the paper's level measured from the strokes' widths
    (_polarity, _background)."""
    inverted, scale = _polarity(gray, dark_ink)
    ink = 255.0 - gray if inverted else gray.copy()
    background = _background(ink, scale)
    paper = _clean_paper(ink)
    if paper is not None:
        np.minimum(background, paper, out=background)
    return ink, background, inverted


def _sheet_on_desk(ink: np.ndarray, paper: float) -> tuple[np.ndarray, float] | None:
    """(where the desk is, the sheet's level as ink) where the image shows a sheet of paper darker
    than the white desk it lies on, the desk's white at the image's edges being paper (ink: 255 -
    grey); None for any other image.

    The sheet is the largest region darker than that white (by MIN_CONTRAST; for a sheet less than
    twice that darker, unevenly lit, by half its darkness, or its lighter side is cut off), covering
    SHEET_SHARE of the image or more, its level (SHEET_RIM pixels in from its rims) well below the
    darkest ink's (the ink is written on it); the strokes of a bold digit, which may cover as much in
    a tight crop, are as dark as the ink in from their soft rims. The desk takes two pixels of the
    sheet's blurred rim, lighter than the sheet, with it."""
    found = _largest_darker(ink, paper + MIN_CONTRAST)
    if found is None:
        return None
    sheet, level = found
    if level < paper + 2 * MIN_CONTRAST:  # a light sheet: its lighter parts fell below that cut
        sheet, level = _largest_darker(ink, (paper + level) / 2) or found
    if level - paper >= STROKE_LEVEL * (float(np.percentile(ink, 99.5)) - paper):
        return None
    return ndimage.binary_dilation(~sheet, iterations=2), level


def _dark_plate(gray: np.ndarray, ink: np.ndarray) -> np.ndarray | None:
    """Where a dark plate with light print lies on the white wall round it (with two pixels of its
    blurred rim); None where the image shows none.

    The plate is what _light_sheet_written_on finds in ink (255 - gray: the plate is the light sheet
    there, its print the dark writing), and it must be as dark as the darkest of the image (its level
    within MIN_CONTRAST of the darkest 1%): on a sheet darker than a white desk that _sheet_on_desk
    left alone, the writing is darker than the sheet."""
    darkest, plate_share = np.percentile(gray, [1, 100 * LIGHT_SHEET_SHARE])
    if plate_share > darkest + MIN_CONTRAST:  # not enough of the image that dark for a plate
        return None
    plate = _light_sheet_written_on(ink)
    if plate is None or float(np.median(gray[plate])) > darkest + MIN_CONTRAST:
        return None
    return ndimage.binary_dilation(plate, iterations=2)


def _written_light_sheet(gray: np.ndarray) -> bool:
    """Whether the image shows a sheet lighter than the dark desk round it, written on."""
    return _light_sheet_written_on(gray) is not None


def _light_sheet_written_on(gray: np.ndarray) -> np.ndarray | None:
    """Where the image shows a sheet lighter than the dark desk round it, written on: the sheet with
    its marks (holes filled); else None.

    The sheet is the largest region lighter than the desk at the image's edges (by MIN_CONTRAST,
    then by half the sheet's lead: grey ink is darker than that), LIGHT_SHEET_SHARE of the image or
    more, its outline a rectangle's (it fills SHEET_FILL of the smallest one round it; the outline
    where the sheet is lighter than the desk by half MIN_CONTRAST, so that a shadow over one side
    leaves it whole); the dark marks inside it are the strokes of writing: the largest MARK_LENGTH
    times longer than its strokes are wide (measures.stroke_width), and they narrower than
    MARK_WIDTH of the sheet. A light digit on dark (chalk, MNIST's own) holds only its loops'
    insides, mostly about as long as wide or as wide as the strokes round them, and its outline is
    round."""
    desk = float(np.median(_border(gray)))
    sheet = _largest_region(gray > desk + MIN_CONTRAST, LIGHT_SHEET_SHARE)
    if sheet is None:
        return None
    lighter = gray > (desk + float(np.median(gray[sheet]))) / 2
    sheet = _largest_region(lighter, LIGHT_SHEET_SHARE)
    if sheet is None:
        return None
    whole = ndimage.binary_fill_holes(sheet)
    labels, count = ndimage.label(whole & ~lighter)
    if not count:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    mark_width = stroke_width(labels == 1 + int(np.argmax(sizes)))
    sheet_width = 2.0 * float(ndimage.distance_transform_edt(around(whole)).max())
    if sizes.max() < MARK_LENGTH * mark_width**2 or mark_width >= MARK_WIDTH * sheet_width:
        return None
    outline = _largest_region(gray > desk + MIN_CONTRAST / 2, LIGHT_SHEET_SHARE)  # its shadowed side too
    if outline is None or _rectangle_fill(ndimage.binary_fill_holes(outline)) < SHEET_FILL:
        return None
    return whole


def _rectangle_fill(region: np.ndarray) -> float:
    """The share of the smallest rectangle round region, turned any way, that region fills: a sheet's
    outline is straight (also where the image's edges cut it), a digit's is round (an ellipse fills
    pi/4 of its rectangle). The smallest rectangle has a side along an edge of the region's convex hull."""
    rim = region & ~ndimage.binary_erosion(region)
    ys, xs = np.nonzero(rim)
    if len(xs) < 3:  # a pixel or two
        return 1.0
    points = np.column_stack([xs, ys]).astype(float)
    corners = points[ConvexHull(points, qhull_options="QJ").vertices]  # (joggled: a line's points are all on it)
    edges = np.roll(corners, -1, axis=0) - corners
    angles = np.arctan2(edges[:, 1], edges[:, 0])
    along = corners @ np.stack([np.cos(angles), np.sin(angles)])
    across = corners @ np.stack([-np.sin(angles), np.cos(angles)])
    areas = (np.ptp(along, axis=0) + 1.0) * (np.ptp(across, axis=0) + 1.0)
    return float(np.count_nonzero(region) / areas.min())


def _largest_region(mask: np.ndarray, share: float = SHEET_SHARE) -> np.ndarray | None:
    """The largest connected region of mask where it covers share of the image or more; else None."""
    if np.count_nonzero(mask) < share * mask.size:
        return None
    labels, _ = ndimage.label(mask)
    sizes = np.bincount(labels[mask])
    if sizes.max() < share * mask.size:
        return None
    return labels == int(np.argmax(sizes))


def _largest_darker(ink: np.ndarray, cut: float) -> tuple[np.ndarray, float] | None:
    """(the largest region of ink above cut, its level SHEET_RIM pixels in from its rims) where it
    covers SHEET_SHARE of the image or more; else None."""
    sheet = _largest_region(ink > cut)
    if sheet is None:
        return None
    inner = ndimage.binary_erosion(sheet, iterations=SHEET_RIM)
    return sheet, float(np.median(ink[inner if inner.any() else sheet]))


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


def _grain(gray: np.ndarray) -> float:
    """How grainy the image is: the median over its 3x3 blocks of their standard deviation, in grey
    levels (strokes and lines cover too few of them to move it; paper under even light, 0-2.5)."""
    h, w = (gray.shape[0] // 3) * 3, (gray.shape[1] // 3) * 3
    if not h or not w:
        return 0.0
    blocks = gray[:h, :w].reshape(h // 3, 3, w // 3, 3)
    # Half the blocks, as on a chessboard's black squares: as good a median, and every row and column
    # of blocks as often as the others (a ruled line's share of them stays its share of all).
    spread = [blocks[first::2, :, first::2].std(axis=(1, 3)).ravel() for first in (0, 1)]
    return float(np.median(np.concatenate(spread)))


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
    """(ink intensities in 0..1, the ink mask, whether the source was inverted) of a grey image.

    Where the side judged the ink's by its thin structures (a photo: no white border) shows no ink
    at all, the other side is looked at: in a large photo of a page with one small digit, the grain
    can outweigh the digit's strokes (benchmarks/real_world_set.py's `phone`)."""
    gray = np.asarray(gray, dtype=np.float32)
    if _grain(gray) > GRAIN:
        # A grainy photo (dim light, a small sensor): grain a pixel wide outweighs the strokes in the
        # spectrum and survives the threshold as specks, read as digits.
        gray = ndimage.gaussian_filter(gray, 1.0)
    ink, background, inverted, even = _ink_and_background(gray)
    try:
        return _ink_mask(ink, background, inverted, even)
    except ImageError:
        if _white_border(gray):
            raise
    return _ink_mask(*_measured_ink_and_background(gray, dark_ink=not inverted), False)


def _ink_mask(ink: np.ndarray, background: np.ndarray | float, inverted: bool, even: bool
              ) -> tuple[np.ndarray, np.ndarray, bool]:
    """ink_map's result from the ink side's levels and the paper's level under them."""
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
