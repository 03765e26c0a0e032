"""Measuring a model on a split: loss, accuracy, predictions, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from digitnet import cpu_linear
from digitnet.model import pass_rows
from digitnet.settings import CLASSES


@dataclass
class Evaluation:
    loss: float
    accuracy: float  # fraction in [0, 1]
    predictions: np.ndarray  # int64, one per example
    device: str = "cpu"  # the device type it was computed on


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn) -> Evaluation:
    """Mean loss and accuracy of model on (x, y), where x is already scaled."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    predictions = []
    rows = pass_rows(model)
    for start in range(0, len(x), rows):
        out = cpu_linear.forward(model, x[start : start + rows])
        labels = y[start : start + rows]
        loss_sum += loss_fn(out, labels).double() * len(labels)
        predictions.append(out.argmax(dim=1))
    model.train(was_training)
    predicted = torch.cat(predictions).cpu().numpy()
    accuracy = float((predicted == y.cpu().numpy()).mean())
    return Evaluation(float(loss_sum) / len(x), accuracy, predicted, x.device.type)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = CLASSES) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return counts
