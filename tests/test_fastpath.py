import pytest
import torch

from digitnet.fastpath import FusedSGDStep, supports
from digitnet.losses import mse_sum
from digitnet.model import build_model
from digitnet.recipes import get_recipe


def _autograd_reference(model, batches, lr):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for x, y in batches:
        loss = mse_sum(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize(("hidden", "sizes"), [((256, 128), [512, 512, 96]), ((32,), [7, 3]), ((64, 32, 16), [50])])
def test_fused_step_matches_autograd_and_sgd(hidden, sizes):
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.rand(n, 784, generator=gen) * 2 - 1, torch.randint(0, 10, (n,), generator=gen)) for n in sizes]
    ours, reference = build_model(hidden, seed=1), build_model(hidden, seed=1)
    # A larger rate than the seed's makes every update visible in float32.
    step = FusedSGDStep(ours, lr=0.05)
    losses = [step(x, y).item() for x, y in batches]
    assert losses == pytest.approx(_autograd_reference(reference, batches, 0.05), rel=1e-5)
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        assert not torch.equal(a, build_model(hidden, seed=1).state_dict()[name])  # it did train


def test_fast_path_only_for_plain_sgd_on_mse():
    assert supports(get_recipe("seed"))
    assert not supports(get_recipe("seed", momentum=0.9))
    assert not supports(get_recipe("seed", loss="cross-entropy"))
    assert not supports(get_recipe("best"))
