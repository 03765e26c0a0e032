"""Straight lines that are not digits (rulings, underlines, the boxes of a form), taken out of the ink."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digitnet.imageprep.measures import SPECK_SHARE, extent, label_sums, stroke_width

LINE_STROKES, MIN_LINE = 6, 8  # a straight run of ink this many stroke widths long (and pixels) may be a line
RULING_SPAN = 1.5  # a horizontal line this many times longer than the digits are tall is not part of one
MAX_TILT = 0.25  # ... and rises at most this much over its length
PAST_SHARE = 0.25  # ... and, where it touches digits, reaches past them on both sides by this share of their height,
UNDER_GAP = 0.05  # ... a line on its own this share of one digit's height below it and past it on both sides underlines it
UNDER_SHARE = 0.1  # ... or lies under them (all but this share of their ink above it) and past them by this share
FAINT_LINE = 0.1  # ink this faint (intensity) may still be part of a box's thin printed lines
ALONE_SHARE = 1.25  # a piece of ink with at most this much more ink than the straight line in it is that line alone
FRAME_END = 0.1  # a box's sides run across or down it to within this share of its size of either end
HELD_SHARE = 0.4  # ... and hold a piece of ink at least this share of their height tall: a digit
STROKE_SIDE = 0.5  # ... and no more than this share of their pixels lie beside other ink (a bold 8's inner edges do)
MAX_BEND = 0.15  # ... and are straight: no wider the other way than this share of their length
MAX_SKEW, SKEW_STEP = 8.0, 0.5  # degrees a photographed page's lines may be turned by, looked for in these steps
SKEW_PIXELS = 3000  # ... counting about this many of the ink's pixels
LEVEL_SKEW = np.tan(np.radians(1.0))  # ... less turned than this, the runs' sideways step follows the lines
SKEW_GAIN = 1.25  # most ink on one turned line, this many times as much as on one level line: a line, not a blob


def without_rulings(mask: np.ndarray, intensity: np.ndarray | None = None) -> np.ndarray:
    """The ink mask without the straight lines printed or drawn around the digits: rulings (an
    underline, the lines of ruled paper, a strike-through) and the boxes a form asks for one digit in.
    Where a digit's stroke crosses a removed line, the crossing stays, so the stroke stays whole.

    A straight run of ink is a line only where it cannot be part of a digit: a horizontal one longer than
    RULING_SPAN times the digits' height (no digit is that much wider than tall) or lying apart under or
    over two digits or more, or under one and past it on both sides, or the sides of a box with other
    ink inside (a square 0 or an LCD-style 8 has nothing else inside, and stays). Straight strokes of
    digits (a 1, the bar of a 7 or a 4) are shorter, and stay. With intensity (ink_map's), boxes are
    looked for in fainter ink too (above FAINT_LINE): the thin printed lines of a form, smoothed, fall
    partly below the ink's threshold, and what is left of them (a row of boxes' dividers, where two
    sides meet) would read as 1s. Where a photo turned the page a little, the runs follow its lines
    (_skews)."""
    seen = mask if intensity is None else mask | (intensity > FAINT_LINE)
    rows, cols = extent(seen)
    if not len(rows):
        return mask
    # the ink's extent and a pixel of paper round it (the distances to paper stay those of the whole mask)
    box = (slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2))
    ink, faint = mask[box], seen[box]
    if not ink.any():
        return mask
    length = max(MIN_LINE, round(LINE_STROKES * stroke_width(ink))) | 1  # odd: the filters' windows are centred
    slopes = _skews(faint, length)
    faint_across = _straight_runs(faint, length, axis=1, slope=slopes[0])
    if not faint_across.any():
        return mask
    boxes = _frames(ink, faint_across, _straight_runs(faint, length, axis=0, slope=slopes[1]), length, slopes)
    lines = (boxes | _long_rows(ink, _straight_runs(ink, length, axis=1, slope=slopes[0]))) & ink
    if not lines.any():
        return mask
    kept = ink & ~lines
    thickness = 2 * int(np.ceil(ndimage.distance_transform_edt(lines).max())) + 2
    crossings = (ndimage.binary_closing(kept, structure=np.ones((thickness, 1), dtype=bool))
                 | ndimage.binary_closing(kept, structure=np.ones((1, thickness), dtype=bool)))
    clean = mask.copy()
    clean[box] = kept | (lines & crossings)
    return clean


def _skews(mask: np.ndarray, length: int) -> tuple[float, float]:
    """The slopes of the straight lines across (rows down per column) and down (columns right per row)
    where a photo turned the page: the turn (within MAX_SKEW degrees, to SKEW_STEP) along which most of
    the ink's top edges lie on one line (_Profile), if that line is as long as a run (length pixels),
    SKEW_GAIN times the best level line and past LEVEL_SKEW; else 0. The lines down are turned the
    other way as much, or not at all (a photo taken at a slant), whichever holds more on one line; they
    are not searched for on their own, as a box's short sides stand out less from a digit's strokes.
    Turns are tried 4 steps apart, then by single steps round the best."""
    across = _Profile(mask)
    coarse = np.arange(-MAX_SKEW, MAX_SKEW + SKEW_STEP / 2, 4 * SKEW_STEP)
    peaks = {degrees: across.peak(degrees) for degrees in coarse}
    centre = max(peaks, key=peaks.get)
    for degrees in centre + SKEW_STEP * np.array([-2, -1, 1, 2]):
        if abs(degrees) <= MAX_SKEW:
            peaks[degrees] = across.peak(degrees)
    best = max(peaks, key=peaks.get)
    slope = float(np.tan(np.radians(best)))
    if peaks[best] < max(length, SKEW_GAIN * peaks[0.0]) or abs(slope) < LEVEL_SKEW:
        return 0.0, 0.0
    down = _Profile(mask.T)
    return slope, (-slope if down.peak(-best) > down.peak(0.0) else 0.0)


class _Profile:
    """The top edges of a mask's ink (its pixels with paper above them) counted on each line across it
    (rows, turned by some degrees); only every stride-th column, to count fewer (about SKEW_PIXELS).
    A line's top edge lies on one line; a blob's or a bold stroke's, curved or slanted, on many."""

    def __init__(self, mask: np.ndarray):
        tops = mask.copy()
        tops[1:] &= ~mask[:-1]
        self.stride = max(1, np.count_nonzero(tops) // SKEW_PIXELS)
        self.rows, columns = np.nonzero(tops[:, :: self.stride])
        self.columns = columns * self.stride
        self.positions = np.arange(mask.shape[1])
        self.offset = int(np.ceil(np.tan(np.radians(MAX_SKEW)) * mask.shape[1]))

    def peak(self, degrees: float) -> int:
        """The most pixels on one line turned by degrees (row - slope * column constant, to the pixel)."""
        shifts = np.rint(np.tan(np.radians(degrees)) * self.positions).astype(np.intp) - self.offset
        return self.stride * int(np.bincount(self.rows - np.take(shifts, self.columns)).max(initial=0))


def _straight_runs(mask: np.ndarray, length: int, axis: int, slope: float = 0.0) -> np.ndarray:
    """The pixels of mask in runs of at least length (odd) along axis, where a run may step a pixel
    sideways (a line photographed at a slight tilt): a binary opening by a straight line of the mask
    widened by a pixel each side, as a running minimum then maximum (whose cost does not grow with the
    length), then only the mask's own pixels. With slope (of the lines along axis, as _skews measures
    it) the runs follow it: the mask is sheared straight, whole pixels at a time, and back."""
    if slope and axis == 0:
        return _straight_runs(mask.T, length, 1, slope).T
    if slope:
        rows, columns = _sheared(mask.shape, slope), np.arange(mask.shape[1])
        straight = np.zeros((int(rows.max()) + 1, mask.shape[1]), dtype=bool)
        straight[rows, columns] = mask
        return _straight_runs(straight, length, 1)[rows, columns]
    wide = ndimage.maximum_filter1d(mask.view(np.uint8), 3, axis=1 - axis)
    eroded = ndimage.minimum_filter1d(wide, length, axis=axis, mode="constant", cval=0)
    return ndimage.maximum_filter1d(eroded, length, axis=axis, mode="constant", cval=0).astype(bool) & mask


def _sheared(shape: tuple[int, int], slope: float) -> np.ndarray:
    """The row each pixel of an array of shape moves to when its columns move up by slope rows a column
    (to whole pixels, the topmost row 0): lines falling by slope lie level."""
    shifts = np.rint(slope * np.arange(shape[1])).astype(np.intp)
    return np.arange(shape[0])[:, None] - (shifts - shifts.max())[None, :]


def _long_rows(mask: np.ndarray, horizontal: np.ndarray) -> np.ndarray:
    """Horizontal straight lines that are not part of a digit: longer than RULING_SPAN times the height
    of the ink around them (the piece of ink the line belongs to: a digit whose bar it is, or the
    digits an underline touches; or, if taller, the tallest piece left when the line is taken away),
    or a line on its own under or over two digits or more, as long as they are tall, or under one
    digit and past it on both sides (_underlines). Each line's work is done within its own piece's box
    (a page of text holds hundreds of short straight runs)."""
    pieces, count = ndimage.label(mask, structure=np.ones((3, 3)))
    boxes = ndimage.find_objects(pieces)
    mass = label_sums(pieces, count)
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
            spanned = [k for k in digits if k != own
                       and min(boxes[k][1].stop, cols.stop) - max(boxes[k][1].start, cols.start) >= 0.5 * _width(boxes[k])]
            upright = [k for k in spanned if heights[k] > MAX_TILT * _width(boxes[k])]  # (not another line)
            if ((len(spanned) >= 2 and length >= max(heights[k] for k in spanned))
                    or (len(upright) == 1 and _underlines(boxes[upright[0]], rows, cols))):
                rulings.append(i + 1)
    return np.isin(lines, rulings)


def _width(box: tuple[slice, slice]) -> int:
    return box[1].stop - box[1].start


def _underlines(digit: tuple[slice, slice], rows: slice, cols: slice) -> bool:
    """Whether a line on its own (its rows and columns) underlines one digit (its box): under all of it
    and past it on both sides, by UNDER_GAP of its height each way. A straight stroke that broke off a
    digit (the base of a 2) lies at its foot and ends where the digit does on one side at least."""
    height = digit[0].stop - digit[0].start
    margin = UNDER_GAP * height
    return (rows.start >= digit[0].stop + margin
            and cols.start <= digit[1].start - margin and cols.stop >= digit[1].stop + margin)


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
    rows, cols = extent(line)
    rest_rows, rest_cols = extent(rest)
    height = rest_rows[-1] - rest_rows[0] + 1
    if rest[rows[-1] + 1 :].sum() <= UNDER_SHARE * total:  # an underline
        margin = UNDER_SHARE * height
        return cols[0] <= rest_cols[0] - margin or cols[-1] >= rest_cols[-1] + margin
    margin = PAST_SHARE * height
    return cols[0] <= rest_cols[0] - margin and cols[-1] >= rest_cols[-1] + margin


def _tallest_without(rest: np.ndarray, heights: np.ndarray, mass: np.ndarray) -> int:
    """The height of the tallest piece of ink once a line is taken out of its piece, specks (as
    components drops them) aside; 0 if none: the other pieces (their heights and masses) and what
    is left of the line's own piece (rest, within its box)."""
    labels, count = ndimage.label(rest, structure=np.ones((3, 3)))
    if count:
        heights = np.concatenate([heights, [rows.stop - rows.start for rows, _ in ndimage.find_objects(labels)]])
        mass = np.concatenate([mass, label_sums(labels, count)])
    if not len(mass):
        return 0
    return int(heights[mass >= SPECK_SHARE * mass.max()].max())


def _frames(mask: np.ndarray, horizontal: np.ndarray, vertical: np.ndarray, length: int,
            slopes: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The lines of boxes drawn round ink. A piece of straight lines (horizontal and vertical runs of at
    least length) is a box, or a row of boxes, where it holds a line across it (_long_parts) near its top
    and another near its bottom and no third (more make a grid: squared paper), a line down it near its
    left and another near its right, and ink inside that is none of these lines (a square 0 or an
    LCD-style 8 is nothing but such lines, and stays) and tall enough to be a digit (_holds_a_digit),
    and whose lines are no strokes' edges (_within_strokes). Its lines across or down it go: the sides,
    and the dividers of a row of boxes; shorter straight strokes touching them (a 1 written against a
    side) stay."""
    labels, _ = ndimage.label(horizontal | vertical, structure=np.ones((3, 3)))
    frames = np.zeros_like(mask)
    for i, (rows, cols) in enumerate(ndimage.find_objects(labels)):
        piece = labels[rows, cols] == i + 1
        h, w = piece.shape
        if min(h, w) < length:
            continue
        across = _long_parts(horizontal[rows, cols] & piece, axis=1, slopes=slopes)
        down = _long_parts(vertical[rows, cols] & piece, axis=0, slopes=slopes, across=across)
        if not (_near_both_ends(across.any(axis=1)) and _near_both_ends(down.any(axis=0))):
            continue
        if ndimage.label(across, structure=np.ones((3, 3)))[1] > 2:  # a grid, not a box or a row of boxes
            continue
        inside = mask[rows, cols] & ~(across | down)
        if inside.sum() >= length and not _within_strokes(mask[rows, cols], across, down) and _holds_a_digit(inside):
            frames[rows, cols] |= across | down
    return frames


def _within_strokes(mask: np.ndarray, across: np.ndarray, down: np.ndarray) -> bool:
    """Whether the would-be box's lines run along the inside of thick strokes: more than STROKE_SIDE of
    their pixels beside other ink (the rest of a stroke) all along. A box's lines have paper on both
    sides, but where a digit touches them; the straight inner edges of a bold 8's loops, with its
    flattened top and bottom, look like a box, the rest of its strokes beside them."""
    lines = across | down
    beside = ndimage.binary_dilation(mask & ~lines) & lines
    return np.count_nonzero(beside) > STROKE_SIDE * np.count_nonzero(lines)


def _holds_a_digit(inside: np.ndarray) -> bool:
    """Whether the ink inside a would-be box has a piece at least HELD_SHARE of the box's height tall: a
    digit written in it. A thin 8 whose loops' sides and flattened ends are the box has only the short
    bits of its waist inside."""
    pieces, _ = ndimage.label(inside, structure=np.ones((3, 3)))
    heights = [rows.stop - rows.start for rows, _ in ndimage.find_objects(pieces)]
    return max(heights, default=0) >= HELD_SHARE * inside.shape[0]


def _long_parts(runs: np.ndarray, axis: int, slopes: tuple[float, float] = (0.0, 0.0), across: np.ndarray | None = None
                ) -> np.ndarray:
    """The connected parts of runs that run along axis (1: across, 0: down) from one side of runs to the
    other (to within FRAME_END of its size: a box's sides meet at its corners; a digit's stem against
    a box too small for it does not) and are straight: no wider the other way than MAX_BEND of their
    length (an arc of a small 8 or 0 made of short runs is not a side of a box). With slopes (_skews',
    across and down) a turned line is as much wider, and a line across may end as much short of the
    sides as the lines down lean over the height. With across (the lines across, for parts down), a part
    down need only reach from the topmost line across its columns to the lowest: in a photographed
    row of boxes turned a little, each side is shorter than the row is tall by the row's width times
    the turn."""
    size = runs.shape[axis]
    bend = abs(slopes[1 - axis])  # these lines' slope
    shift = 0 if across is not None else abs(slopes[axis]) * runs.shape[1 - axis]  # the other lines' lean
    reach = FRAME_END * size + shift
    labels, _ = ndimage.label(runs, structure=np.ones((3, 3)))
    long = []
    for i, box in enumerate(ndimage.find_objects(labels)):
        along, other = box[axis].stop - box[axis].start, box[1 - axis].stop - box[1 - axis].start
        first, last = _ends(across, box[1]) if across is not None else (0, size)
        if (box[axis].start <= first + reach and box[axis].stop >= last - reach
                and other <= (MAX_BEND + bend) * along):
            long.append(i + 1)
    return np.isin(labels, long)


def _ends(across: np.ndarray, cols: slice) -> tuple[int, int]:
    """The first row of the lines across within cols and the row after their last; the whole height
    where none is there."""
    rows = np.flatnonzero(across[:, cols].any(axis=1))
    return (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, across.shape[0])


def _near_both_ends(occupied: np.ndarray) -> bool:
    """Whether occupied (along one axis) has something in its first quarter and in its last."""
    where = np.flatnonzero(occupied)
    return len(where) > 0 and where[0] < len(occupied) / 4 and where[-1] >= 3 * len(occupied) / 4
