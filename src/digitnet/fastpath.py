"""The seed recipe's training step written out by hand: forward, backward and SGD in place.

For loss = sum((out - onehot)^2) / n and plain SGD, autograd and torch.optim add per-step
allocations, a graph, and a separate gradient buffer per weight. Here every step runs
the GEMMs the math needs and little else:

    forward   h1 = relu(x W1^T + b1), h2 = relu(h1 W2^T + b2), out = h2 W3^T + b3
    backward  g3 = 2 (out - onehot) / n,  g2 = (g3 W3) * [h2 > 0],  g1 = (g2 W2) * [h1 > 0]
    update    W_k -= lr * g_k^T h_{k-1}   (one addmm_ per layer: gradient and update fused)
              b_k -= lr * sum(g_k, dim 0)

All intermediates live in buffers allocated once per batch size. The weights are the
model's own parameters, updated in place, so the model is always current.
tests/test_fastpath.py checks the step against autograd + torch.optim.SGD, and
tests/test_parity_tensorflow.py the whole recipe against the tutorial's TensorFlow loop.
"""

from __future__ import annotations

import torch
from torch import nn

from digitnet.recipes import Recipe

_relu_backward_into = torch.ops.aten.threshold_backward.grad_input


def supports(recipe: Recipe) -> bool:
    """True when the recipe is plain SGD on the tutorial's MSE loss at a constant rate."""
    return (recipe.loss == "mse-sum" and recipe.optimizer == "sgd" and recipe.momentum == 0
            and recipe.weight_decay == 0 and recipe.schedule == "constant")


class _Buffers:
    def __init__(self, n: int, sizes: list[int], device, dtype):
        self.acts = [torch.empty(n, s, device=device, dtype=dtype) for s in sizes[1:]]
        self.grads = [torch.empty(n, s, device=device, dtype=dtype) for s in sizes[1:]]
        self.masked = [torch.empty(n, s, device=device, dtype=dtype) for s in sizes[1:]]
        self.bias_grads = [torch.empty(s, device=device, dtype=dtype) for s in sizes[1:]]
        self.target = torch.empty(n, sizes[-1], device=device, dtype=dtype)


class FusedSGDStep:
    """Callable step(x, y) -> loss (0-d tensor) for an nn.Sequential of Linear/ReLU layers."""

    def __init__(self, model: nn.Sequential, lr: float):
        self.linears = [m for m in model if isinstance(m, nn.Linear)]
        self.lr = lr  # constant: the fast path serves only the "constant" schedule
        weight = self.linears[0].weight
        self.device, self.dtype = weight.device, weight.dtype
        self.sizes = [self.linears[0].in_features] + [layer.out_features for layer in self.linears]
        self.eye = torch.eye(self.sizes[-1], device=self.device, dtype=self.dtype)
        self._buffers: dict[int, _Buffers] = {}

    def _buffers_for(self, n: int) -> _Buffers:
        if n not in self._buffers:  # at most two sizes: the full batch and the last partial one
            self._buffers[n] = _Buffers(n, self.sizes, self.device, self.dtype)
        return self._buffers[n]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(x)
        buf = self._buffers_for(n)
        inputs = [x]
        for i, layer in enumerate(self.linears):
            out = torch.addmm(layer.bias, inputs[-1], layer.weight.t(), out=buf.acts[i])
            if i < len(self.linears) - 1:
                out.relu_()
            inputs.append(out)
        out = inputs.pop()  # the logits; inputs[k] now feeds linears[k]
        torch.index_select(self.eye, 0, y, out=buf.target)
        diff = out.sub_(buf.target)
        loss = torch.dot(diff.view(-1), diff.view(-1)) / n
        grad = diff.mul_(2.0 / n)
        for k in range(len(self.linears) - 1, -1, -1):
            layer = self.linears[k]
            if k > 0:  # the gradient flowing into layer k-1, computed before W_k changes
                below = torch.mm(grad, layer.weight, out=buf.grads[k - 1])
                below = _relu_backward_into(below, inputs[k], 0.0, grad_input=buf.masked[k - 1])
            layer.weight.addmm_(grad.t(), inputs[k], alpha=-self.lr)
            layer.bias.sub_(torch.sum(grad, 0, out=buf.bias_grads[k]), alpha=self.lr)
            if k > 0:
                grad = below
        return loss
