import pytest
import torch

from digitnet.training.fastpath import FusedSGDStep, supports
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
    assert supports(get_recipe("tutorial"))
    assert not supports(get_recipe("tutorial", momentum=0.9))
    assert not supports(get_recipe("tutorial", loss="cross-entropy"))
    assert not supports(get_recipe("best"))


def test_bf16_step_tracks_fp32_with_fp32_master_weights():
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.rand(64, 784, generator=gen) * 2 - 1, torch.randint(0, 10, (64,), generator=gen))
               for _ in range(5)]
    fp32, bf16 = build_model(seed=3), build_model(seed=3)
    fp32_step, bf16_step = FusedSGDStep(fp32, lr=0.05), FusedSGDStep(bf16, lr=0.05, compute_dtype=torch.bfloat16)
    for x, y in batches:
        a, b = fp32_step(x, y), bf16_step(x.bfloat16(), y)
        assert b.dtype == torch.float32
        assert b.item() == pytest.approx(a.item(), rel=0.02)  # bf16 keeps 8 bits of mantissa
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    for a, b in zip(fp32.parameters(), bf16.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-3)
