"""The augmentation's geometry (data/augment.py) against torch's own functions it replaces."""

import numpy as np
import torch
import torch.nn.functional as F
from conftest import random_batches
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from digitnet.data.augment import Augmenter, _affine_grid, _dilate
from digitnet.settings import SIDE

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
