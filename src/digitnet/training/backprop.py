"""The MLP's backward pass written out, for every recipe the hand-fused SGD step does not serve.

At `best`'s batch of 128 the GEMMs are small, and autograd's graph, its per-step allocations and
the separate zeroing of gradients cost a fifth of each step on a 2-core CPU. Here the forward and
backward passes run the GEMMs the math needs into buffers allocated once per batch size, the
loss gradient is written directly (cross-entropy with label smoothing or the tutorial's MSE), the
weight gradients land in the parameters' .grad tensors, and the recipe's own torch.optim optimiser
(AdamW fused into one kernel) and schedule update the weights, as AutogradStep's do; checkpoints
are interchangeable. With `--precision bf16` the GEMMs run in bfloat16 (twice fp32's speed on CPUs
with AVX512-BF16 or AMX) on copies of the weights refreshed every step, while the loss, its
gradient, the weight gradients handed to the optimiser and the weights stay fp32.
tests/test_fastpath.py checks it against autograd step by step.
"""

from __future__ import annotations

import torch
from torch import nn

from digitnet.recipes import Recipe
from digitnet.training.optim import AutogradStep

_relu_backward_into = torch.ops.aten.threshold_backward.grad_input


def supports_model(model: nn.Module) -> bool:
    """True for an MLP: Linear and ReLU layers only."""
    return all(isinstance(m, nn.Linear | nn.ReLU) for m in model)


class _Buffers:
    def __init__(self, n: int, sizes: list[int], device, dtype):
        self.acts = [torch.empty(n, s, device=device, dtype=dtype) for s in sizes[1:]]
        self.grads = [torch.empty(n, s, device=device, dtype=dtype) for s in sizes[1:-1]]
        self.masked = [torch.empty(n, s, device=device, dtype=dtype) for s in sizes[1:-1]]
        self.logits = torch.empty(n, sizes[-1], device=device)  # fp32 from here to the logits' gradient
        self.target = torch.empty(n, sizes[-1], device=device)
        self.log_probs = torch.empty(n, sizes[-1], device=device)


class BackpropStep(AutogradStep):
    """step(x, y) -> loss (0-d fp32 tensor) for an nn.Sequential of Linear/ReLU layers, any loss and optimiser."""

    def __init__(self, model: nn.Sequential, recipe: Recipe, total_steps: int, compute_dtype=torch.float32):
        super().__init__(model, recipe, total_steps, compute_dtype)
        self.linears = [m for m in model if isinstance(m, nn.Linear)]
        self.loss, self.smoothing = recipe.loss, recipe.label_smoothing
        self.sizes = [self.linears[0].in_features] + [layer.out_features for layer in self.linears]
        self.device = self.linears[0].weight.device
        for layer in self.linears:  # written in place every step: nothing to zero, nothing to allocate
            layer.weight.grad = torch.zeros_like(layer.weight)
            layer.bias.grad = torch.zeros_like(layer.bias)
        self._buffers: dict[int, _Buffers] = {}
        self.mixed = compute_dtype != torch.float32
        if self.mixed:  # low-precision copies of the weights, and their gradients before they become fp32
            self.low = [(torch.empty_like(l.weight, dtype=compute_dtype), torch.empty_like(l.bias, dtype=compute_dtype))
                        for l in self.linears]
            self.low_grads = [torch.empty_like(l.weight, dtype=compute_dtype) for l in self.linears]

    def _buffers_for(self, n: int) -> _Buffers:
        if n not in self._buffers:  # at most two sizes: the full batch and the last partial one
            self._buffers[n] = _Buffers(n, self.sizes, self.device, self.compute_dtype)
        return self._buffers[n]

    def _compute_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if not self.mixed:
            return [(l.weight, l.bias) for l in self.linears]
        for (w, b), layer in zip(self.low, self.linears):
            w.copy_(layer.weight)
            b.copy_(layer.bias)
        return self.low

    def _weight_gradient(self, k: int, grad: torch.Tensor, below_input: torch.Tensor) -> None:
        layer = self.linears[k]
        if self.mixed:
            layer.weight.grad.copy_(torch.mm(grad.t(), below_input, out=self.low_grads[k]))
        else:
            torch.mm(grad.t(), below_input, out=layer.weight.grad)
        torch.sum(grad, 0, dtype=torch.float32, out=layer.bias.grad)

    def _loss_and_gradient(self, out: torch.Tensor, y: torch.Tensor, buf: _Buffers) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's mean loss, and its gradient with respect to the logits (written over out)."""
        n, classes = out.shape
        if self.loss == "mse-sum":  # sum((out - onehot)^2) / n
            target = buf.target.zero_().scatter_(1, y[:, None], 1.0)
            diff = out.sub_(target)
            return torch.dot(diff.view(-1), diff.view(-1)) / n, diff.mul_(2.0 / n)
        # cross-entropy against (1 - s) onehot + s / classes: gradient (softmax - target) / n
        share = self.smoothing / classes
        target = buf.target.fill_(share).scatter_(1, y[:, None], 1.0 - self.smoothing + share)
        log_probs = torch.log_softmax(out, 1, out=buf.log_probs)
        loss = torch.dot(target.view(-1), log_probs.view(-1)).neg_() / n
        return loss, torch.exp(log_probs, out=out).sub_(target).div_(n)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One step; x must already be in the compute dtype."""
        buf = self._buffers_for(len(x))
        weights = self._compute_weights()
        inputs = [x]
        for i, (w, b) in enumerate(weights):
            out = torch.addmm(b, inputs[-1], w.t(), out=buf.acts[i])
            if i < len(weights) - 1:
                out.relu_()
            inputs.append(out)
        logits = buf.logits.copy_(inputs.pop())  # inputs[k] now feeds layer k
        loss, grad = self._loss_and_gradient(logits, y, buf)
        for k in range(len(weights) - 1, -1, -1):
            grad = grad.to(self.compute_dtype)
            self._weight_gradient(k, grad, inputs[k])
            if k > 0:
                below = torch.mm(grad, weights[k][0], out=buf.grads[k - 1])
                grad = _relu_backward_into(below, inputs[k], 0.0, grad_input=buf.masked[k - 1])
        self.optimizer.step()
        self.schedule.step()
        return loss
