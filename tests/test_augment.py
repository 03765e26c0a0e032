"""The augmentation's geometry (data/augment.py) against torch's own functions it replaces."""

import numpy as np
import torch
import torch.nn.functional as F
from conftest import random_batches
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from digitnet.data.augment import PAIR_SCALE, Augmenter, Draws, _affine_grid, _dilate, _pairs
from digitnet.settings import NO_DIGIT, SIDE

_images = arrays(np.float32, st.tuples(st.integers(1, 4), st.just(1), st.integers(1, 30), st.integers(1, 30)),
                 elements=st.floats(-3, 3, width=32))


@settings(max_examples=150, deadline=None)
@given(_images, st.sampled_from([torch.float32, torch.bfloat16]))
def test_dilation_is_torchs_3x3_max_pool_value_for_value(images, dtype):
    ink = torch.from_numpy(images).to(dtype)
    assert torch.equal(_dilate(ink), F.max_pool2d(ink, 3, stride=1, padding=1))
    assert torch.equal(-_dilate(-ink), -F.max_pool2d(-ink, 3, stride=1, padding=1))  # the erosion


@settings(max_examples=100, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 9), st.just(2), st.just(3)), elements=st.floats(-2, 2, width=32)))
def test_the_sampling_grid_is_torchs_affine_grid(theta):
    theta = torch.from_numpy(theta)
    ours, torchs = _affine_grid(theta), F.affine_grid(theta, [len(theta), 1, SIDE, SIDE], align_corners=False)
    assert ours.shape == torchs.shape
    # the same three products and two sums; whether torch's batched product fuses a multiply and an
    # add (one rounding fewer) depends on the CPU's BLAS, so equal to within a rounding of the sum
    torch.testing.assert_close(ours, torchs, rtol=0, atol=2e-6)


def test_a_batch_is_augmented_the_same_way_every_time_and_differently_at_every_step():
    x, y = random_batches([32])[0]
    augment = Augmenter("affine+thickness", seed=4, device=torch.device("cpu"))
    first, again, next_step = augment(x, y, 1, 0)[0], augment(x, y, 1, 0)[0], augment(x, y, 1, 1)[0]
    assert torch.equal(first, again)
    assert not torch.equal(first, next_step)
    assert first.shape == x.shape and first.min() >= -1.0 and first.max() <= 1.0


def test_an_identity_transform_leaves_the_digit_in_place(monkeypatch):
    """With no rotation, scaling, shear or shift the affine step reproduces its input (bilinear at the
    pixel centres), so the grid puts every pixel where it was."""
    from digitnet.data import augment as module

    monkeypatch.setattr(module, "ROTATION_DEGREES", 0.0)
    monkeypatch.setattr(module, "SCALE", (1.0, 1.0))
    monkeypatch.setattr(module, "SHEAR", 0.0)
    monkeypatch.setattr(module, "SHIFT_PIXELS", 0.0)
    x = torch.full((3, 784), -1.0)
    x[:, 300:310] = 1.0
    out = Augmenter("affine", seed=0, device=torch.device("cpu"))(x, torch.zeros(3, dtype=torch.long), 1, 0)[0]
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


def test_pairs_leave_the_other_digits_as_the_augmentation_without_them_makes_them():
    """The pairs' random numbers are drawn after all the others: a share of the batch becomes pairs
    labelled NO_DIGIT, every other digit comes out bit for bit as before (a run of a recipe without
    pairs augments as it always has)."""
    x, y = random_batches([512])[0]
    plain = Augmenter("affine+thickness+print", seed=3, device=torch.device("cpu"))(x, y, 2, 5)
    paired = Augmenter("affine+thickness+print+pairs", seed=3, device=torch.device("cpu"))(x, y, 2, 5)
    made = paired[1] == NO_DIGIT
    assert 0.05 * len(y) < made.sum() < 0.15 * len(y)  # PAIR_SHARE, 0.1
    assert torch.equal(paired[0][~made], plain[0][~made]) and torch.equal(paired[1][~made], plain[1][~made])
    assert not torch.equal(paired[0][made], plain[0][made])


def _bar(column: int) -> torch.Tensor:
    ink = torch.zeros(1, 1, SIDE, SIDE)
    ink[..., 4:24, column - 1:column + 2] = 1.0
    return ink


def test_a_pair_is_the_digit_on_the_left_and_the_one_before_it_on_the_right():
    """Two bars at the field's centre, each in a batch of its own: the pair made of the second holds it
    shrunk left of centre, the first shrunk right of it, the pair about as tall as the scale says."""
    ink = torch.cat([_bar(14), _bar(14)])
    ink[0, ..., 4:8, 13:16] = 0.0  # the first bar shorter at the top: which is which
    ones = torch.ones(2)
    draws = Draws(None, None, ones, ones, ones, torch.ones(4), None, ones * 0, ones * 0.5, ones * 0.5)
    pair = _pairs(ink, draws)[1, 0]  # the second digit, paired with the first
    columns = pair.sum(0)
    left, right = columns[:14], columns[14:]
    assert left.max() > 0.5 and right.max() > 0.5 and columns[13:15].max() < 0.1  # two bars, apart
    scale = (PAIR_SCALE[0] + PAIR_SCALE[1]) / 2
    assert abs(int(pair[:, :14].sum(1).gt(0.5).sum()) - 20 * scale) <= 2  # the second bar, 20 rows tall
    assert abs(int(pair[:, 14:].sum(1).gt(0.5).sum()) - 16 * scale) <= 2  # the first, 16
