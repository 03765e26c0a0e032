"""Augmentation on the device: every training batch slightly rotated, scaled, sheared, shifted,
and its strokes made thinner or bolder, so a model learns digits beyond MNIST's own look; with
`print`, a share of each batch is first swapped for printed digits (data/printed.py); with `pairs`, a
share becomes two of the batch's digits side by side in one field, labelled NO_DIGIT (every class
alike): what the preparation hands the network when two touching digits were not cut apart. Its
confidence in such ink is then low, and the reader (predict.py) keeps a cut that reads as two digits.

Each batch's random draws come from a generator seeded by (seed, epoch, step) alone: a run is
reproducible from --seed, a resumed run is bit-identical, and no random state needs saving.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from digitnet.data.batches import scale_images
from digitnet.settings import NO_DIGIT, SIDE

ROTATION_DEGREES = 12.0
SCALE = (0.85, 1.1)
SHEAR = 0.2
SHIFT_PIXELS = 2.0
PRINT_SHARE = 0.1  # of each batch, swapped for printed digits: enough to learn print, little lost on handwriting
PAIR_SHARE = 0.1  # of each batch, made two digits side by side (pairs)
PAIR_SCALE = (0.6, 0.75)  # each digit of a pair this size of its own field ...
PAIR_OFFSET = (4.0, 7.0)  # ... its centre this many of its own pixels from the pair's: touching, or nearly


class Draws(NamedTuple):
    """One batch's random numbers, drawn in the order the augmentation has always consumed them:
    uniforms in [0, 1) unless named. Without print, swap and glyph are None; without thickness, so
    is thickness."""

    swap: torch.Tensor | None  # (n,): below PRINT_SHARE, the image becomes a printed digit
    glyph: torch.Tensor | None  # (n,) int64: which printed digit
    angle: torch.Tensor  # (n,)
    scale: torch.Tensor  # (n,)
    shear: torch.Tensor  # (n,)
    shift: torch.Tensor  # (2n,)
    thickness: torch.Tensor | None  # (n, 1, 1, 1) int64: 0 bolder, 1 thinner, 2 as it is
    pair: torch.Tensor | None = None  # (n,): below PAIR_SHARE, the digit and the one before it make a pair
    pair_scale: torch.Tensor | None = None  # (n,)
    pair_offset: torch.Tensor | None = None  # (n,)


def _between(uniform: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return uniform * (high - low) + low


def _affine(ink: torch.Tensor, draws: Draws) -> torch.Tensor:
    n = len(ink)
    angle = _between(draws.angle, -1, 1) * math.radians(ROTATION_DEGREES)
    scale = _between(draws.scale, *SCALE)
    shear = _between(draws.shear, -SHEAR, SHEAR)
    shift = _between(draws.shift, -1, 1).view(n, 2) * (2 * SHIFT_PIXELS / SIDE)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # theta maps output to input coordinates: rotation and scale, then a horizontal shear
    theta = torch.stack([torch.stack([cos, -sin + shear * cos, shift[:, 0]], 1),
                         torch.stack([sin, cos + shear * sin, shift[:, 1]], 1)], 1)
    return F.grid_sample(ink, _affine_grid(theta), mode="bilinear", padding_mode="zeros", align_corners=False)


@functools.cache
def _base_grid(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The x and y of every output pixel (SIDE * SIDE each, row by row), as F.affine_grid places them."""
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], device=device)
    base = F.affine_grid(identity, [1, 1, SIDE, SIDE], align_corners=False)[0]
    return base[..., 0].reshape(-1).clone(), base[..., 1].reshape(-1).clone()


def _affine_grid(theta: torch.Tensor) -> torch.Tensor:
    """F.affine_grid(theta, [n, 1, SIDE, SIDE], align_corners=False): x theta[:, :, 0] + y theta[:, :, 1]
    + theta[:, :, 2] for every output pixel, computed a whole plane of pixels at a time. On a 2-core
    AMD EPYC, F.affine_grid's batched products of three terms took 1.0 ms for a batch of 128 and this
    0.06 ms, with the same bits; a BLAS that fuses a multiply and an add would differ from it by a
    rounding (tests/test_augment.py)."""
    xs, ys = _base_grid(theta.device)
    planes = torch.mul(xs, theta[:, :, 0:1]).add_(torch.mul(ys, theta[:, :, 1:2])).add_(theta[:, :, 2:3])  # (n, 2, pixels)
    return planes.transpose(1, 2).reshape(len(theta), SIDE, SIDE, 2)


def _pairs(ink: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Each digit shrunk and moved left, the one before it in the batch shrunk and moved right, in one
    field (the brighter of the two where they overlap)."""
    scale = _between(draws.pair_scale, *PAIR_SCALE)
    offset = _between(draws.pair_offset, *PAIR_OFFSET) * (2 / SIDE)  # in the field's [-1, 1] coordinates
    zero, grow = torch.zeros_like(scale), 1 / scale
    halves = []
    for digit, side in ((ink, 1.0), (ink.roll(1, 0), -1.0)):
        theta = torch.stack([torch.stack([grow, zero, side * offset], 1), torch.stack([zero, grow, zero], 1)], 1)
        halves.append(F.grid_sample(digit, _affine_grid(theta), mode="bilinear", padding_mode="zeros",
                                    align_corners=False))
    return torch.maximum(*halves)


def _dilate(ink: torch.Tensor) -> torch.Tensor:
    """The largest value in each pixel's 3x3 neighbourhood: F.max_pool2d(ink, 3, stride=1, padding=1),
    as a maximum along rows and then along columns. Maxima round nothing, so the values are the same;
    on the CPU max_pool2d took 1.1 ms for a batch of 128 single-channel images and this 0.07 ms."""
    padded = F.pad(ink, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _thickness(ink: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    """A third of the digits bolder (3x3 dilation), a third thinner (3x3 erosion), a third as they are."""
    return torch.where(choice == 0, _dilate(ink), torch.where(choice == 1, -_dilate(-ink), ink))


class Augmenter:
    """augment(x, y, epoch, step): scaled flat images (N, 784) in [-1, 1] and their labels -> augmented
    ones, same dtype; x and y are never changed in place (they may be views of the training split).
    The same in two halves: draw() the batch's random numbers, apply() them (no random numbers, no
    host work: what a CUDA graph can capture)."""

    def __init__(self, kind: str, seed: int, device: torch.device):
        self.kind, self.seed = kind, seed
        self.generator = torch.Generator(device=device)
        self.glyphs = self.glyph_labels = None
        if "print" in kind:
            from digitnet.data.printed import glyph_bank  # lazy: rendering needs scipy, Pillow and the fonts

            bank = glyph_bank()
            self.glyphs = scale_images(bank.pixels, device)
            self.glyph_labels = torch.as_tensor(bank.labels, device=device)

    def draw(self, n: int, epoch: int, step: int, out: Draws | None = None) -> Draws:
        """The random numbers of step `step` of `epoch` for a batch of n, from a generator seeded by
        (seed, epoch, step) alone; into out's tensors where given."""
        self.generator.manual_seed(((self.seed * 1_000_003 + epoch) * 100_003 + step) % 2**63)
        device, gen = self.generator.device, self.generator

        def uniform(size, field):
            return torch.rand(size, generator=gen, device=device, out=None if out is None else getattr(out, field))

        def integers(high, size, field):
            target = None if out is None else getattr(out, field)
            return torch.randint(0, high, size, generator=gen, device=device, out=target)

        printed = self.glyphs is not None
        swap = uniform(n, "swap") if printed else None
        glyph = integers(len(self.glyphs), (n,), "glyph") if printed else None
        angle, scale, shear, shift = (uniform(size, field) for size, field in
                                      ((n, "angle"), (n, "scale"), (n, "shear"), (2 * n, "shift")))
        thickness = integers(3, (n, 1, 1, 1), "thickness") if "thickness" in self.kind else None
        if "pairs" not in self.kind:
            return Draws(swap, glyph, angle, scale, shear, shift, thickness)
        pair, pair_scale, pair_offset = (uniform(n, field) for field in ("pair", "pair_scale", "pair_offset"))
        return Draws(swap, glyph, angle, scale, shear, shift, thickness, pair, pair_scale, pair_offset)

    def apply(self, x: torch.Tensor, y: torch.Tensor, draws: Draws) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch augmented with the given random numbers."""
        if draws.swap is not None:
            swapped = draws.swap < PRINT_SHARE
            x = torch.where(swapped[:, None], self.glyphs[draws.glyph].to(x.dtype), x)
            y = torch.where(swapped, self.glyph_labels[draws.glyph], y)
        ink = (x.float().view(-1, 1, SIDE, SIDE) + 1.0) * 0.5  # 0 = paper, 1 = ink
        if draws.pair is not None:
            paired = draws.pair < PAIR_SHARE
            ink = torch.where(paired[:, None, None, None], _pairs(ink, draws), ink)
            y = torch.where(paired, torch.full_like(y, NO_DIGIT), y)
        ink = _affine(ink, draws)
        if draws.thickness is not None:
            ink = _thickness(ink, draws.thickness)
        return (ink * 2.0 - 1.0).view(len(x), -1).to(x.dtype), y

    def __call__(self, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "none":
            return x, y
        return self.apply(x, y, self.draw(len(x), epoch, step))
