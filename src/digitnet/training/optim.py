"""The general step: autograd, a torch.optim optimiser and a per-step learning-rate schedule."""

from __future__ import annotations

import functools
import math

import torch

from digitnet.losses import make_loss
from digitnet.recipes import Recipe


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    params = model.parameters()
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    # fused: one kernel for all parameters' updates (CPU and CUDA), instead of a loop of small ones
    return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)


def lr_factor(recipe: Recipe, total_steps: int):
    """step -> LR multiplier: 1 for "constant"; linear warm-up then cosine to 0 for "onecycle"."""
    if recipe.schedule == "constant":
        return lambda step: 1.0
    warmup = max(1, round(recipe.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class DeviceSchedule:
    """A LambdaLR schedule read on the GPU: the rate of every step in a table there, picked by a
    step counter there and handed to the fused AdamW as a tensor, so that a step needs nothing from
    the host and CUDA graphs can replay whole epochs of them (training/graphs.py). Checkpoints hold
    the state a host-side LambdaLR would have: either kind of step resumes from them."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LambdaLR,
                 total_steps: int):
        self.optimizer, self.schedule = optimizer, schedule
        device = optimizer.param_groups[0]["params"][0].device
        factor, base = schedule.lr_lambdas[0], schedule.base_lrs[0]
        rates = [base * factor(step) for step in range(total_steps + 1)]  # as LambdaLR computes them
        self.table = torch.tensor(rates, dtype=torch.float32, device=device)
        self.counter = torch.zeros(1, dtype=torch.long, device=device)
        self.rate = torch.empty(1, dtype=torch.float32, device=device)
        self.attach()

    def attach(self) -> None:
        """Point the optimiser at the rate tensor and the counter at the LambdaLR's step (after a load)."""
        self.counter.fill_(self.schedule.last_epoch)
        torch.index_select(self.table, 0, self.counter, out=self.rate)
        for group in self.optimizer.param_groups:
            group["lr"] = self.rate

    def step(self) -> None:
        """After the optimiser's step, as LambdaLR.step: the next step's rate."""
        self.counter.add_(1)
        torch.index_select(self.table, 0, self.counter, out=self.rate)

    def state_dicts(self) -> tuple[dict, dict]:
        """The optimiser's and the schedule's state as a host-side LambdaLR run would hold them."""
        step = int(self.counter.item())
        rate = float(self.table[step])
        optimizer = self.optimizer.state_dict()
        for group in optimizer["param_groups"]:
            group["lr"], group["capturable"] = rate, False
        rates = [rate] * len(optimizer["param_groups"])
        return optimizer, {**self.schedule.state_dict(), "last_epoch": step, "_step_count": step + 1, "_last_lr": rates}


class HostSchedule:
    """step() does what LambdaLR.step() does for a schedule over one parameter group whose rate is a
    number, from its second step on: the same fields (last_epoch, _step_count, _last_lr, the group's lr)
    set to the same values, so its state_dict and checkpoints are the LambdaLR's. Between a step's GEMMs,
    whose data push the interpreter's own out of the caches, torch's step took 9-11 us of a 1 ms `best`
    step on a 2-core CPU (2 us in a loop of its own); most of that was the checks, the context and the
    lists around the one multiplication. The first step, with torch's warnings about the order of calls,
    is torch's own; so is every step in a torch whose LambdaLR would leave other values
    (host_schedule_serves)."""

    def __init__(self, schedule: torch.optim.lr_scheduler.LambdaLR):
        self.schedule = schedule

    def step(self) -> None:
        schedule = self.schedule
        if schedule._step_count <= 1:
            schedule.step()
            return
        schedule._step_count += 1
        schedule.last_epoch += 1
        rate = schedule.base_lrs[0] * schedule.lr_lambdas[0](schedule.last_epoch)  # as LambdaLR.get_lr
        schedule.optimizer.param_groups[0]["lr"] = rate  # looked up each time: a loaded state replaces the group
        schedule._last_lr = [rate]


def host_schedule_serves(schedule: torch.optim.lr_scheduler.LRScheduler) -> bool:
    """A LambdaLR over one parameter group whose rate is a number, in a torch whose LambdaLR.step leaves
    what HostSchedule.step leaves."""
    groups = schedule.optimizer.param_groups
    return (type(schedule) is torch.optim.lr_scheduler.LambdaLR and len(groups) == 1
            and not torch.is_tensor(groups[0]["lr"]) and _host_schedule_matches_torch())


@functools.cache
def _host_schedule_matches_torch() -> bool:
    """Whether HostSchedule leaves LambdaLR's state and rate after each of five steps (about 1 ms, once
    a process)."""
    states = []
    for host in (False, True):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 3))
        stepper = HostSchedule(schedule) if host else schedule
        trace = []
        try:
            for _ in range(5):
                optimizer.step()
                stepper.step()
                trace.append((schedule.state_dict(), optimizer.param_groups[0]["lr"]))
        except (AttributeError, TypeError, IndexError):
            return False
        states.append(trace)
    return states[0] == states[1]


# the kernel torch's fused AdamW calls on the CPU and GPUs (private: _direct_call_matches_torch checks it)
_fused_adamw = getattr(torch, "_fused_adamw_", None)


class HostFusedAdamW:
    """step() does what optimizer.step() does for a fused torch.optim.AdamW on the CPU: the same
    kernel with the same arguments, called directly. Around that kernel torch's step spends about
    as long in Python (grouping tensors by device and dtype, checks, hooks) as the kernel itself
    takes for best's 235k weights on a 2-core CPU (benchmarks/step_breakdown.py, step against
    step-torch). The optimiser's own state tensors are updated, so its state_dict and checkpoints are
    exactly torch's (tests/test_optim.py). Their step counts become views of one tensor, advanced by
    one add where torch's for-each add over six 0-d tensors took 10-15 us a step. A step where some
    parameter has no gradient, or whose state torch has not created yet (the first), is left to
    torch's own step, and so is every step in a torch whose kernel, called this way, does not give
    what its own step gives (host_fused_adamw_serves)."""

    def __init__(self, optimizer: torch.optim.AdamW):
        self.optimizer = optimizer
        self.params = list(optimizer.param_groups[0]["params"])
        self._bound_state: dict | None = None  # the optimiser's state mapping the lists below were made from
        self._moments: tuple[list, list] = ([], [])
        self._counts = torch.zeros(0)
        self._count_views: list[torch.Tensor] = []
        self._one = torch.ones(len(self.params))  # added as a tensor: a Python 1 is wrapped and converted every step

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads) or not self._bind():
            self.optimizer.step()
            return
        self._counts.add_(self._one)  # as torch's step: the count the kernel's bias corrections read
        group = self.optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        _fused_adamw(self.params, grads, *self._moments, [], self._count_views, amsgrad=False, lr=group["lr"],
                     beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)

    def _bind(self) -> bool:
        """Make the kernel's lists from the optimiser's states (the moments, and the step counts as views
        of one tensor) once every parameter has one, and again whenever the state was replaced: a
        load_state_dict puts a new mapping in its place. False while some state is missing (before
        torch's first step)."""
        state = self.optimizer.state
        if state is self._bound_state:
            return True
        states = [state.get(p) for p in self.params]
        if not all(states):
            return False
        self._moments = ([s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states])
        self._counts = torch.stack([s["step"] for s in states])
        self._count_views = list(self._counts.unbind())
        for s, view in zip(states, self._count_views):
            s["step"] = view
        self._bound_state = state
        return True


def host_fused_adamw_serves(optimizer: torch.optim.Optimizer) -> bool:
    """A fused, plain AdamW (one group, no amsgrad, not maximising) over CPU parameters, its rate a
    number, in a torch whose kernel, called directly, still does what its own step does."""
    if not isinstance(optimizer, torch.optim.AdamW):
        return False
    groups = optimizer.param_groups
    group = groups[0]
    flags = ("amsgrad", "maximize", "capturable", "differentiable")
    return (len(groups) == 1 and bool(group["params"]) and bool(group.get("fused"))
            and not any(group.get(flag) for flag in flags) and not torch.is_tensor(group["lr"])
            and all(p.device.type == "cpu" for p in group["params"]) and _direct_call_matches_torch())


@functools.cache
def _direct_call_matches_torch() -> bool:
    """Whether torch's private fused AdamW kernel, called as HostFusedAdamW calls it, leaves what torch's
    own step leaves (three steps on 37 values: the vectorised body and the scalar tail). A torch that
    renamed or changed it keeps its own step; the check costs about 2 ms, once a process."""
    gen = torch.Generator().manual_seed(0)
    start, grads = torch.randn(37, generator=gen), [torch.randn(37, generator=gen) for _ in range(3)]
    results = []
    try:
        for direct in (False, True):
            param = start.clone().requires_grad_()
            optimizer = torch.optim.AdamW([param], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, fused=True)
            update = HostFusedAdamW(optimizer) if direct else optimizer
            for grad in grads:
                param.grad = grad.clone()
                update.step()
            results.append((param.detach(), *optimizer.state[param].values()))
    except (TypeError, RuntimeError):  # None, or other arguments
        return False
    return all(torch.equal(a, b) for a, b in zip(*results))


def _triton_adamw_serves(optimizer: torch.optim.Optimizer) -> bool:
    if not optimizer.param_groups[0]["params"][0].is_cuda:  # Triton is imported only where it can serve
        return False
    from digitnet.training.triton_adamw import usable

    return usable(optimizer)


class AutogradStep:
    """step(x, y) -> loss for any recipe: autograd, a torch.optim optimiser and a per-step schedule."""

    def __init__(self, model: torch.nn.Module, recipe: Recipe, total_steps: int, compute_dtype=torch.float32):
        self.model = model
        self.compute_dtype = compute_dtype
        self.loss_fn = make_loss(recipe.loss, recipe.label_smoothing, no_digit="pairs" in recipe.augment)
        self.optimizer = make_optimizer(model, recipe)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(recipe, total_steps))
        # the schedule's step: HostSchedule where it serves, torch's LambdaLR.step otherwise
        self.scheduler = HostSchedule(self.schedule) if host_schedule_serves(self.schedule) else self.schedule
        self.device_schedule: DeviceSchedule | None = None
        self.keep_gradients = False  # zero the gradients in place instead of dropping them (graphs.EpochGraph)
        # the update, optimizer.step() or a faster equal: HostFusedAdamW on the CPU, TritonAdamW on a GPU
        self.updater = HostFusedAdamW(self.optimizer) if host_fused_adamw_serves(self.optimizer) else self.optimizer

    def schedule_on_device(self, total_steps: int, triton_adamw: bool | None = None) -> None:
        """Read the learning rate on the device from now on (fused AdamW on a GPU), see DeviceSchedule;
        AdamW's update then runs as one Triton kernel where that serves (None: on a GPU with Triton)."""
        self.device_schedule = DeviceSchedule(self.optimizer, self.schedule, total_steps)
        if triton_adamw is None:
            triton_adamw = _triton_adamw_serves(self.optimizer)
        if triton_adamw:
            from digitnet.training.triton_adamw import TritonAdamW

            self.updater = TritonAdamW(self.optimizer, self.device_schedule)
        else:
            self.updater = self.optimizer

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        if self.device_schedule is not None:
            optimizer, schedule = self.device_schedule.state_dicts()
            return {"optimizer": optimizer, "schedule": schedule}
        return {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self._match_parameter_layouts()
        self.schedule.load_state_dict(state["schedule"])
        if self.device_schedule is not None:
            self.device_schedule.attach()

    def _update(self) -> None:
        """The optimiser's step, then the schedule's, on the host or on the device (the Triton AdamW
        advances the device schedule itself)."""
        self.updater.step()
        if not getattr(self.updater, "advances_schedule", False):
            (self.scheduler if self.device_schedule is None else self.device_schedule).step()

    def _match_parameter_layouts(self) -> None:
        """Give each loaded moment its parameter's memory layout (a channels-last convnet's weights;
        files hold them contiguous): the fused update walks parameter and moments in one order."""
        for param, values in self.optimizer.state.items():
            for key, value in values.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    values[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, share: float = 1.0,
                 loss_out: torch.Tensor | None = None) -> torch.Tensor:
        """One step; in data-parallel training, share weights this rank's loss (see distributed.py).
        The batch's loss, written into loss_out (0-d, on the device) where given."""
        if self.compute_dtype == torch.float32:
            out = self.model(x)
        else:
            with torch.autocast(x.device.type, dtype=self.compute_dtype):
                out = self.model(x)
        loss = self.loss_fn(out.float(), y)
        if share != 1.0:
            loss = loss * share
        # gradients zeroed in place keep their addresses from step to step, which a CUDA graph needs
        self.optimizer.zero_grad(set_to_none=not self.keep_gradients)
        loss.backward()
        self._update()
        return loss.detach() if loss_out is None else loss_out.copy_(loss.detach())
