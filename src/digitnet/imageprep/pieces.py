"""The ink's pieces -> digits: components kept or dropped, grouped, fragments joined, touching digits split."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from digitnet.imageprep.loading import ImageError
from digitnet.imageprep.measures import SPECK_SHARE, label_sums
from digitnet.imageprep.symbols import without_symbols

SPLIT_ASPECT = 1.25  # a group wider than this times its height may hold touching digits
FORCE_SPLIT_ASPECT = 1.6  # ... and one wider than this does, even with no clear valley between them
DOUBT_ASPECT = 0.8  # one left whole this wide for its height may still be two, a narrow one touching: read both ways
DOUBT_CUTS = 3  # ... cut at this many of its thinnest columns
SURROUNDINGS_THICKNESS = 2.0  # an edge region this many times thicker than the strokes is not ink
EDGE_SHARE = 0.02  # ... components this close to the edge (a share of its side) count as touching it
SHADE_SHARE = 0.08  # ... and this close, as near it, where light left by the background estimate is looked for
SURROUNDINGS_SIZE = 3.0  # ... nor one this many times taller or wider than the ink away from the edges
FAINT_SHARE = 0.6  # an edge component whose strongest ink is below this share of the digits' is light, not ink
SOFT_SHARE = 0.6  # ... so is one whose rim is less steep than this share of the sharpest digit's
DIM_SHARE = 0.9  # ... and whose strongest ink is below this share of the digits'
BLOB_LENGTH = 9.0  # ... or which is a blob: its area under this many times its thickness squared (strokes are long)
FRAGMENT_SHARE = 0.45  # a group less tall than this share of the tallest is part of a neighbour, not a digit
STRAY_SHARE = 0.5  # ... unless farther from it than this share of the tallest: then it is none
ENCLOSED_SHARE = 0.2  # a closed curve round a piece at least this share of its height tall is a frame, not ink
MARK_SHARE = 0.4  # a piece less tall and less wide than this share of the tallest is a mark: a period, a comma, a colon's dot
LEVEL_SLANT = 8.0  # degrees a row may slope and its digits be read as they are (training turns digits up to 12)
ROW_SLANT = 35.0  # ... digits whose centres slope further than this are no row to turn: one stands above another
NUMBER_SPAN = 1.5  # a number in a photo of a page is framed from its tallest piece no taller than this times the median


def components(mask: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, list[int], list[tuple]]:
    """(labels, the labels kept, their bounding slices): 8-connected components, specks dropped."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    index = np.arange(1, count + 1)
    slices = ndimage.find_objects(labels)
    outside = _edge_regions_not_ink(labels, index, slices, mask, intensity)
    mass = label_sums(labels, count, intensity)
    mass[outside] = 0
    kept = [i + 1 for i in range(count) if mass[i] > 0 and mass[i] >= SPECK_SHARE * mass.max()]
    if not kept:
        raise ImageError("no digit found: the image holds only lines, boxes or its surroundings")
    kept = _without_frames(labels, kept, slices)
    return labels, kept, [slices[i - 1] for i in kept]


def _without_frames(labels: np.ndarray, kept: list[int], slices: list[tuple]) -> list[int]:
    """kept without the frames round the number: a closed curve (a circle drawn round it, a plate's
    or a label's frame) whose inside holds nearly all of another kept piece, one at least ENCLOSED_SHARE
    of the curve's height tall and no mark beside the other pieces (under MARK_SHARE of the tallest:
    the dot of a dotted zero, 0.16-0.18 of its height, is not a digit it frames). Where nothing else
    is kept, nothing is a frame."""
    boxes = np.array([[r.start, r.stop, c.start, c.stop] for r, c in (slices[k - 1] for k in kept)])
    heights = boxes[:, 1] - boxes[:, 0]
    frames = set()
    for a, k in enumerate(kept):
        top, bottom, left, right = boxes[a]
        within = ((boxes[:, 0] >= top) & (boxes[:, 1] <= bottom) & (boxes[:, 2] >= left) & (boxes[:, 3] <= right))
        within[a] = False
        others_tallest = np.delete(heights, a).max(initial=0)
        tall = heights >= max(ENCLOSED_SHARE * heights[a], MARK_SHARE * others_tallest)  # not a dotted zero's dot
        candidates = [kept[b] for b in np.flatnonzero(within & tall) if kept[b] not in frames]
        if not candidates:
            continue
        region = labels[top:bottom, left:right]
        own = region == k
        inside = ndimage.binary_fill_holes(own) & ~own
        for j in candidates:
            piece = region == j
            if np.count_nonzero(piece & inside) >= 0.9 * np.count_nonzero(piece):
                frames.add(k)
                break
    return [k for k in kept if k not in frames] if len(frames) < len(kept) else kept


def _edge_regions_not_ink(labels: np.ndarray, index: np.ndarray, slices: list[tuple], mask: np.ndarray,
                          intensity: np.ndarray) -> np.ndarray:
    """Which components touching the image's edge are not ink, judged against those that do not
    touch it:
    - what lies beyond the paper (a table, a dark frame): far thicker than any of their strokes.
      Strokes of a digit cropped tightly touch the edge too, but are no thicker than the others;
    - the paper's edge or a frame around a number that fills a small part of the photo: far larger
      than any of them;
    and which components near the edge (within SHADE_SHARE of its side) are light, not ink, judged
    against those farther in: their strongest part far fainter than theirs, or a little fainter and
    with a soft rim or a blob's shape (its area a few times its thickness squared). Ink is dark all
    along a stroke, long and with a sharp edge; what the background estimate leaves near an edge (a
    shadow's end, or the wedge between a shadow's edge and the image's, the darker rim of the paper
    in a photo, the dark corners of a photo beside a tilted sheet's edge, with the table or the desk's
    strip between them and the edge) is not, and would read as a digit more."""
    on_edge, near_edge = _within(labels, len(index), EDGE_SHARE), _within(labels, len(index), SHADE_SHARE)
    outside = np.zeros(len(index), dtype=bool)
    if not near_edge.any():
        return outside
    thickness = ndimage.maximum(ndimage.distance_transform_edt(mask), labels, index=index)
    if on_edge.any() and not on_edge.all():
        inside = ~on_edge
        thick = thickness > SURROUNDINGS_THICKNESS * thickness[inside].max()
        sizes = np.array([max(rows.stop - rows.start, cols.stop - cols.start) for rows, cols in slices])
        large = sizes > SURROUNDINGS_SIZE * sizes[inside].max()
        outside |= on_edge & (thick | large)
    if not near_edge.all():
        inside = ~near_edge
        strongest = ndimage.labeled_comprehension(intensity, labels, index, lambda v: np.percentile(v, 90), float, 0.0)
        faint = strongest < FAINT_SHARE * strongest[inside].max()
        slopes = _rim_slopes(labels, index, mask, intensity)
        dim = strongest < DIM_SHARE * strongest[inside].max()
        soft = slopes < SOFT_SHARE * slopes[inside].max()
        blob = label_sums(labels, len(index)) < BLOB_LENGTH * np.asarray(thickness) ** 2
        outside |= near_edge & (faint | (dim & (soft | blob)))
    return outside


def _within(labels: np.ndarray, count: int, share: float) -> np.ndarray:
    """Which of the count labelled components come within share of the image's longer side of its edge."""
    near = np.zeros(count + 1, dtype=bool)
    reach = max(1, round(share * max(labels.shape)))
    for band in (labels[:reach], labels[-reach:], labels[:, :reach], labels[:, -reach:]):
        near[band] = True
    return near[1:]


def _rim_slopes(labels: np.ndarray, index: np.ndarray, mask: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """How steeply each component's intensity falls at its rim (the mean slope there; where the
    image's edge cuts it off is no rim): ink has an edge as sharp as the photo's focus allows, what
    is left of a shading rises gently over many pixels. Infinite for a component with no rim."""
    rim = labels * (mask & ~ndimage.binary_erosion(mask, border_value=1))
    slope = np.hypot(ndimage.sobel(intensity, 0), ndimage.sobel(intensity, 1))
    total = label_sums(rim, len(index), slope)
    count = label_sums(rim, len(index))
    return np.divide(total, count, out=np.full(len(index), np.inf), where=count > 0)


def digit_groups(labels: np.ndarray, kept: list[int], slices: list[tuple]) -> list[list]:
    """Components -> digits, left to right: [labels, first column, last column + 1, top row,
    bottom row + 1]. Pieces that overlap horizontally by half the narrower one's width are one digit
    (a broken stroke); a piece far shorter than the row's digits (the detached bar of a 5, a stray
    arc) joins its nearest neighbour instead of counting as a digit, or, lying far from it (a speck,
    what a shadow's edge leaves), is no part of any. A group of marks alone (pieces small both ways:
    a period, a comma, a colon's two dots) is punctuation, no digit nor part of one, and so are the
    symbols of a printed row (symbols.without_symbols)."""
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
    return without_symbols(_merge_fragments(_without_punctuation(groups, kept, slices, tallest)), labels)


def _without_punctuation(groups: list[list], kept: list[int], slices: list[tuple], tallest: int) -> list[list]:
    """groups without those of marks alone (pieces less tall and less wide than MARK_SHARE of the
    tallest): a colon's two dots, or one mark in the row's lower half (a period, a comma). One mark
    higher up is a digit's broken-off arm (a 4's), and joins it."""
    marks = {label for label, (rows, columns) in zip(kept, slices)
             if max(rows.stop - rows.start, columns.stop - columns.start) < MARK_SHARE * tallest}
    punctuation = [set(g[0]) <= marks for g in groups]
    if not any(punctuation):
        return groups
    digits = [g for g, marked in zip(groups, punctuation) if not marked]
    middle = (np.median([g[3] for g in digits]) + np.median([g[4] for g in digits])) / 2
    return [g for g, marked in zip(groups, punctuation) if not marked or (len(g[0]) == 1 and g[3] < middle)]


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
    return _span(np.flatnonzero(mask.any(axis=1)))


def _span(rows: np.ndarray) -> int:
    """How many rows from the first to the last of rows (row numbers of ink, in any order)."""
    return int(rows.max() - rows.min() + 1) if len(rows) else 0


def split_touching(mask: np.ndarray, x0: int, x1: int, row_height: float = 0.0) -> list[tuple[int, int]]:
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
    return split_touching(mask, x0, x0 + cut, row_height) + split_touching(mask, x0 + cut, x1, row_height)


def doubtful_cuts(mask: np.ndarray, x0: int, x1: int, row_height: float = 0.0, turn: float = 0.0
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The halves (masks) that mask[:, x0:x1], one digit to split_touching, might part into if it were two
    touching digits (a narrow 1 against a 7, too little wider than tall to split for its shape alone):
    where it is at least DOUBT_ASPECT as wide as tall (its height or the row's, as for split_touching),
    cut at its DOUBT_CUTS thinnest columns between a fifth and four fifths of its width that are local
    minima of its columns' ink and leave digits' height (FRAGMENT_SHARE) on both sides; none where it
    cannot be two. Columns run across the row turned by turn degrees (row_turn's): in a row
    photographed turned, the line between two touching digits is turned with them."""
    rows, cols = np.nonzero(mask[:, x0:x1])
    own = _span(rows)
    width = x1 - x0
    height = max(own, row_height)
    if not own or width < DOUBT_ASPECT * height or width < 8:
        return []
    angle = math.radians(turn)
    along = cols * math.cos(angle) + (rows - rows.mean()) * math.sin(angle) if turn else cols
    bins = np.floor(along).astype(int)
    bins -= min(0, int(bins.min()))
    count = max(width, int(bins.max()) + 1)
    columns = ndimage.uniform_filter1d(np.bincount(bins, minlength=count).astype(float), 3)
    inner = np.arange(count // 5, count - count // 5)
    minima = [c for c in inner if columns[c] <= columns[c - 1] and columns[c] <= columns[c + 1]]
    cuts = []
    for c in sorted(minima, key=lambda c: columns[c]):
        if min(_span(rows[bins < c]), _span(rows[bins >= c])) >= FRAGMENT_SHARE * height \
                and all(abs(c - other) > count // 10 for other in cuts):
            cuts.append(c)
        if len(cuts) == DOUBT_CUTS:
            break
    halves = []
    for c in cuts:
        pair = np.zeros_like(mask), np.zeros_like(mask)
        for half, side in zip(pair, (bins < c, bins >= c)):
            half[rows[side], x0 + cols[side]] = True
        halves.append(pair)
    return halves


def number_box(slices: list[tuple]) -> tuple[int, int, int, int]:
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


def row_turn(centres: list[tuple[float, float]]) -> float:
    """The degrees (counter-clockwise) by which a row's digits, their centres (x, y) left to right, are
    turned to slope no more than LEVEL_SLANT: a number photographed with the camera turned, or written
    uphill. The slope is the centres' least-squares line; within LEVEL_SLANT of level nothing is
    turned, and beyond it only the slope past LEVEL_SLANT, so that digits written up and down along a
    level row (two digits give a slope of some degrees) stay as the models learned them, and a
    slope's estimate a little over the limit turns them a little, not all at once. 0 for one digit."""
    if len(centres) < 2:
        return 0.0
    xs, ys = np.array(centres, dtype=float).T
    if np.ptp(xs) == 0:
        return 0.0
    slant = math.degrees(math.atan(np.polyfit(xs, ys, 1)[0]))  # rows grow downwards: > 0 falls to the right
    if abs(slant) > ROW_SLANT:
        return 0.0
    return math.copysign(max(0.0, abs(slant) - LEVEL_SLANT), slant)
