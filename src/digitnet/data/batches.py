"""Preprocessing exactly as the tutorial, and batches that cost no allocation per step.

The training images live on the device as one contiguous float32 tensor, scaled once.
"""

from __future__ import annotations

import numpy as np
import torch

from digitnet.settings import PIXELS


def scale_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels 0-255 of shape (N, 28, 28) or (N, 784), any dtype -> a new float32 (N, 784) in [-1, 1].

    Computed as the tutorial does, 2*x/255 - 1, in the same operation order as
    `2 * tf.cast(x, tf.float32) / 255. - 1`, so the floats are bit-equal. The ONNX export uses it too.
    """
    x = pixels.reshape(pixels.shape[0], PIXELS).to(torch.float32, copy=True)
    return x.mul_(2.0).div_(255.0).sub_(1.0)


def scale_images(images: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (N, 28, 28) images, as numpy or torch, -> float32 (N, 784) in [-1, 1] on the device."""
    return scale_pixels(torch.as_tensor(images, device=device))


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """The sample order of one epoch: a permutation fixed by (seed, epoch), or 0..n-1.

    Deriving it from (seed, epoch) alone means a resumed run needs no RNG state to repeat it.
    """
    if not shuffle:
        return torch.arange(n)
    return torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))


class EpochBatches:
    """Batches of (x, y) for one data split, in a fresh seeded order each epoch.

    Shuffled batches are gathered into two preallocated buffers (no per-step allocation,
    no second copy of the split); unshuffled batches are plain views of the split. With
    `rank`/`world_size` (data-parallel training) every rank walks the same global batches and
    takes every world_size-th example of each.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        rows = min(batch_size, len(x))
        self._x_buf = torch.empty((rows, *x.shape[1:]), dtype=x.dtype, device=x.device)
        self._y_buf = torch.empty((rows, *y.shape[1:]), dtype=y.dtype, device=y.device)

    def __len__(self) -> int:
        """Number of batches, the last partial one included (60000 = 117*512 + 96 -> 118)."""
        return -(-len(self.x) // self.batch_size)

    def sizes(self) -> torch.Tensor:
        """The number of examples in each global batch, in order."""
        sizes = torch.full((len(self),), self.batch_size, dtype=torch.float64)
        sizes[-1] = len(self.x) - self.batch_size * (len(self) - 1)
        return sizes

    def shares(self) -> list[float]:
        """Per batch: this rank's examples x world_size / the global batch's (1.0 in one process).

        A rank's mean loss times its share, averaged over ranks, is the global batch's mean loss.
        """
        return [len(range(self.rank, int(g), self.world_size)) * self.world_size / float(g) for g in self.sizes()]

    def order(self, epoch: int, device: str | torch.device | None = None) -> torch.Tensor:
        """The epoch's sample order, on the data's device unless another is named."""
        return epoch_order(len(self.x), self.seed, epoch, self.shuffle).to(device or self.x.device)

    def gather(self, batch_order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of the examples at batch_order (one global batch's slice of an epoch's order),
        this rank's share of it, copied into the reused buffers."""
        index = batch_order[self.rank :: self.world_size]
        n = len(index)
        return (torch.index_select(self.x, 0, index, out=self._x_buf[:n]),
                torch.index_select(self.y, 0, index, out=self._y_buf[:n]))

    def epoch(self, epoch: int):
        """Yield the epoch's batches; each is valid until the next one is taken."""
        b = self.batch_size
        if not self.shuffle and self.world_size == 1:
            for start in range(0, len(self.x), b):
                yield self.x[start : start + b], self.y[start : start + b]
            return
        order = self.order(epoch)
        for start in range(0, len(self.x), b):
            yield self.gather(order[start : start + b])
