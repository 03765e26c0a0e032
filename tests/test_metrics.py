"""Measuring a model on a split (metrics.evaluate)."""

import pytest
import torch
from conftest import random_batches

from digitnet.losses import make_loss
from digitnet.metrics import evaluate
from digitnet.model import build_model


def test_evaluation_walks_a_convnet_in_its_passes_and_scores_every_example():
    model = build_model(kind="cnn", seed=1)
    x, y = random_batches([300])[0]
    seen = []
    hook = model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    evaluation = evaluate(model, x, y, make_loss("cross-entropy", 0.0))
    hook.remove()
    assert seen == [128, 128, 44]
    with torch.no_grad():
        logits = torch.cat([model(x[i : i + 1]) for i in range(len(x))])  # one example at a time
    assert evaluation.predictions.tolist() == logits.argmax(1).tolist()
    expected = torch.nn.functional.cross_entropy(logits, y).item()
    assert evaluation.loss == pytest.approx(expected, rel=1e-5)
    assert evaluation.accuracy == pytest.approx(float((logits.argmax(1) == y).float().mean()))
