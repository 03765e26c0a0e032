import numpy as np
import pytest
import torch

from digitnet.losses import make_loss, mse_sum
from digitnet.settings import NO_DIGIT


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


@pytest.mark.parametrize(("name", "smoothing"), [("cross-entropy", 0.1), ("cross-entropy", 0.0), ("mse-sum", 0.0)])
def test_a_loss_that_takes_no_digit_labels_is_the_same_on_digits(name, smoothing):
    out, labels = torch.randn(9, 10, generator=torch.Generator().manual_seed(0)), torch.arange(9)
    expected = make_loss(name, smoothing)(out, labels).item()
    assert make_loss(name, smoothing, no_digit=True)(out, labels).item() == pytest.approx(expected, rel=1e-6)


def test_no_digits_target_is_every_class_alike():
    out = torch.randn(5, 10, generator=torch.Generator().manual_seed(1))
    no_digit = torch.full((5,), NO_DIGIT)
    expected = -torch.log_softmax(out, 1).mean(1).mean()  # cross-entropy against 1/10 each
    assert make_loss("cross-entropy", 0.1, no_digit=True)(out, no_digit).item() == pytest.approx(expected.item(), rel=1e-6)
    assert make_loss("mse-sum", no_digit=True)(out, no_digit).item() == pytest.approx(
        (out - 0.1).square().sum().item() / 5, rel=1e-6)
    # a uniform answer is the best one: the loss grows as the logits move apart
    flat, apart = torch.zeros(1, 10), torch.eye(10)[:1] * 3
    loss = make_loss("cross-entropy", 0.1, no_digit=True)
    assert loss(flat, no_digit[:1]) < loss(apart, no_digit[:1])


@pytest.mark.parametrize("no_digit", [False, True])
def test_a_loss_of_no_known_name_is_refused(no_digit):
    with pytest.raises(ValueError, match="unknown loss 'mae'"):
        make_loss("mae", no_digit=no_digit)
