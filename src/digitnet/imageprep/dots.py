"""Dot-matrix print (a receipt, a ticket, a display of lamps): the dots of each digit joined into strokes.

Each dot is a piece of ink of its own (or a few blurred together, a short chain), so a digit of 5 x 7
dots would be read as a dozen marks. Ink in many short pieces, a fifth of them single round dots or more
(seven segments are bars, letters longer), none much thicker than the others, in rows a regular distance
apart (the pitch: from single dots' centres to their neighbours' ink, or the first peak of the
autocorrelation of the ink's row profile), is such print. Every dot is grown past its diagonal neighbour
(1.41 pitches away) but short of the next digit's (a blank column between digits: 2 pitches), which
joins each digit's dots, then thinned to strokes about a pitch wide; the gaps filled take the dots'
intensity. Unless the join leaves far fewer pieces, most of the ink in pieces several dots tall, the
ink is left as it was: specks of grain beside thicker strokes, specks scattered far apart, a dotted
line, a few periods. Dots blurred so far into chains that under a fifth stand alone are not joined.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, spatial

MIN_PIECES = 8  # ink in fewer pieces than this is no dot-matrix print
MIN_DOTS = 6  # the pitch is measured between single dots where there are this many or more
SHORT = 4.5  # a piece no longer than this many times the ink's thickness is a dot or a short chain ...
SHORT_SHARE = 0.7  # ... and this share of the pieces (or more) are
MAX_THICKNESS = 1.7  # no piece thicker than this many times the median piece
SINGLE = 1.5  # a piece no longer than this many times the thickness is a single dot, if round: ...
ROUND = 0.7  # ... as wide as tall within this share ...
FILL = 0.6  # ... filling this share of its box or more (a disk: 0.79; a small one's pixels more) ...
SINGLE_SHARE = 0.2  # ... and this share of the pieces (or more) are
MAX_PITCH = 3.5  # dots (their centres, or rows of them) at most this many times the thickness apart
REACH = 0.85  # each dot grown to this many pitches from its centre: past a diagonal neighbour's, short of 1
THIN = 0.35  # ... then thinned by this many pitches
JOINED_SHARE = 1 / 3  # the pieces joined are this share of the dots and chains or fewer
MIN_TALL = 4.0  # pieces the join made at least this many times as tall as the thickness (several rows of dots) ...
TALL_SHARE = 0.6  # ... hold this share of their ink or more


def joined_dots(mask: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(mask, intensity) with the dots of dot-matrix print joined into strokes; None for any other ink."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count < MIN_PIECES:
        return None
    found = _dots(mask, labels, count)
    if found is None:
        return None
    dot, singles = found
    # a single dot's nearest neighbour may lie across a diagonal, where its row's and column's run into
    # chains; the rows' profile blurs where the row slopes: the nearer of the two where both are found
    pitches = [pitch for pitch in (_dot_pitch(mask, labels, singles, dot), _row_pitch(mask, dot)) if pitch]
    if not pitches:
        return None
    pitch = min(pitches)
    # grown, then thinned, by disks: through the distance to the nearest paper or ink, at any radius
    grown = ndimage.distance_transform_edt(~mask) <= max(1.0, REACH * pitch - dot / 2)
    joined = (ndimage.distance_transform_edt(grown) > THIN * pitch) | mask
    if not _joined_into_digits(joined, mask, labels, count, dot):
        return None
    level = float(np.median(intensity[mask]))
    return joined, np.where(joined & ~mask, level, intensity)


def _dots(mask: np.ndarray, labels: np.ndarray, count: int) -> tuple[float, np.ndarray] | None:
    """(the dots' thickness, the labels of the single round dots) where the count pieces of ink look like
    dot-matrix print's: most short, a share single round dots, none much thicker than the rest."""
    index = np.arange(1, count + 1)
    boxes = np.array([(rows.stop - rows.start, cols.stop - cols.start) for rows, cols in ndimage.find_objects(labels)])
    sides = boxes.max(axis=1)
    thickness = 2 * ndimage.maximum(ndimage.distance_transform_edt(mask), labels, index)
    dot = float(np.median(thickness))
    thickest = max(MAX_THICKNESS * dot, dot + 2)  # thicknesses of a few pixels are measured a pixel or two apart
    if thickness.max() > thickest or np.count_nonzero(sides <= SHORT * dot) < SHORT_SHARE * count:
        return None
    round_ = (boxes.min(axis=1) >= ROUND * sides) & (ndimage.sum_labels(mask, labels, index) >= FILL * boxes.prod(axis=1))
    singles = index[(sides <= SINGLE * dot) & round_]
    if len(singles) < SINGLE_SHARE * count:  # bars, not dots: seven segments
        return None
    return dot, singles


def _joined_into_digits(joined: np.ndarray, mask: np.ndarray, labels: np.ndarray, count: int, dot: float) -> bool:
    """Whether the join left JOINED_SHARE of the count pieces or fewer, and the pieces it made of two or
    more hold TALL_SHARE of their ink in pieces MIN_TALL dots tall or taller (a row of dots does not)."""
    joined_labels, joined_count = ndimage.label(joined, structure=np.ones((3, 3)))
    if joined_count > JOINED_SHARE * count:
        return False
    parts = np.bincount(ndimage.maximum(joined_labels, labels, np.arange(1, count + 1)).astype(int),
                        minlength=joined_count + 1)[1:]
    heights = np.array([rows.stop - rows.start for rows, _ in ndimage.find_objects(joined_labels)])
    ink = ndimage.sum_labels(mask, joined_labels, np.arange(1, joined_count + 1)) * (parts >= 2)
    return bool(ink[heights >= MIN_TALL * dot].sum() >= TALL_SHARE * ink.sum())


def _dot_pitch(mask: np.ndarray, labels: np.ndarray, dots: np.ndarray, dot: float) -> float | None:
    """Half a dot more than the median distance from a single dot's centre (labels dots) to the nearest
    ink of another piece (a dot or a chain: its neighbour in the row or column), where there are at least
    MIN_DOTS of them and that is at most MAX_PITCH dots: unlike the rows' profile, unmoved by a row that
    slopes."""
    if len(dots) < MIN_DOTS:
        return None
    rims = np.argwhere(mask & ~ndimage.binary_erosion(mask))
    owners = labels[rims[:, 0], rims[:, 1]]
    centres = np.array(ndimage.center_of_mass(mask, labels, dots))
    # enough of the nearest rim pixels to pass the dot's own (about pi dot of them)
    distances, nearest = spatial.cKDTree(rims).query(centres, k=min(len(rims), int(4 * dot) + 8))
    others = np.where(owners[nearest] != dots[:, None], distances, np.inf).min(axis=1)
    if not np.isfinite(others).any():
        return None
    pitch = float(np.median(others[np.isfinite(others)])) + dot / 2
    return pitch if pitch <= MAX_PITCH * dot else None


def _row_pitch(mask: np.ndarray, dot: float) -> float | None:
    """The distance between rows of dots: the first peak of the autocorrelation of the ink's row profile
    between one and MAX_PITCH dots; None where there is none (no rows of dots). Dots blurred into
    their neighbours are as thick as their pitch: the lags start a pixel short of a dot, so that a peak
    at one dot is a peak, not the first lag."""
    profile = mask.sum(axis=1).astype(np.float64)
    profile -= profile.mean()
    lags = np.arange(max(2, int(dot) - 1), int(MAX_PITCH * dot) + 2)
    lags = lags[lags < len(profile) - 1]
    if len(lags) < 3:
        return None
    correlation = np.array([np.dot(profile[:-lag], profile[lag:]) for lag in lags])
    peaks = np.flatnonzero((correlation[1:-1] > correlation[:-2]) & (correlation[1:-1] >= correlation[2:])
                           & (correlation[1:-1] > 0)) + 1
    return float(lags[peaks[0]]) if len(peaks) else None
