"""Augmentation on the device: every training batch slightly rotated, scaled, sheared, shifted,
and its strokes made thinner or bolder, so a model learns digits beyond MNIST's own look; with
`print`, a share of each batch is first swapped for printed digits (data/printed.py).

Each batch's random draws come from a generator seeded by (seed, epoch, step) alone: a run is
reproducible from --seed, a resumed run is bit-identical, and no random state needs saving.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from digitnet.data.batches import scale_images
from digitnet.settings import SIDE

ROTATION_DEGREES = 12.0
SCALE = (0.85, 1.1)
SHEAR = 0.2
SHIFT_PIXELS = 2.0
PRINT_SHARE = 0.1  # of each batch, swapped for printed digits: enough to learn print, little lost on handwriting


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def _affine(ink: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, device = len(ink), ink.device
    angle = _uniform(n, -1, 1, generator, device) * math.radians(ROTATION_DEGREES)
    scale = _uniform(n, *SCALE, generator, device)
    shear = _uniform(n, -SHEAR, SHEAR, generator, device)
    shift = _uniform(2 * n, -1, 1, generator, device).view(n, 2) * (2 * SHIFT_PIXELS / SIDE)
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


def _dilate(ink: torch.Tensor) -> torch.Tensor:
    """The largest value in each pixel's 3x3 neighbourhood: F.max_pool2d(ink, 3, stride=1, padding=1),
    as a maximum along rows and then along columns. Maxima round nothing, so the values are the same;
    on the CPU max_pool2d took 1.1 ms for a batch of 128 single-channel images and this 0.07 ms."""
    padded = F.pad(ink, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def _thickness(ink: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A third of the digits bolder (3x3 dilation), a third thinner (3x3 erosion), a third as they are."""
    choice = torch.randint(0, 3, (len(ink), 1, 1, 1), generator=generator, device=ink.device)
    return torch.where(choice == 0, _dilate(ink), torch.where(choice == 1, -_dilate(-ink), ink))


class Augmenter:
    """augment(x, y, epoch, step): scaled flat images (N, 784) in [-1, 1] and their labels -> augmented
    ones, same dtype; x and y are never changed in place (they may be views of the training split)."""

    def __init__(self, kind: str, seed: int, device: torch.device):
        self.kind, self.seed = kind, seed
        self.generator = torch.Generator(device=device)
        self.glyphs = self.glyph_labels = None
        if "print" in kind:
            from digitnet.data.printed import glyph_bank  # lazy: rendering needs scipy, Pillow and the fonts

            bank = glyph_bank()
            self.glyphs = scale_images(bank.pixels, device)
            self.glyph_labels = torch.as_tensor(bank.labels, device=device)

    def _swap_in_print(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(x)
        swapped = torch.rand(n, generator=self.generator, device=x.device) < PRINT_SHARE
        choice = torch.randint(0, len(self.glyphs), (n,), generator=self.generator, device=x.device)
        x = torch.where(swapped[:, None], self.glyphs[choice].to(x.dtype), x)
        return x, torch.where(swapped, self.glyph_labels[choice], y)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "none":
            return x, y
        self.generator.manual_seed(((self.seed * 1_000_003 + epoch) * 100_003 + step) % 2**63)
        if self.glyphs is not None:
            x, y = self._swap_in_print(x, y)
        ink = (x.float().view(-1, 1, SIDE, SIDE) + 1.0) * 0.5  # 0 = paper, 1 = ink
        ink = _affine(ink, self.generator)
        if "thickness" in self.kind:
            ink = _thickness(ink, self.generator)
        return (ink * 2.0 - 1.0).view(len(x), -1).to(x.dtype), y
