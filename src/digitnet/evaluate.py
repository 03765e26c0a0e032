"""Evaluating a model on a split: loss, accuracy, predictions, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

EVAL_CHUNK = 4096  # fixed, so the summed loss is the same bits in training and in `evaluate`


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
    for start in range(0, len(x), EVAL_CHUNK):
        out = model(x[start : start + EVAL_CHUNK])
        labels = y[start : start + EVAL_CHUNK]
        loss_sum += loss_fn(out, labels).double() * len(labels)
        predictions.append(out.argmax(dim=1))
    model.train(was_training)
    predicted = torch.cat(predictions).cpu().numpy()
    accuracy = float((predicted == y.cpu().numpy()).mean())
    return Evaluation(float(loss_sum) / len(x), accuracy, predicted, x.device.type)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return counts


def evaluate_run(run_dir, data_dir=None, device: str = "auto", progress: bool = True):
    """Reload a run folder's model and evaluate it on the run's own test split.

    Returns (evaluation, last row of metrics.csv or None, the device type training used or None).
    The data is checked against the hashes recorded in config.json, so a different data set
    cannot pass unnoticed.
    """
    from digitnet.data import load_dataset
    from digitnet.losses import make_loss
    from digitnet.runs import check_data_matches, load_run, read_metrics
    from digitnet.training import prepare_test_tensors, resolve_device

    device = resolve_device(device)
    config, model = load_run(run_dir, device=device)
    data = load_dataset(config["data"]["name"], data_dir or config.get("data_dir"), progress=progress)
    check_data_matches(config, data, run_dir)
    x_test, y_test = prepare_test_tensors(data, device)
    recipe = config["recipe"]
    evaluation = evaluate(model, x_test, y_test, make_loss(recipe["loss"], recipe["label_smoothing"]))
    metrics = read_metrics(run_dir)
    return evaluation, (metrics[-1] if metrics else None), config.get("device_used")
