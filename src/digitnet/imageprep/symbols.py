"""Symbols beside the digits of a printed row (a bracket, a dollar, a plus, a number or percent sign, a
dash, a comma a digit took in): found by their shape against the row's lines, and left out."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from digitnet.imageprep.measures import extent

SYMBOL_ROW = 10  # rows of digits fewer pixels tall are not looked at for symbols (a page's first look)
PRINTED_LINE = 0.04  # digits whose tops and bottoms lie this close (a share of their height) to the row's are printed
DESCENT = 0.12  # in a printed row, a piece reaching this far below its digits and up to their tops is a symbol: ( ) $ /
SYMBOL_WIDTH = 0.9  # ... no wider than this (an old-style figure descends too, from a lower top, and wider)
BRACKET_WIDTH = 0.5  # ... and a piece so descending within a digit's group, no wider than this, a bracket it took in
FLOAT = 0.12  # ... and so is one this far off both of the row's lines, inside them: - = < > ~
SLASH_SLANT = 15.0  # a percent sign's stroke slants further than this many degrees from upright ...
SLASH_WIDTH = 0.18  # ... and is straight: its ink's spread across under this share of its spread along
RING_SHARE = 0.6  # ... and its rings, standing apart, are less tall than this share of the row
HASH_BAR = 0.85  # a number sign's bars ink this share of its width, and this share of its other rows hold two strokes
HASH_ENDS = 0.1  # ... its strokes reach past its bars by this share of its height or more, up and down
CORNER_INK = 0.05  # a plus sign has no more than this share of its ink away from its two bars


def without_symbols(groups: list[list], labels: np.ndarray) -> list[list]:
    """groups without the symbols of a printed row. Where at least two groups lie on the row's lines
    (their median top and bottom, within PRINTED_LINE of the row's height), these are symbols: a group
    that reaches from the top line to DESCENT below the bottom one, or past both lines by twice
    PRINTED_LINE (a bracket, a dollar's bar, some fonts' slash: a printed digit never does), and is no
    wider than SYMBOL_WIDTH; one under half the row's height, FLOAT inside both lines (a dash, an
    equals sign); one below the top line (twice PRINTED_LINE) shaped as a plus (_cross); a number sign
    (_hash); a percent sign (_percent, _percent_apart); a comma: ink from below the row's middle to
    DESCENT below its bottom line; and a comma or a bracket a digit's group took in (a comma under a
    7's bar, a bracket close to a serif 8: _without_descenders). The set's handwritten rows (MNIST's
    digits, each scaled to one height) line up too: none of these shapes is one of their digits
    (docs/real-world.md)."""
    height = np.median([g[4] for g in groups]) - np.median([g[3] for g in groups])
    if len(groups) < 3 or height < SYMBOL_ROW:
        return groups
    above, below = _off_lines(groups)
    near = max(1.0, PRINTED_LINE * height)
    if np.count_nonzero((np.abs(above) <= near) & (np.abs(below) <= near)) < 2:
        return groups
    groups = [_without_descenders(g, labels, g[3] - above[k], height, near) for k, g in enumerate(groups)]
    above, below = _off_lines(groups)
    inks = [_group_ink(labels, g) for g in groups]
    tops, bottoms = np.array([g[3] for g in groups]), np.array([g[4] for g in groups])
    widths = np.array([g[2] - g[1] for g in groups])
    past_both = (below > DESCENT * height) & (above <= near) | (below > 2 * near) & (above < -2 * near)
    descends = past_both & (widths <= SYMBOL_WIDTH * height)
    floats = (above > FLOAT * height) & (-below > FLOAT * height) & (bottoms - tops < 0.5 * height)
    crosses = (above > 2 * near) & np.array([_cross(ink) for ink in inks])
    percents = np.array([_percent(labels, g) for g in groups]) | _percent_apart(groups, inks, height)
    commas = (above > height / 2) & (below > DESCENT * height)
    hashes = np.array([_hash(ink) for ink in inks])
    symbols = descends | floats | crosses | percents | commas | hashes
    return [g for g, symbol in zip(groups, symbols) if not symbol] if not symbols.all() else groups


def _off_lines(groups: list[list]) -> tuple[np.ndarray, np.ndarray]:
    """How far (pixels, down) each group's top lies below the row's top line (the groups' median top),
    and its bottom below the bottom line."""
    tops, bottoms = np.array([g[3] for g in groups], float), np.array([g[4] for g in groups], float)
    return tops - np.median(tops), bottoms - np.median(bottoms)


def _without_descenders(group: list, labels: np.ndarray, top_line: float, height: float, near: float) -> list:
    """group without the pieces that reach DESCENT below the row's bottom line (top_line + height) from
    below its middle (a comma) or, no wider than BRACKET_WIDTH, from its top line (within near: a
    bracket): what a digit took in beside it, its box shrunk to what is left; as it is if that is all."""
    members, left, right, top, bottom = group
    if len(members) < 2:
        return group
    region = labels[top:bottom, left:right]
    boxes = {m: extent(region == m) for m in members}

    def descender(rows: np.ndarray, cols: np.ndarray) -> bool:
        first, last = top + rows[0], top + rows[-1] + 1
        from_top = first <= top_line + near and len(cols) <= BRACKET_WIDTH * height
        return last > top_line + (1 + DESCENT) * height and (first > top_line + height / 2 or from_top)

    dropped = {m for m, (rows, cols) in boxes.items() if descender(rows, cols)}
    if not dropped or len(dropped) == len(members):
        return group
    kept = [m for m in members if m not in dropped]
    rows = np.concatenate([boxes[m][0] for m in kept])
    cols = np.concatenate([boxes[m][1] for m in kept])
    return [kept, left + int(cols.min()), left + int(cols.max()) + 1, top + int(rows.min()), top + int(rows.max()) + 1]


def _group_ink(labels: np.ndarray, group: list) -> np.ndarray:
    """The group's ink within its box."""
    members, left, right, top, bottom = group
    return np.isin(labels[top:bottom, left:right], members)


def _percent(labels: np.ndarray, group: list) -> bool:
    """Whether the group is a percent sign: its tallest piece a slash (_slash) and two other pieces
    that each hold a hole, its rings (a 6 written in two strokes has one)."""
    members, left, right, top, bottom = group
    if len(members) < 3:
        return False
    region = labels[top:bottom, left:right]
    pieces = [region == m for m in members]
    tallest = int(np.argmax([np.count_nonzero(piece.any(axis=1)) for piece in pieces]))
    if not _slash(pieces[tallest]):  # first: a page of text has many groups of many pieces
        return False
    return sum(_ring(piece) for k, piece in enumerate(pieces) if k != tallest) >= 2


def _percent_apart(groups: list[list], inks: list[np.ndarray], height: float) -> np.ndarray:
    """Which groups (their inks) are a percent sign whose rings stand apart from its slash: a slash
    (_slash) with a ring under RING_SHARE of the row's height on either side."""
    found = np.zeros(len(groups), dtype=bool)
    for k in range(1, len(groups) - 1):
        if any(g[4] - g[3] >= RING_SHARE * height for g in (groups[k - 1], groups[k + 1])):
            continue
        ring_left, stroke, ring_right = inks[k - 1:k + 2]
        if _ring(ring_left) and _ring(ring_right) and _slash(stroke):
            found[k - 1:k + 2] = True
    return found


def _ring(ink: np.ndarray) -> bool:
    return bool((ndimage.binary_fill_holes(ink) & ~ink).any())


def _slash(ink: np.ndarray) -> bool:
    """Whether ink is a straight stroke (its spread across under SLASH_WIDTH of its spread along)
    slanting more than SLASH_SLANT degrees from upright."""
    ys, xs = np.nonzero(ink)
    if len(xs) < 3:
        return False
    spread, axes = np.linalg.eigh(np.cov(np.stack([xs, ys]).astype(float)))
    slant = math.degrees(math.atan2(abs(axes[0, 1]), abs(axes[1, 1])))
    return spread[0] <= SLASH_WIDTH ** 2 * spread[1] and slant > SLASH_SLANT


def _hash(ink: np.ndarray) -> bool:
    """Whether ink, no wider than tall, is a number sign: two bands of rows inked across (HASH_BAR of
    the width or more), one in each half, and two strokes down (two runs of ink) in nearly all the
    other rows, above, between and below them (a 4's bar has one stroke below it)."""
    rows, width = ink.shape
    if rows < 8 or width > rows:  # touching digits are wider
        return False
    across = np.count_nonzero(ink, axis=1) >= HASH_BAR * width
    bands, count = ndimage.label(across)
    if count != 2:
        return False
    first, second = (np.flatnonzero(bands == k) for k in (1, 2))
    if first[-1] >= rows / 2 or second[0] < rows / 2:
        return False
    if first[0] < HASH_ENDS * rows or second[-1] >= (1 - HASH_ENDS) * rows:  # a box: a seven-segment 0
        return False
    strokes = np.count_nonzero(np.diff(ink.astype(np.int8), axis=1, prepend=0) == 1, axis=1)
    return bool(np.mean(strokes[~across] == 2) >= HASH_BAR)


def _cross(ink: np.ndarray) -> bool:
    """Whether ink is a plus sign: a bar across its middle fifth of rows from side to side, one down
    its middle fifth of columns from top to bottom, and next to no ink (CORNER_INK) away from the
    middle two fifths both ways (a handwritten 4 crossed like a plus has its arm there)."""
    rows, cols = ink.shape
    across = ink[2 * rows // 5:max(3 * rows // 5, 2 * rows // 5 + 1)].any(axis=0).mean()
    down = ink[:, 2 * cols // 5:max(3 * cols // 5, 2 * cols // 5 + 1)].any(axis=1).mean()
    corners = ink.copy()
    corners[3 * rows // 10:7 * rows // 10 + 1] = False
    corners[:, 3 * cols // 10:7 * cols // 10 + 1] = False
    return across >= 0.9 and down >= 0.9 and np.count_nonzero(corners) <= CORNER_INK * np.count_nonzero(ink)
