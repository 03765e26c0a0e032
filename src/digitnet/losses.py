"""The losses a recipe can name. Each returns the mean over the batch's examples."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from digitnet.settings import CLASSES


def mse_sum(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The tutorial's loss: reduce_sum((out - one_hot(y))^2) / batch_size."""
    onehot = F.one_hot(labels, CLASSES).to(out.dtype)
    return (out - onehot).square().sum() / out.shape[0]


def make_loss(name: str, label_smoothing: float = 0.0):
    if name == "mse-sum":
        return mse_sum
    if name == "cross-entropy":
        return lambda out, labels: F.cross_entropy(out, labels, label_smoothing=label_smoothing)
    raise ValueError(f"unknown loss {name!r}")
