"""The losses a recipe can name. Each returns the mean over the batch's examples."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from digitnet.settings import CLASSES, LOSSES


def _squares_against(out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (out - targets).square().sum() / out.shape[0]


def mse_sum(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The tutorial's loss: reduce_sum((out - one_hot(y))^2) / batch_size."""
    return _squares_against(out, F.one_hot(labels, CLASSES).to(out.dtype))


def target_rows(name: str, label_smoothing: float = 0.0, device=None, classes: int = CLASSES) -> torch.Tensor:
    """(classes + 1, classes): row c the target for label c (one-hot for MSE; (1 - s) one-hot + s /
    classes with label smoothing s for cross-entropy), the last row NO_DIGIT's: every class alike."""
    if name == "mse-sum":
        rows = torch.eye(classes, device=device)
    else:
        share = label_smoothing / classes
        rows = torch.full((classes, classes), share, device=device).fill_diagonal_(1.0 - label_smoothing + share)
    return torch.cat([rows, torch.full((1, classes), 1.0 / classes, device=device)])


def make_loss(name: str, label_smoothing: float = 0.0, no_digit: bool = False):
    """The loss named; with no_digit, labels may also be NO_DIGIT (ink that is no one digit, such as two
    touching ones: data/augment.py), whose target is every class alike."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}")
    if no_digit:
        rows: dict[torch.device, torch.Tensor] = {}  # the table, made once per device

        def against_rows(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            if out.device not in rows:
                rows[out.device] = target_rows(name, label_smoothing, out.device)
            targets = rows[out.device][labels]
            return _squares_against(out, targets) if name == "mse-sum" else F.cross_entropy(out, targets)
        return against_rows
    if name == "mse-sum":
        return mse_sum
    return lambda out, labels: F.cross_entropy(out, labels, label_smoothing=label_smoothing)
