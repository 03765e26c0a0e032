"""AdamW over all of a model's parameters in one Triton kernel, for steps whose rate lives on the GPU.

On an H100 torch's fused AdamW took 30 us of best's 84 us step (batch 128, an MLP of 235k weights;
benchmarks/gpu_step_probe.py), where reading and writing every weight, gradient and moment takes
about 3 us at the card's bandwidth. Here one launch updates every parameter, each program a block of
one tensor found through a table of addresses, with torch's AdamW arithmetic (decoupled weight
decay, bias corrections from the step count) on the optimiser's own state tensors: the optimiser's
state_dict, checkpoints and a later torch step see exactly what torch's own step would have left.
The same launch does the bookkeeping that took three more kernels (the step counts' foreach add,
the schedule's counter and its rate; with the two changes beside it, best's epoch went from 1.05x
to 0.99x JAX's time on an H200, docs/performance.md): it reads the rate from the device schedule's
table at its counter, and the last block to finish (the one an atomic count of finished blocks names
last, so every block has read counter and step counts before they change) advances every
parameter's step count, the schedule's counter and its rate.
"""

from __future__ import annotations

import itertools
import os

import torch

from digitnet.training.triton_tail import TRITON_ENV  # one switch for both kernels

try:
    import triton
    import triton.language as tl
except ImportError:  # PyTorch's CPU builds: torch's own AdamW
    triton = None

BLOCK = 1024


def usable(optimizer: torch.optim.Optimizer) -> bool:
    """Plain AdamW (one group, no amsgrad, not maximising) over float32 parameters on a GPU, with Triton."""
    if triton is None or os.environ.get(TRITON_ENV, "1") == "0" or not isinstance(optimizer, torch.optim.AdamW):
        return False
    groups = optimizer.param_groups
    params = groups[0]["params"] if len(groups) == 1 else []
    return (bool(params) and not groups[0]["amsgrad"] and not groups[0]["maximize"]
            and all(p.is_cuda and p.dtype == torch.float32 for p in params))


if triton is not None:

    @triton.jit
    def _adamw_kernel(table_ptr, starts_ptr, sizes_ptr, counter_ptr, rates_ptr, rate_ptr, finished_ptr, last_rate,
                      beta1, beta2, weight_decay, eps, T: tl.constexpr, PARAMS: tl.constexpr, BLOCK: tl.constexpr):
        block = tl.program_id(0)
        counter = tl.load(counter_ptr)
        lr = tl.load(rates_ptr + counter)
        slot = tl.sum((tl.load(starts_ptr + tl.arange(0, T)) <= block).to(tl.int32), 0) - 1
        offsets = (block - tl.load(starts_ptr + slot)) * BLOCK + tl.arange(0, BLOCK)
        inside = offsets < tl.load(sizes_ptr + slot)
        param_ptr = tl.load(table_ptr + slot).to(tl.pointer_type(tl.float32))
        grad_ptr = tl.load(table_ptr + T + slot).to(tl.pointer_type(tl.float32))
        exp_avg_ptr = tl.load(table_ptr + 2 * T + slot).to(tl.pointer_type(tl.float32))
        exp_avg_sq_ptr = tl.load(table_ptr + 3 * T + slot).to(tl.pointer_type(tl.float32))
        step = tl.load(tl.load(table_ptr + 4 * T + slot).to(tl.pointer_type(tl.float32))) + 1
        param = tl.load(param_ptr + offsets, mask=inside, other=0.0)
        grad = tl.load(grad_ptr + offsets, mask=inside, other=0.0)
        exp_avg = tl.load(exp_avg_ptr + offsets, mask=inside, other=0.0)
        exp_avg_sq = tl.load(exp_avg_sq_ptr + offsets, mask=inside, other=0.0)
        param = param - lr * weight_decay * param
        exp_avg = beta1 * exp_avg + (1 - beta1) * grad
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
        bias_correction1 = 1 - tl.exp(step * tl.log(beta1))
        bias_correction2 = 1 - tl.exp(step * tl.log(beta2))
        denom = tl.sqrt(exp_avg_sq) / tl.sqrt(bias_correction2) + eps
        param = param - (lr / bias_correction1) * exp_avg / denom
        tl.store(param_ptr + offsets, param, mask=inside)
        tl.store(exp_avg_ptr + offsets, exp_avg, mask=inside)
        tl.store(exp_avg_sq_ptr + offsets, exp_avg_sq, mask=inside)
        # Every warp of this block has used what it read (the barrier) before the block is counted, and
        # the last block counted writes only after that: no block can read a counter or step it wrote.
        tl.debug_barrier()
        if tl.atomic_add(finished_ptr, 1, sem="acq_rel") == tl.num_programs(0) - 1:
            for k in tl.static_range(PARAMS):
                step_ptr = tl.load(table_ptr + 4 * T + k).to(tl.pointer_type(tl.float32))
                tl.store(step_ptr, tl.load(step_ptr) + 1)
            tl.store(counter_ptr, counter + 1)
            tl.store(rate_ptr, tl.load(rates_ptr + tl.minimum(counter + 1, last_rate)))
            tl.store(finished_ptr, 0)


class TritonAdamW:
    """step() does what optimizer.step() then schedule.step() do for a torch.optim.AdamW whose group's
    lr is the rate tensor of schedule (an optim.DeviceSchedule), in one launch."""

    advances_schedule = True  # AutogradStep then leaves the schedule's step to it

    def __init__(self, optimizer: torch.optim.AdamW, schedule):
        self.optimizer, self.schedule = optimizer, schedule
        self.params = list(optimizer.param_groups[0]["params"])
        self.slots = max(2, triton.next_power_of_2(len(self.params)))
        blocks = [triton.cdiv(p.numel(), BLOCK) for p in self.params]
        self.blocks = sum(blocks)
        device = self.params[0].device
        padding = self.slots - len(self.params)
        starts = [0, *itertools.accumulate(blocks)][:-1] + [self.blocks] * padding  # a padded slot owns no block
        self.starts = torch.tensor(starts, dtype=torch.int32, device=device)
        self.sizes = torch.tensor([p.numel() for p in self.params] + [0] * padding, dtype=torch.int32, device=device)
        self.finished = torch.zeros(1, dtype=torch.int32, device=device)  # blocks done in this launch
        self._table: torch.Tensor | None = None
        self._table_key: tuple | None = None

    @torch.no_grad()
    def step(self) -> None:
        group = self.optimizer.param_groups[0]
        states = [self._state(p) for p in self.params]
        beta1, beta2 = group["betas"]
        rates = self.schedule.table
        _adamw_kernel[(self.blocks,)](self._addresses(states), self.starts, self.sizes, self.schedule.counter, rates,
                                      self.schedule.rate, self.finished, len(rates) - 1, beta1, beta2,
                                      group["weight_decay"], group["eps"], T=self.slots, PARAMS=len(self.params),
                                      BLOCK=BLOCK)

    def _state(self, param: torch.Tensor) -> dict:
        """The parameter's AdamW state, created as torch's fused AdamW creates it on its first step."""
        state = self.optimizer.state[param]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state

    def _addresses(self, states: list[dict]) -> torch.Tensor:
        """The table of every tensor's address the kernel reads, rebuilt only when one has moved (a
        checkpoint loaded): between steps, and inside a CUDA graph, it stays on the device."""
        columns = [[p.data_ptr() for p in self.params], [p.grad.data_ptr() for p in self.params],
                   [s["exp_avg"].data_ptr() for s in states], [s["exp_avg_sq"].data_ptr() for s in states],
                   [s["step"].data_ptr() for s in states]]
        key = tuple(itertools.chain.from_iterable(columns))
        if key != self._table_key:
            padding = [0] * (self.slots - len(self.params))
            rows = [address for column in columns for address in column + padding]
            self._table = torch.tensor(rows, dtype=torch.int64, device=self.params[0].device)
            self._table_key = key
        return self._table
