"""The AdamW update called directly on the CPU and the schedule's fields set directly (training/optim.py,
HostFusedAdamW, HostSchedule) against torch's own optimizer.step() and LambdaLR.step(): bit for bit, through
the recipes' steps, fallbacks and a checkpoint."""

import copy

import pytest
import torch
from conftest import random_batches

from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet.training.backprop import BackpropStep
from digitnet.training.devices import fast_layout
from digitnet.training.optim import (AutogradStep, HostFusedAdamW, HostSchedule, host_fused_adamw_serves,
                                    host_schedule_serves, lr_factor)


def _batches(count: int, n: int = 64, seed: int = 0):
    return random_batches([n] * count, seed)


def _assert_same(a_step, b_step) -> None:
    for a, b in zip(a_step.model.parameters(), b_step.model.parameters()):
        assert torch.equal(a, b)
    a_state, b_state = a_step.state_dict(), b_step.state_dict()
    assert a_state["schedule"] == b_state["schedule"]
    for a, b in zip(a_state["optimizer"]["state"].values(), b_state["optimizer"]["state"].values()):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("step_kind", "recipe_name", "model_options"),
                         [(BackpropStep, "best", {}), (AutogradStep, "best", {"hidden": (32,)}),
                          (AutogradStep, "cnn", {"kind": "cnn"})])
def test_direct_adamw_call_is_torchs_step_bit_for_bit_and_resumes_either_way(step_kind, recipe_name, model_options):
    recipe = get_recipe(recipe_name)
    batches = _batches(12, n=16 if recipe_name == "cnn" else 64)
    def model():  # as training lays it out (the convnet channels-last)
        return fast_layout(build_model(seed=2, **model_options), torch.device("cpu"))

    direct, torchs = (step_kind(model(), recipe, 12) for _ in range(2))
    assert isinstance(direct.updater, HostFusedAdamW) and isinstance(direct.scheduler, HostSchedule)
    torchs.updater, torchs.scheduler = torchs.optimizer, torchs.schedule
    for x, y in batches[:6]:  # the rate rises (warm-up), then falls
        assert torch.equal(direct(x, y), torchs(x, y))
    _assert_same(direct, torchs)

    saved = copy.deepcopy(direct.state_dict())
    resumed = step_kind(model(), recipe, 12)
    resumed.model.load_state_dict(direct.model.state_dict())
    resumed.load_state_dict(saved)
    for x, y in batches[6:]:
        direct(x, y), torchs(x, y), resumed(x, y)
    _assert_same(direct, torchs)
    _assert_same(resumed, torchs)


def test_direct_adamw_call_leaves_a_parameter_without_gradient_to_torch():
    """torch's step skips a parameter whose .grad is None (its state unchanged); so does ours, by handing
    such a step to torch."""
    model = build_model(seed=3, hidden=(16,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1, fused=True)
    reference = copy.deepcopy(model)
    ref_optimizer = torch.optim.AdamW(reference.parameters(), lr=0.01, weight_decay=0.1, fused=True)
    direct = HostFusedAdamW(optimizer)
    x, y = _batches(1, n=8)[0]
    for step_number in range(4):
        for m, opt in ((model, optimizer), (reference, ref_optimizer)):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(m(x), y).backward()
            if step_number == 2:
                m[-1].bias.grad = None
        direct.step()
        ref_optimizer.step()
        for a, b in zip(model.parameters(), reference.parameters()):
            assert torch.equal(a, b)
    last_bias = model[-1].bias
    assert optimizer.state[last_bias]["step"].item() == 3.0  # one step skipped, as torch skips it


def test_direct_adamw_call_serves_plain_fused_adamw_on_the_cpu_only():
    def adamw(lr=0.01, groups=1, **options):
        params = [torch.zeros(3, requires_grad=True) for _ in range(groups)]
        return torch.optim.AdamW([{"params": [p]} for p in params], lr=lr, **options)

    assert host_fused_adamw_serves(adamw(fused=True))
    assert not host_fused_adamw_serves(adamw())  # torch's own for-each AdamW: different arithmetic
    assert not host_fused_adamw_serves(adamw(fused=True, amsgrad=True))
    assert not host_fused_adamw_serves(adamw(fused=True, maximize=True))
    assert not host_fused_adamw_serves(adamw(fused=True, groups=2))
    assert not host_fused_adamw_serves(adamw(lr=torch.tensor(0.01), fused=True))  # a rate on the device
    assert not host_fused_adamw_serves(torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=0.1))
    if torch.cuda.is_available():
        cuda = torch.optim.AdamW([torch.zeros(3, device="cuda", requires_grad=True)], fused=True)
        assert not host_fused_adamw_serves(cuda)


@pytest.mark.parametrize("kernel", ["missing", "wrong_arguments", "silently_different"])
def test_a_torch_whose_private_kernel_changed_keeps_its_own_step(monkeypatch, kernel):
    """HostFusedAdamW calls a private torch function: where it is gone, takes other arguments or computes
    something else (simulated by replacing the function HostFusedAdamW calls, not torch's own), the
    optimiser's own step serves instead, and training still matches torch."""
    from digitnet.training import optim

    real = torch._fused_adamw_
    replacements = {
        "missing": None,
        "wrong_arguments": lambda *args, **kwargs: real(*args, **{k: v for k, v in kwargs.items() if k != "lr"}),
        "silently_different": lambda *args, **kwargs: real(*args, **{**kwargs, "weight_decay": 0.0}),
    }
    optim._direct_call_matches_torch.cache_clear()
    monkeypatch.setattr(optim, "_fused_adamw", replacements[kernel])
    try:
        step = BackpropStep(build_model(seed=2), get_recipe("best"), 12)
        assert step.updater is step.optimizer
        reference = BackpropStep(build_model(seed=2), get_recipe("best"), 12)
        reference.updater = reference.optimizer
        for x, y in _batches(3):
            step(x, y), reference(x, y)
        _assert_same(step, reference)
    finally:
        monkeypatch.undo()
        optim._direct_call_matches_torch.cache_clear()
    assert optim._direct_call_matches_torch()  # the real kernel, once the replacement is gone


def test_direct_adamw_call_follows_a_state_loaded_into_its_own_optimiser():
    """The step counts are views of one tensor and the moments' lists are made once: a load_state_dict
    replaces the optimiser's state, and the next direct step must read the loaded state, not the old."""
    recipe = get_recipe("best")
    batches = _batches(8)
    direct, torchs = (BackpropStep(build_model(seed=2), recipe, 8) for _ in range(2))
    torchs.updater = torchs.optimizer
    for x, y in batches[:2]:
        direct(x, y), torchs(x, y)
    earlier = (copy.deepcopy(direct.model.state_dict()), copy.deepcopy(direct.state_dict()))
    for x, y in batches[2:5]:
        direct(x, y)
    direct.model.load_state_dict(earlier[0])
    direct.load_state_dict(earlier[1])  # back two steps in, as a resume from that point
    for x, y in batches[2:]:
        assert torch.equal(direct(x, y), torchs(x, y))
    _assert_same(direct, torchs)
    counts = [state["step"] for state in direct.optimizer.state.values()]
    assert all(float(c) == 8.0 for c in counts)


def test_direct_schedule_step_is_lambdalrs_over_a_whole_onecycle():
    """Warm-up, cosine and the flat end past the last step: the same rate and the same state each step."""
    recipe = get_recipe("best")
    optimizers = [torch.optim.AdamW([torch.zeros(2, requires_grad=True)], lr=recipe.lr) for _ in range(2)]
    schedules = [torch.optim.lr_scheduler.LambdaLR(o, lr_factor(recipe, 40)) for o in optimizers]
    steppers = (HostSchedule(schedules[0]), schedules[1])
    for _ in range(45):
        for optimizer, stepper in zip(optimizers, steppers):
            optimizer.step()
            stepper.step()
        assert optimizers[0].param_groups[0]["lr"] == optimizers[1].param_groups[0]["lr"]
        assert schedules[0].state_dict() == schedules[1].state_dict()
        assert schedules[0].get_last_lr() == schedules[1].get_last_lr()


def test_direct_schedule_step_serves_one_group_with_a_number_for_its_rate():
    def schedule(lr=0.01, groups=1, kind=torch.optim.lr_scheduler.LambdaLR):
        params = [torch.zeros(3, requires_grad=True) for _ in range(groups)]
        optimizer = torch.optim.SGD([{"params": [p]} for p in params], lr=lr)
        return kind(optimizer, lambda step: 1.0) if kind is torch.optim.lr_scheduler.LambdaLR else kind(optimizer)

    assert host_schedule_serves(schedule())
    assert not host_schedule_serves(schedule(groups=2))
    assert not host_schedule_serves(schedule(lr=torch.tensor(0.01)))
    assert not host_schedule_serves(schedule(kind=torch.optim.lr_scheduler.ConstantLR))


def test_a_torch_whose_lambdalr_keeps_other_state_keeps_its_own_schedule_step(monkeypatch):
    """HostSchedule sets LambdaLR's private fields: where torch's step would leave others (simulated by a
    LambdaLR that counts one more field), torch's own step serves."""
    from digitnet.training import optim

    real_update = torch.optim.lr_scheduler.LambdaLR._update_lr

    def counting_update(self, epoch=None):
        real_update(self, epoch)
        self.updates = getattr(self, "updates", 0) + 1

    optim._host_schedule_matches_torch.cache_clear()
    monkeypatch.setattr(torch.optim.lr_scheduler.LambdaLR, "_update_lr", counting_update)
    try:
        step = BackpropStep(build_model(seed=2), get_recipe("best"), 12)
        assert step.scheduler is step.schedule
    finally:
        monkeypatch.undo()
        optim._host_schedule_matches_torch.cache_clear()
    assert optim._host_schedule_matches_torch()
