"""The Triton kernels of the GPU steps against PyTorch: the fused top layer (training/triton_tail.py)
against autograd, the one-kernel AdamW (training/triton_adamw.py) against torch's. Compiled on a GPU
where there is one, else run on the CPU by Triton's interpreter (conftest.py sets TRITON_INTERPRET=1
there), the same kernels element by element. Skipped where Triton is not installed (PyTorch's CPU
builds)."""

import importlib.util
import os
import platform
import sys

import pytest
import torch
from conftest import random_batches
from test_fastpath import _autograd_reference, losses_with_and_without_slots, resumed_both_ways

from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet.training.backprop import BackpropStep
from digitnet.training.fastpath import FusedSGDStep
from digitnet.training.optim import AutogradStep

if importlib.util.find_spec("triton") is None:
    if os.environ.get("CI") and sys.platform == "linux" and platform.machine() == "x86_64":  # where the extra has it
        pytest.fail("CI must install the [test] extra: triton is missing", pytrace=False)
    pytest.skip("Triton is not installed (PyTorch's CUDA builds bring it; pip install -e '.[test]')",
                allow_module_level=True)


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no GPU, and Triton was not imported in interpreter mode", allow_module_level=True)


def _batches(sizes, seed=0):
    return random_batches(sizes, seed, DEVICE)


# batches smaller than a block of rows (7, 3), a partial last block (96, 50), hidden layers wide
# enough for 16-row blocks (300)
@pytest.mark.parametrize(("hidden", "sizes"), [((256, 128), [512, 96]), ((32,), [7, 3]), ((64, 32, 16), [50]),
                                               ((300,), [40])])
def test_fused_top_layer_trains_as_autograd_and_sgd(hidden, sizes):
    batches = _batches(sizes)
    ours, reference = build_model(hidden, seed=1, device=DEVICE), build_model(hidden, seed=1, device=DEVICE)
    step = FusedSGDStep(ours, lr=0.05, gpu_forms=True, fused_tail=True)
    losses = [step(x, y).item() for x, y in batches]
    assert losses == pytest.approx(_autograd_reference(reference, batches, 0.05), rel=1e-5)
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        assert not torch.equal(a, build_model(hidden, seed=1, device=DEVICE).state_dict()[name])  # it did train


def test_batches_larger_than_the_fused_top_layer_takes_keep_pytorchs_kernels(monkeypatch):
    from digitnet.training import triton_tail

    monkeypatch.setattr(triton_tail, "MAX_ROWS", 32)
    batches = _batches([40, 20, 40])  # PyTorch's kernels, Triton's, PyTorch's
    ours, reference = build_model((64,), seed=1, device=DEVICE), build_model((64,), seed=1, device=DEVICE)
    step = FusedSGDStep(ours, lr=0.05, gpu_forms=True, fused_tail=True)
    assert [step.mlp.tail_serves(len(x)) for x, _ in batches] == [False, True, False]
    losses = [step(x, y).item() for x, y in batches]
    assert losses == pytest.approx(_autograd_reference(reference, batches, 0.05), rel=1e-5)
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(("recipe", "overrides", "hidden", "sizes"), [
    ("best", {}, (256, 128), [128, 128, 37]),
    ("best", {"label_smoothing": 0.0, "schedule": "constant"}, (32,), [20, 7]),
    ("tutorial", {"optimizer": "adamw", "lr": 0.01}, (64, 32, 16), [50, 50]),
])
def test_fused_top_layer_gives_autograds_gradients_to_the_recipes_optimiser(recipe, overrides, hidden, sizes):
    recipe = get_recipe(recipe, **overrides)
    ours, reference = build_model(hidden, seed=1, device=DEVICE), build_model(hidden, seed=1, device=DEVICE)
    step = BackpropStep(ours, recipe, total_steps=10, gpu_forms=True, fused_tail=True)
    reference_step = AutogradStep(reference, recipe, total_steps=10)
    for x, y in _batches(sizes):
        assert step(x, y).item() == pytest.approx(reference_step(x, y).item(), rel=1e-5)
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=0.01 * recipe.lr, msg=name)




@pytest.mark.parametrize("recipe", ["tutorial", "best"])
def test_fused_top_layer_in_a_bf16_run_tracks_pytorchs_bf16_kernels_with_float32_weights(recipe):
    """bf16: the layer's input and the gradient below in bfloat16, the top layer in float32 from the
    master weights; against the same step on PyTorch's kernels (the top layer's GEMM in bfloat16)."""
    batches = [(x.bfloat16(), y) for x, y in _batches([128, 128, 128, 37])]
    models = [build_model((256, 128), seed=1, device=DEVICE) for _ in range(2)]
    if recipe == "tutorial":
        steps = [FusedSGDStep(m, lr=0.05, compute_dtype=torch.bfloat16, fused_tail=t) for m, t in zip(models, (True, False))]
    else:
        steps = [BackpropStep(m, get_recipe("best"), total_steps=10, compute_dtype=torch.bfloat16, fused_tail=t)
                 for m, t in zip(models, (True, False))]
    assert steps[0].mlp.tail_serves(128) and not steps[1].mlp.tail_serves(128)
    for x, y in batches:
        fused, plain = (step(x, y) for step in steps)
        assert fused.dtype == torch.float32
        assert fused.item() == pytest.approx(plain.item(), rel=0.02)  # bf16 keeps 8 bits of mantissa
    assert steps[0].mlp.buffers(128).masked[-1].dtype == torch.bfloat16  # the gradient below, for bf16 GEMMs
    reference = build_model((256, 128), seed=1, device=DEVICE).state_dict()
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert a.dtype == torch.float32
        moved = (b - reference[name]).abs().mean().item()  # AdamW moves every weight by about lr a step
        assert moved > 0 and (a - b).abs().mean().item() <= 0.1 * moved, name  # alike, within bf16's error (~4%)

@pytest.mark.parametrize("recipe", ["tutorial", "best"])
def test_fused_top_layer_writes_the_loss_into_the_slot_it_is_given_bit_for_bit(recipe):
    batches = _batches([48, 48, 5])
    if recipe == "tutorial":
        def make():
            return FusedSGDStep(build_model((32,), seed=1, device=DEVICE), lr=0.05, gpu_forms=True, fused_tail=True)
    else:
        def make():
            return BackpropStep(build_model((32,), seed=1, device=DEVICE), get_recipe("best"), total_steps=5,
                                gpu_forms=True, fused_tail=True)
    without, returned, slots = losses_with_and_without_slots(make, batches)
    for plain, back, slot in zip(without, returned, slots):
        assert back.data_ptr() == slot.data_ptr()  # the apply kernel wrote it there
        assert torch.equal(plain, slot) and plain.item() > 0


def test_a_captured_epochs_loss_slots_are_all_16_byte_aligned_as_triton_specialises():
    from digitnet.training.graphs import loss_slots

    slots = loss_slots(469, DEVICE)
    assert slots.shape == (469,) and slots.dtype == torch.float32
    assert all(slots[i].data_ptr() % 16 == 0 for i in range(len(slots)))  # one compiled variant for every step
    slots.fill_(1.5)
    assert torch.equal(slots.clone(memory_format=torch.contiguous_format), torch.full((469,), 1.5, device=DEVICE))


def test_fused_top_layer_serves_only_float32_mlps_on_a_gpu_with_a_hidden_layer_it_can_hold(monkeypatch):
    from digitnet.training.triton_tail import MAX_HIDDEN, TRITON_ENV, usable

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert usable(cuda, [784, 256, 128, 10])  # float32 and bfloat16 runs alike
    assert not usable(cpu, [784, 256, 128, 10])
    assert not usable(cuda, [784, 10])  # no ReLU below the top layer
    assert not usable(cuda, [784, MAX_HIDDEN + 1, 10])
    monkeypatch.setenv(TRITON_ENV, "0")
    assert not usable(cuda, [784, 256, 128, 10])
    assert FusedSGDStep(build_model(seed=1), lr=0.1).mlp.fused_tail is False  # on the CPU: PyTorch's kernels


def test_one_kernel_adamw_follows_torchs_adamw_and_checkpoints_either_way():
    """20 steps through the onecycle warm-up and down, a checkpoint, 20 more; resumed by the same kind
    of step bit for bit, by torch's AdamW (host schedule) to rounding. The one launch also advances the
    step counts and the schedule on the device."""
    from digitnet.training.triton_adamw import TritonAdamW

    recipe, hidden = get_recipe("best"), (64, 32)
    batches = _batches([128] * 40, seed=3)
    torch_model, triton_model = build_model(hidden, seed=1, device=DEVICE), build_model(hidden, seed=1, device=DEVICE)
    torch_step = BackpropStep(torch_model, recipe, 40)
    triton_step = BackpropStep(triton_model, recipe, 40)
    triton_step.schedule_on_device(40, triton_adamw=True)
    assert isinstance(triton_step.updater, TritonAdamW)
    for x, y in batches[:20]:
        torch_step(x, y), triton_step(x, y)
    for (name, a), b in zip(triton_model.state_dict().items(), torch_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=0.01 * recipe.lr, msg=name)
    moments = [(triton_step.optimizer.state[p], torch_step.optimizer.state[q])
               for p, q in zip(triton_model.parameters(), torch_model.parameters())]
    for ours, theirs in moments:
        assert float(ours["step"]) == float(theirs["step"]) == 20
        torch.testing.assert_close(ours["exp_avg"], theirs["exp_avg"], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(ours["exp_avg_sq"], theirs["exp_avg_sq"], rtol=1e-4, atol=1e-9)
    # the kernel advanced the device schedule too: counter, rate, and its count of finished blocks reset
    assert triton_step.state_dict()["schedule"]["last_epoch"] == torch_step.schedule.last_epoch == 20
    assert triton_step.lr == pytest.approx(torch_step.lr, rel=1e-6)
    assert int(triton_step.updater.finished) == 0

    saved = triton_step.state_dict()
    resumed = resumed_both_ways(triton_model.state_dict(), saved, recipe, 40, dict(triton_adamw=True), hidden=hidden,
                                device=DEVICE)  # host: torch's AdamW; device: the Triton AdamW
    for x, y in batches[20:]:
        triton_step(x, y)
        for _, step in resumed.values():
            step(x, y)
    initial = build_model(hidden, seed=1, device=DEVICE).parameters()
    for a, b, c, d in zip(triton_model.parameters(), resumed["device"][0].parameters(),
                          resumed["host"][0].parameters(), initial):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-5, atol=0.01 * recipe.lr)
        assert not torch.equal(a, d)  # it did train


def test_one_kernel_adamw_serves_plain_float32_adamw_on_a_gpu_only(monkeypatch):
    from digitnet.training.triton_adamw import usable

    def adamw(device="cpu", dtype=torch.float32, **options):
        return torch.optim.AdamW([torch.zeros(3, device=device, dtype=dtype, requires_grad=True)], **options)

    assert not usable(adamw())  # the CPU keeps torch's fused AdamW
    assert not usable(torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=0.1))
    if DEVICE == "cuda":
        assert usable(adamw("cuda"))
        assert not usable(adamw("cuda", amsgrad=True)) and not usable(adamw("cuda", maximize=True))
        assert not usable(adamw("cuda", torch.bfloat16))
        monkeypatch.setenv("DIGITNET_TRITON", "0")
        assert not usable(adamw("cuda"))
