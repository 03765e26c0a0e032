"""The convnet's backward pass written out, for its recipe on a GPU.

Through autograd the convnet's step on an H100 was 0.60 ms of kernels where JAX's whole step took
0.40 (benchmarks/gpu_cnn_probe.py, docs/performance.md): besides cuDNN's convolutions, PyTorch's
max-pool backward, seven reductions, the gradients zeroed and then added to, and a dozen small kernels
for the dense head and its loss. Here a step runs

    conv blocks   cuDNN's convolution without its bias, then pool, bias and ReLU in one kernel
                  (triton_pool.py: the module's values bit for bit); backward one kernel for the
                  ReLU mask, the pooling's scatter and the bias's gradient, then cuDNN's backward;
                  for the first block, whose gradient goes no further, the same kernel also gives
                  its conv's weight gradient (cuDNN's deterministic algorithm for it ran FFTs)
    dense head    the MLP's written-out pass (backprop.BackpropStep: ReLU in the GEMM's epilogue,
                  the top layer and the loss in two Triton kernels), then the gradient it hands the
                  conv blocks, one GEMM

and the recipe's own optimiser and schedule (one Triton AdamW kernel on a GPU), with every gradient
written in place into tensors allocated once. Checkpoints are AutogradStep's; tests/test_convnet.py
checks the step against autograd.
"""

from __future__ import annotations

import torch
from torch import nn

from digitnet.recipes import Recipe
from digitnet.training.backprop import BackpropStep

_LAYOUT = (nn.Unflatten, nn.Conv2d, nn.MaxPool2d, nn.ReLU, nn.Conv2d, nn.MaxPool2d, nn.ReLU, nn.Flatten, nn.Linear,
           nn.ReLU, nn.Linear)


def supports_model(model: nn.Module) -> bool:
    """The digitnet convnet (model.py's layers, in that order), its convolutions 'same'-padded 3x3 of stride
    1 with a bias, its poolings 2x2, on maps of even sides (so each pooling covers its input)."""
    if not isinstance(model, nn.Sequential) or tuple(type(m) for m in model) != _LAYOUT:
        return False
    side = model[0].unflattened_size[-1]
    convs_ok = all(m.kernel_size == (3, 3) and m.stride == (1, 1) and m.padding == (1, 1) and m.dilation == (1, 1)
                   and m.groups == 1 and m.bias is not None for m in model if isinstance(m, nn.Conv2d))
    pools_ok = all(m.kernel_size == 2 and m.stride == 2 and m.padding == 0 and not m.ceil_mode and m.dilation == 1
                   for m in model if isinstance(m, nn.MaxPool2d))
    return convs_ok and pools_ok and side % 4 == 0 and model[1].in_channels == 1


class ConvNetStep(BackpropStep):
    """step(x, y) -> loss (0-d fp32 tensor) for the convnet (supports_model), any loss and optimiser.

    With compute dtype bfloat16 the convolutions and the dense head's GEMMs run in bfloat16 on copies of
    the weights refreshed every step, with float32 accumulation; the feature maps and the gradients
    between layers are bfloat16; the biases, the pooling's bias gradients, the loss, every gradient
    handed to the optimiser and the weights stay float32 (as BackpropStep's mixed precision)."""

    def __init__(self, model: nn.Sequential, recipe: Recipe, total_steps: int, compute_dtype=torch.float32,
                 triton_pool: bool | None = None, gpu_forms: bool | None = None, fused_tail: bool | None = None):
        if not supports_model(model):
            raise ValueError("ConvNetStep needs digitnet's convnet (model.py)")
        super().__init__(model, recipe, total_steps, compute_dtype, gpu_forms, fused_tail)
        self.convs = [m for m in model if isinstance(m, nn.Conv2d)]
        self._conv_masters = [conv.weight for conv in self.convs]
        self._conv_low = [torch.empty_like(w, dtype=compute_dtype) for w in self._conv_masters] if self.mlp.mixed else None
        self.image_shape = tuple(model[0].unflattened_size)
        # imported here: Triton's import costs a server, which never trains, about 50 MB of memory
        from digitnet.training.triton_pool import TorchPool, TritonPool, triton_serves

        if triton_pool is None:
            triton_pool = triton_serves(self.mlp.device)
        self.pool = TritonPool() if triton_pool else TorchPool()
        for conv in self.convs:
            conv.weight.grad = torch.zeros_like(conv.weight)
            conv.bias.grad = torch.zeros_like(conv.bias)
        self._below: dict[int, torch.Tensor] = {}  # batch size -> the dense head's gradient at its input

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor, loss_out: torch.Tensor | None = None) -> torch.Tensor:
        """One step; the batch's mean loss, written into loss_out (0-d, on the device) where given."""
        n = len(x)
        weights = self._conv_weights()
        maps, saved = [x.view(n, *self.image_shape)], []  # maps[k] feeds conv k, maps[k + 1] is its block's output
        for conv, weight in zip(self.convs, weights):
            out, where = self.pool.forward(torch.conv2d(maps[-1], weight, None, 1, 1), conv.bias)
            maps.append(out)
            saved.append(where)
        loss = self._mlp_pass(maps[-1].view(n, -1), y, loss_out)
        grad = self._head_input_gradient(n).view_as(maps[-1])
        for k in range(len(self.convs) - 1, 0, -1):
            conv = self.convs[k]
            grad_out = self.pool.backward(grad, maps[k + 1], saved[k], conv.bias.grad)
            grad, weight_grad, _ = torch.ops.aten.convolution_backward(
                grad_out, maps[k], weights[k], None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, True, False])
            conv.weight.grad.copy_(weight_grad)
        first = self.convs[0]
        self.pool.first_backward(grad, maps[1], saved[0], first.bias.grad, maps[0], weights[0], first.weight.grad)
        self._update()
        return loss

    def _conv_weights(self) -> list[torch.Tensor]:
        """The convolutions' weights in the compute dtype (bf16 copies refreshed, in one launch)."""
        if self._conv_low is None:
            return self._conv_masters
        torch._foreach_copy_(self._conv_low, self._conv_masters)
        return self._conv_low

    def _head_input_gradient(self, n: int) -> torch.Tensor:
        """The gradient at the dense head's input: the one at its first layer's output times its weights."""
        weight = self.mlp.compute_weights_now()[0][0]
        if n not in self._below:
            self._below[n] = weight.new_empty(n, weight.shape[1])
        return torch.mm(self.mlp.buffers(n).masked[0], weight, out=self._below[n])
