"""The MLP's backward pass written out, for every recipe the hand-fused SGD step does not serve.

At `best`'s batch of 128 the GEMMs are small, and autograd's graph, its per-step allocations and
the separate zeroing of gradients cost about a sixth of each step on a 2-core CPU
(benchmarks/train_speed.py --recipe best). Here the forward and backward passes run the GEMMs the
math needs into buffers allocated once per batch size (fastpath.MLPLayers), the loss gradient is
written directly (cross-entropy with label smoothing or the tutorial's MSE), the weight gradients
land in the parameters' .grad tensors, and the recipe's own torch.optim optimiser (AdamW fused
into one kernel) and schedule update the weights, as AutogradStep's do; checkpoints are
interchangeable. With `--precision bf16` the GEMMs run in bfloat16 (in 0.6x fp32's time on a Zen 4
CPU with AVX512-BF16, benchmarks/step_breakdown.py) on copies of the weights refreshed every step,
while the loss, its gradient, the weight gradients handed to the optimiser and the weights stay
fp32. tests/test_fastpath.py checks it against autograd step by step.
"""

from __future__ import annotations

import torch
from torch import nn

from digitnet import cpu_linear
from digitnet.cpu_linear import weight_gradient
from digitnet.losses import target_rows
from digitnet.recipes import Recipe
from digitnet.training.fastpath import MLPLayers, StepBuffers
from digitnet.training.optim import AutogradStep

ACCUMULATE_FROM = 100_000  # weights of a layer whose float32 gradient is zeroed, then added to by the GEMM


def supports_model(model: nn.Module) -> bool:
    """True for an MLP: Linear and ReLU layers only."""
    return all(isinstance(m, nn.Linear | nn.ReLU) for m in model)


class BackpropStep(AutogradStep):
    """step(x, y) -> loss (0-d fp32 tensor) for an nn.Sequential of Linear/ReLU layers, any loss and optimiser."""

    def __init__(self, model: nn.Sequential, recipe: Recipe, total_steps: int, compute_dtype=torch.float32,
                 gpu_forms: bool | None = None, fused_tail: bool | None = None):
        super().__init__(model, recipe, total_steps, compute_dtype)
        self.mlp = MLPLayers(model, compute_dtype, gpu_forms, fused_tail)
        self.loss = recipe.loss
        # row c the target for label c, the last NO_DIGIT's: picking rows is one kernel a step
        self.targets = target_rows(recipe.loss, recipe.label_smoothing, self.mlp.device, self.mlp.sizes[-1])
        self._scaled: dict[int, torch.Tensor] = {}
        # written in place every step: nothing to zero, nothing to allocate (a weight gradient from oneDNN
        # replaces its .grad instead, and the next written in place goes into that)
        for layer in self.mlp.linears:
            layer.weight.grad = torch.zeros_like(layer.weight)
            layer.bias.grad = torch.zeros_like(layer.bias)

    def _weight_gradient(self, k: int, grad: torch.Tensor, below_input: torch.Tensor, buf: StepBuffers,
                         with_bias: bool = True) -> None:
        layer = self.mlp.linears[k]
        weight_grad, bias_grad = layer.weight.grad, layer.bias.grad
        if self.mlp.gpu_forms:
            self.mlp.gradients_into(k, grad, below_input, buf, weight_grad, bias_grad, alpha=1.0, beta=0.0,
                                    with_bias=with_bias)
            return
        if self.mlp.mixed:
            weight_grad.copy_(torch.mm(grad.t(), below_input, out=self.mlp.low_grads[k]))
        elif k in buf.onednn_gradients:  # oneDNN writes no out=: its new tensor becomes the gradient, where
            # copying it into weight_grad made best's step 1.02x slower (benchmarks/paired_steps.py --baseline-src)
            layer.weight.grad = weight_gradient(grad, below_input)
        elif weight_grad.numel() >= ACCUMULATE_FROM and cpu_linear.cpu_plan() != cpu_linear.MKL_ONLY:
            # zeroed, then added to: MKL's overwriting GEMM (beta 0) took 1.04-1.3x as long for the first
            # layer's 256 x 784 gradient on an AMD EPYC, but 0.81-0.89x on an Intel Xeon, where MKL runs
            # AVX-512 (benchmarks/step_breakdown.py, wgrad rows)
            weight_grad.zero_().addmm_(grad.t(), below_input)
        else:  # but 0.93x for best's 128 x 256, 1.05x for its 10 x 128 (a throw-away probe, hot)
            torch.mm(grad.t(), below_input, out=weight_grad)
        if with_bias:
            with self.mlp.side.fork(2 * k + 1):
                torch.sum(grad, 0, dtype=torch.float32, out=bias_grad)

    def _loss_and_gradient(self, out: torch.Tensor, y: torch.Tensor, buf: StepBuffers,
                           loss_out: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's mean loss (into loss_out where given), and its gradient with respect to the
        logits (MSE: written over out)."""
        n = len(out)
        if self.loss == "mse-sum":  # sum((out - onehot)^2) / n
            diff = out.sub_(torch.index_select(self.targets, 0, y, out=buf.target))
            return torch.div(torch.dot(diff.view(-1), diff.view(-1)), n, out=loss_out), diff.mul_(2.0 / n)
        # cross-entropy against the smoothed target t, class by class (StepBuffers.by_class), in five
        # operations: with s = -t / n picked by label, the loss is s . log p, its gradient
        # (softmax - t) / n is s + exp(log p) / n
        scaled, log_probs, grad = buf.by_class
        torch.index_select(self._scaled_targets(n), 1, y, out=scaled)
        # the logits class by class: log_softmax would make this copy itself, into a tensor it allocates
        torch.log_softmax(grad.copy_(out.t()), 0, out=log_probs)
        loss = torch.dot(scaled.view(-1), log_probs.view(-1), out=loss_out)
        return loss, torch.add(scaled, torch.exp(log_probs, out=grad), alpha=1.0 / n, out=grad).t()

    def _scaled_targets(self, n: int) -> torch.Tensor:
        """Column c: -(the target for label c) / n, for a batch of n rows (at most two sizes an epoch)."""
        if n not in self._scaled:
            self._scaled[n] = (self.targets / -n).t().contiguous()
        return self._scaled[n]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor, loss_out: torch.Tensor | None = None) -> torch.Tensor:
        """One step; x must already be in the compute dtype. The batch's mean loss, written into loss_out
        (0-d, on the device) where given."""
        loss = self._mlp_pass(x, y, loss_out)
        self._update()
        return loss

    def _mlp_pass(self, x: torch.Tensor, y: torch.Tensor, loss_out: torch.Tensor | None) -> torch.Tensor:
        """The forward and backward passes into the gradients; the loss. The gradient at the first
        layer's output is left in the batch's buffers (masked[0])."""
        buf = self.mlp.buffers(x.shape[0])
        weights = self.mlp.compute_weights()
        if self.mlp.tail_serves(x.shape[0]):
            top, below = self.mlp.linears[-1], self.mlp.linears[-2]
            return self.mlp.fused_tail_pass(weights, x, y, self.targets, self.loss != "mse-sum", buf,
                                            (top.weight.grad, top.bias.grad, 1.0, 0.0), below.bias.grad,
                                            self._weight_gradient, loss_out)
        inputs = self.mlp.forward(weights, x, buf)
        out = inputs.pop()  # inputs[k] now feeds layer k; the logits are needed in fp32 only from here on
        logits = buf.logits.copy_(out) if self.mlp.mixed else out
        loss, grad = self._loss_and_gradient(logits, y, buf, loss_out)
        self.mlp.backward(weights, inputs, grad, buf, self._weight_gradient)
        return loss

