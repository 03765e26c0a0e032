"""The general step: autograd, a torch.optim optimiser and a per-step learning-rate schedule."""

from __future__ import annotations

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


class AutogradStep:
    """step(x, y) -> loss for any recipe: autograd, a torch.optim optimiser and a per-step schedule."""

    def __init__(self, model: torch.nn.Module, recipe: Recipe, total_steps: int, compute_dtype=torch.float32):
        self.model = model
        self.compute_dtype = compute_dtype
        self.loss_fn = make_loss(recipe.loss, recipe.label_smoothing)
        self.optimizer = make_optimizer(model, recipe)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(recipe, total_steps))

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self._match_parameter_layouts()
        self.schedule.load_state_dict(state["schedule"])

    def _match_parameter_layouts(self) -> None:
        """Give each loaded moment its parameter's memory layout (a channels-last convnet's weights;
        files hold them contiguous): the fused update walks parameter and moments in one order."""
        for param, values in self.optimizer.state.items():
            for key, value in values.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    values[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, share: float = 1.0) -> torch.Tensor:
        """One step; in data-parallel training, share weights this rank's loss (see distributed.py)."""
        if self.compute_dtype == torch.float32:
            out = self.model(x)
        else:
            with torch.autocast(x.device.type, dtype=self.compute_dtype):
                out = self.model(x)
        loss = self.loss_fn(out.float(), y)
        if share != 1.0:
            loss = loss * share
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        return loss.detach()
