"""Measurements of an ink mask and its labelled pieces, shared by the steps after the ink map."""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

SPECK_SHARE = 0.06  # components with less ink than this share of the largest one's are specks


def label_sums(labels: np.ndarray, count: int, values: np.ndarray | None = None) -> np.ndarray:
    """ndimage.sum(values, labels, index=1..count), or each label's pixel count without values, in
    one pass over the labelled pixels alone (ndimage's passes over all of them, several times)."""
    labelled = labels > 0
    return np.bincount(labels[labelled], None if values is None else values[labelled], minlength=count + 1)[1:]


def extent(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the rows, the columns) that hold any of mask, in order."""
    return np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels, from the distance transform (w = 4 mean - 3 for a band)."""
    mask = around(mask)
    return _band_width(mask.shape, np.packbits(mask).tobytes())


def around(mask: np.ndarray) -> np.ndarray:
    """The mask cut to its set pixels and a pixel round them (within the image): the part of it that
    sets every distance of its distance transform, the paper farther out never being the nearest."""
    rows, cols = extent(mask)
    return mask[max(rows[0] - 1, 0) : rows[-1] + 2, max(cols[0] - 1, 0) : cols[-1] + 2]


@functools.lru_cache(maxsize=8)
def _band_width(shape: tuple[int, int], packed: bytes) -> float:
    """stroke_width of a mask (its bits packed, so it can be a cache key): a one-digit image's ink
    is measured twice, once to tell its lines from its strokes and once to fit it."""
    mask = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=shape[0] * shape[1]).reshape(shape).view(bool)
    distances = ndimage.distance_transform_edt(mask)
    return max(1.0, 4.0 * float(distances[mask].mean()) - 3.0)
