import numpy as np
import torch

from digitnet.losses import make_loss, mse_sum


def test_mse_sum_equals_a_hand_computation():
    out = torch.tensor([[0.5, -1.0, 2.0] + [0.0] * 7, [1.0] * 10], dtype=torch.float32)
    labels = torch.tensor([2, 0])
    # row 0: (0.5)^2 + (-1)^2 + (2-1)^2 = 2.25; row 1: (1-1)^2 + 9 * 1^2 = 9; divided by batch 2
    assert mse_sum(out, labels).item() == (2.25 + 9.0) / 2


def test_mse_sum_matches_numpy_on_random_batch():
    rng = np.random.default_rng(0)
    out = rng.normal(size=(7, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 7)
    onehot = np.eye(10, dtype=np.float32)[labels]
    expected = ((out - onehot) ** 2).sum() / 7
    got = make_loss("mse-sum")(torch.from_numpy(out), torch.from_numpy(labels)).item()
    assert got == pytest_approx(expected)


def pytest_approx(x):
    import pytest

    return pytest.approx(float(x), rel=1e-6)


def test_cross_entropy_with_smoothing():
    out = torch.zeros(4, 10)
    loss = make_loss("cross-entropy", label_smoothing=0.1)(out, torch.tensor([0, 1, 2, 3]))
    assert loss.item() == pytest_approx(np.log(10))
