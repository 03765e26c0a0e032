import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from digitnet.data.batches import EpochBatches, epoch_order, scale_images


def test_scaling_is_the_tutorial_formula():
    images = np.resize(np.arange(256, dtype=np.uint8), 28 * 28).reshape(1, 28, 28)
    x = scale_images(images)
    assert x.shape == (1, 784) and x.dtype == torch.float32
    expected = (2 * images.reshape(1, 784).astype(np.float32)) / np.float32(255.0) - np.float32(1.0)
    np.testing.assert_array_equal(x.numpy(), expected)
    assert x.min() == -1.0 and x.max() == 1.0


@given(st.lists(st.integers(0, 255), min_size=784, max_size=784))
def test_scaling_is_monotone_and_in_range(pixels):
    x = scale_images(np.array(pixels, np.uint8).reshape(1, 28, 28))[0].numpy()
    assert ((-1 <= x) & (x <= 1)).all()
    order = np.argsort(pixels, kind="stable")
    assert (np.diff(x[order]) >= 0).all()


def test_batches_keep_the_last_partial_batch():
    x, y = torch.zeros(60000, 784), torch.zeros(60000, dtype=torch.long)
    batches = EpochBatches(x, y, 512, shuffle=False)
    sizes = [len(xb) for xb, _ in batches.epoch(1)]
    assert len(batches) == len(sizes) == 118
    assert sizes[:-1] == [512] * 117 and sizes[-1] == 96


def test_no_shuffle_keeps_order_and_shuffle_is_a_seeded_permutation():
    x = torch.arange(1000, dtype=torch.float32)[:, None].repeat(1, 3)
    y = torch.arange(1000)
    fixed = torch.cat([yb.clone() for _, yb in EpochBatches(x, y, 64, shuffle=False).epoch(1)])
    assert fixed.tolist() == list(range(1000))
    shuffled = EpochBatches(x, y, 64, seed=3, shuffle=True)
    one = torch.cat([yb.clone() for _, yb in shuffled.epoch(1)])
    again = torch.cat([yb.clone() for _, yb in EpochBatches(x, y, 64, seed=3).epoch(1)])
    two = torch.cat([yb.clone() for _, yb in shuffled.epoch(2)])
    assert sorted(one.tolist()) == list(range(1000))
    assert one.tolist() == again.tolist() and one.tolist() != two.tolist()
    xs = torch.cat([xb.clone() for xb, _ in shuffled.epoch(1)])
    assert (xs[:, 0].long() == one).all()  # images travel with their labels


def test_epoch_order_depends_on_seed_and_epoch():
    assert not torch.equal(epoch_order(100, 0, 1, True), epoch_order(100, 1, 1, True))
    assert torch.equal(epoch_order(100, 5, 7, True), epoch_order(100, 5, 7, True))


@given(st.integers(1, 700), st.integers(1, 300), st.integers(0, 3))
def test_shuffled_batches_are_the_orders_rows_in_turn(n, batch_size, seed):
    """Each batch, gathered into reused buffers, is exactly the rows its slice of the epoch's order
    names, the last partial one included, for any size of split and batch."""
    x = torch.arange(n, dtype=torch.float32)[:, None] * torch.tensor([1.0, -1.0])
    y = torch.arange(n) * 10
    batches = EpochBatches(x, y, batch_size, seed=seed)
    order = batches.order(1)
    count = 0
    for i, (xb, yb) in enumerate(batches.epoch(1)):  # each valid until the next is taken
        index = order[i * batch_size : (i + 1) * batch_size]
        assert torch.equal(yb, y[index]) and torch.equal(xb, x[index])
        count += 1
    assert count == len(batches)
