import pytest
import torch
from conftest import random_batches, with_no_digit_labels

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


# gpu_forms: the gradient forms used for float32 on a GPU (outer products for the 10-class layer,
# bias sums as matrix-vector products, the ReLU in the GEMM's epilogue), checked here on the CPU.
@pytest.mark.parametrize("gpu_forms", [False, True])
@pytest.mark.parametrize(("hidden", "sizes"), [((256, 128), [512, 512, 96]), ((32,), [7, 3]), ((64, 32, 16), [50])])
def test_fused_step_matches_autograd_and_sgd(hidden, sizes, gpu_forms):
    assert_fused_step_matches_autograd(hidden, sizes, gpu_forms)


def assert_fused_step_matches_autograd(hidden, sizes, gpu_forms=False) -> FusedSGDStep:
    """FusedSGDStep against autograd and torch.optim.SGD over batches of sizes: losses and weights;
    the step, for what the caller checks further."""
    batches = random_batches(sizes)
    ours, reference = build_model(hidden, seed=1), build_model(hidden, seed=1)
    # A larger rate than the seed's makes every update visible in float32.
    step = FusedSGDStep(ours, lr=0.05, gpu_forms=gpu_forms)
    step.mlp.relu_epilogue = gpu_forms  # the GPU's ReLU in the GEMM's epilogue, on the CPU here
    losses = [step(x, y).item() for x, y in batches]
    assert losses == pytest.approx(_autograd_reference(reference, batches, 0.05), rel=1e-5)
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        assert not torch.equal(a, build_model(hidden, seed=1).state_dict()[name])  # it did train
    return step


def test_fast_path_only_for_plain_sgd_on_mse():
    assert supports(get_recipe("tutorial"))
    assert not supports(get_recipe("tutorial", momentum=0.9))
    assert not supports(get_recipe("tutorial", loss="cross-entropy"))
    assert not supports(get_recipe("best"))


def test_bf16_step_tracks_fp32_with_fp32_master_weights():
    batches = random_batches([64] * 5)
    fp32, bf16 = build_model(seed=3), build_model(seed=3)
    fp32_step, bf16_step = FusedSGDStep(fp32, lr=0.05), FusedSGDStep(bf16, lr=0.05, compute_dtype=torch.bfloat16)
    for x, y in batches:
        a, b = fp32_step(x, y), bf16_step(x.bfloat16(), y)
        assert b.dtype == torch.float32
        assert b.item() == pytest.approx(a.item(), rel=0.02)  # bf16 keeps 8 bits of mantissa
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    for a, b in zip(fp32.parameters(), bf16.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-3)


@pytest.mark.parametrize(("recipe", "overrides", "hidden", "sizes"), [
    ("best", {}, (256, 128), [128, 128, 128, 37]),
    ("best", {"label_smoothing": 0.0, "schedule": "constant"}, (32,), [20, 20, 7]),
    ("tutorial", {"optimizer": "adamw", "lr": 0.01}, (64, 32, 16), [50, 50]),
    ("tutorial", {"momentum": 0.9, "weight_decay": 1e-3, "lr": 0.01}, (256, 128), [64, 64, 64]),
    ("best", {"augment": "affine+thickness+print+pairs"}, (64, 32), [40, 40, 13]),  # NO_DIGIT labels too
    ("tutorial", {"augment": "affine+thickness+print+pairs"}, (64, 32), [40, 40, 13]),
])
@pytest.mark.parametrize("gpu_forms", [False, True])
def test_written_out_backward_pass_matches_autograd_with_the_recipes_optimiser(recipe, overrides, hidden, sizes,
                                                                               gpu_forms):
    from digitnet.training.backprop import BackpropStep

    recipe = get_recipe(recipe, **overrides)
    reference_step, _ = assert_backprop_matches_autograd(recipe, hidden, sizes, gpu_forms)
    resumed = BackpropStep(build_model(hidden, seed=1), recipe, total_steps=10)  # checkpoints interchange
    resumed.load_state_dict(reference_step.state_dict())
    assert resumed.lr == reference_step.lr


def assert_backprop_matches_autograd(recipe, hidden, sizes, gpu_forms=False):
    """BackpropStep against AutogradStep with the recipe's optimiser over batches of sizes: losses,
    rates, weights and the last step's gradients. Returns (the reference step, the step)."""
    from digitnet.training.backprop import BackpropStep
    from digitnet.training.optim import AutogradStep

    batches = with_no_digit_labels(random_batches(sizes), recipe)
    ours, reference = build_model(hidden, seed=1), build_model(hidden, seed=1)
    step = BackpropStep(ours, recipe, total_steps=10, gpu_forms=gpu_forms)
    step.mlp.relu_epilogue = gpu_forms
    reference_step = AutogradStep(reference, recipe, total_steps=10)
    for x, y in batches:
        assert step(x, y).item() == pytest.approx(reference_step(x, y).item(), rel=1e-5)
        assert step.lr == reference_step.lr
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        # Adam moves a weight by about lr whatever its gradient's size, so where a gradient is near
        # zero, rounding in the gradient moves the weight by a visible share of lr: allow 1%.
        torch.testing.assert_close(a, b, rtol=1e-5, atol=0.01 * recipe.lr, msg=name)
        assert not torch.equal(a, build_model(hidden, seed=1).state_dict()[name])  # it did train
    for a, b in zip(ours.parameters(), reference.parameters()):  # the last step's gradients themselves
        # atol: a gradient near zero differs by ~1e-7 between CPUs' kernels (seen on an Intel Xeon)
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    return reference_step, step



def losses_with_and_without_slots(make_step, batches) -> tuple[list, list, list]:
    """Two fresh steps over the same batches, one asked to write each loss into a slot (as a captured
    epoch does): both steps' losses, and the slots."""
    plain, slotted = make_step(), make_step()
    slots = torch.full((len(batches),), float("nan"), device=batches[0][0].device)
    without, returned = [], []
    for i, (x, y) in enumerate(batches):
        without.append(plain(x, y).clone())
        returned.append(slotted(x, y, loss_out=slots[i]))
    return without, returned, list(slots)


@pytest.mark.parametrize("recipe", ["tutorial", "best", "best-mse"])
@pytest.mark.parametrize("gpu_forms", [False, True])
def test_a_step_writes_its_loss_into_the_slot_it_is_given_bit_for_bit(recipe, gpu_forms):
    from digitnet.training.backprop import BackpropStep

    batches = random_batches((64, 64, 9))
    if recipe == "tutorial":
        def make():
            return FusedSGDStep(build_model((32,), seed=1), lr=0.05, gpu_forms=gpu_forms)
    else:
        config = get_recipe("best") if recipe == "best" else get_recipe("tutorial", optimizer="adamw", lr=0.01)

        def make():
            return BackpropStep(build_model((32,), seed=1), config, total_steps=5, gpu_forms=gpu_forms)
    without, returned, slots = losses_with_and_without_slots(make, batches)
    for plain, back, slot in zip(without, returned, slots):
        assert back.data_ptr() == slot.data_ptr()  # written there, not copied
        assert torch.equal(plain, slot) and plain.item() > 0

def test_an_autograd_step_writes_its_loss_into_its_slot_and_keeps_its_gradients_where_asked():
    """The convnet's step in a CUDA graph (graphs.EpochGraph): its loss goes into the epoch's slot, and
    its gradients are zeroed in place (their addresses fixed) instead of dropped: the same bits."""
    from digitnet.training.optim import AutogradStep

    batches = random_batches((16, 16, 5))

    def make(keep: bool):
        step = AutogradStep(build_model(seed=1, kind="cnn"), get_recipe("cnn"), total_steps=5)
        step.keep_gradients = keep
        return step

    without, returned, slots = losses_with_and_without_slots(lambda: make(True), batches)
    for plain, back, slot in zip(without, returned, slots):
        assert back.data_ptr() == slot.data_ptr() and torch.equal(plain, slot) and plain.item() > 0
    dropping, keeping = make(False), make(True)
    addresses = []
    for x, y in batches:
        assert torch.equal(dropping(x, y), keeping(x, y))
        addresses.append([p.grad.data_ptr() for p in keeping.model.parameters()])
    assert addresses[0] == addresses[-1]
    for a, b in zip(dropping.model.parameters(), keeping.model.parameters()):
        assert torch.equal(a, b)


def test_each_recipe_gets_its_fastest_step():
    from digitnet.training.backprop import BackpropStep
    from digitnet.training.optim import AutogradStep
    from digitnet.training.steps import make_step

    def step_for(name, dtype=torch.float32, **overrides):
        recipe = get_recipe(name, **overrides)
        return type(make_step(build_model(kind=recipe.model), recipe, 10, dtype))

    assert step_for("tutorial") is FusedSGDStep
    assert step_for("best") is BackpropStep and step_for("tutorial", momentum=0.5) is BackpropStep
    assert step_for("best", torch.bfloat16) is BackpropStep and step_for("cnn") is AutogradStep


def test_written_out_bf16_step_is_as_accurate_as_autocast_and_keeps_fp32_weights():
    from digitnet.training.backprop import BackpropStep
    from digitnet.training.optim import AutogradStep

    recipe = get_recipe("best")
    batches = random_batches([128] * 5)
    fp32, bf16, autocast = build_model(seed=3), build_model(seed=3), build_model(seed=3)
    fp32_step, bf16_step = BackpropStep(fp32, recipe, 10), BackpropStep(bf16, recipe, 10, torch.bfloat16)
    autocast_step = AutogradStep(autocast, recipe, 10, torch.bfloat16)  # PyTorch's own mixed precision
    for i, (x, y) in enumerate(batches):
        a, b, c = fp32_step(x, y), bf16_step(x.bfloat16(), y), autocast_step(x, y)
        assert b.dtype == torch.float32 and b.item() == pytest.approx(a.item(), rel=0.02)
        assert b.item() == pytest.approx(c.item(), rel=0.02)
        if i == 0:  # the same weights gave all three gradients
            for p32, p16, reference in zip(fp32.parameters(), bf16.parameters(), autocast.parameters()):
                assert p16.grad.dtype == torch.float32 and not torch.equal(p16.grad, p32.grad)
                ours, theirs = (float((g - p32.grad).norm() / p32.grad.norm()) for g in (p16.grad, reference.grad))
                assert ours <= 1.5 * theirs + 1e-3
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    assert not any(torch.equal(a, b) for a, b in zip(bf16.parameters(), build_model(seed=3).parameters()))


def resumed_both_ways(weights: dict, saved: dict, recipe, total_steps: int, device_schedule: dict | None = None,
                      **model_options) -> dict:
    """{"host": (model, step), "device": (model, step)}: BackpropSteps over weights, loaded from saved
    (a step's state_dict), one with its schedule on the host, one on the device (schedule_on_device
    given device_schedule's options)."""
    import copy

    from digitnet.training.backprop import BackpropStep

    resumed = {}
    for kind in ("host", "device"):
        model = build_model(seed=5, **model_options)
        model.load_state_dict(weights)
        step = BackpropStep(model, recipe, total_steps)
        if kind == "device":
            step.schedule_on_device(total_steps, **(device_schedule or {}))
        step.load_state_dict(copy.deepcopy(saved))
        resumed[kind] = (model, step)
    return resumed


def test_schedule_read_on_the_device_follows_the_host_schedule_and_checkpoints_either_way():
    """The rate table and step counter that let CUDA graphs replay best's steps (run here on the CPU's
    tensors: the same code) give the host LambdaLR's rates, and a checkpoint of either resumes the other."""
    from digitnet.training.backprop import BackpropStep

    recipe = get_recipe("best")
    batches = random_batches([128] * 40)
    host_model, device_model = build_model(seed=1), build_model(seed=1)
    host, on_device = BackpropStep(host_model, recipe, 40), BackpropStep(device_model, recipe, 40)
    on_device.schedule_on_device(40)
    for x, y in batches[:20]:  # the warm-up's rates rise, then fall: both halves of onecycle
        host(x, y), on_device(x, y)
        assert on_device.lr == pytest.approx(host.lr, rel=1e-6)
    for a, b in zip(host_model.parameters(), device_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)  # rates rounded to float32: not bit-equal

    saved = on_device.state_dict()
    assert saved["schedule"]["last_epoch"] == host.state_dict()["schedule"]["last_epoch"] == 20
    assert saved["optimizer"]["param_groups"][0]["lr"] == pytest.approx(host.lr, rel=1e-6)
    resumed = resumed_both_ways(device_model.state_dict(), saved, recipe, 40)
    for x, y in batches[20:]:
        on_device(x, y)
        for _, step in resumed.values():
            step(x, y)
    device_resumed, host_resumed = resumed["device"][0], resumed["host"][0]
    for a, b, c in zip(device_model.parameters(), device_resumed.parameters(), host_resumed.parameters()):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-7)
    assert on_device.lr == resumed["device"][1].lr == 0.0  # the end of the cosine
