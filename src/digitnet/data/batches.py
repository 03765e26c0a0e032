"""Preprocessing exactly as the tutorial, and batches that cost no allocation per step.

The training images live on the device as one contiguous float32 tensor, scaled once.
Each epoch's order is gathered once into a preallocated buffer; batches are views of it.
"""

from __future__ import annotations

import numpy as np
import torch

PIXELS = 28 * 28


def scale_images(images: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 784) in [-1, 1], computed as the tutorial does: 2*x/255 - 1."""
    x = torch.as_tensor(images, device=device).reshape(len(images), PIXELS)
    # Same operation order as `2 * tf.cast(x, tf.float32) / 255. - 1`, so the floats are bit-equal.
    return x.to(torch.float32).mul_(2.0).div_(255.0).sub_(1.0)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """The sample order of one epoch: a permutation fixed by (seed, epoch), or 0..n-1.

    Deriving it from (seed, epoch) alone means a resumed run needs no RNG state to repeat it.
    """
    if not shuffle:
        return torch.arange(n)
    return torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))


class EpochBatches:
    """Batches of (x, y) for one data split, reordered in place each epoch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0, shuffle: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self._x_buf = torch.empty_like(x)
        self._y_buf = torch.empty_like(y)

    def __len__(self) -> int:
        """Number of batches, the last partial one included (60000 = 117*512 + 96 -> 118)."""
        return -(-len(self.x) // self.batch_size)

    def epoch(self, epoch: int):
        """Yield the epoch's batches as views into the reordered buffers."""
        if self.shuffle:
            order = epoch_order(len(self.x), self.seed, epoch, True).to(self.x.device)
            torch.index_select(self.x, 0, order, out=self._x_buf)
            torch.index_select(self.y, 0, order, out=self._y_buf)
            x, y = self._x_buf, self._y_buf
        else:
            x, y = self.x, self.y
        for start in range(0, len(x), self.batch_size):
            yield x[start : start + self.batch_size], y[start : start + self.batch_size]
