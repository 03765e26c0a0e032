"""The seed recipe's training step written out by hand: forward, backward and SGD in place.

For loss = sum((out - onehot)^2) / n and plain SGD, autograd and torch.optim add per-step
allocations, a graph, and a separate gradient buffer per weight. Here every step runs
the GEMMs the math needs and little else:

    forward   h1 = relu(x W1^T + b1), h2 = relu(h1 W2^T + b2), out = h2 W3^T + b3
    backward  g3 = 2 (out - onehot) / n,  g2 = (g3 W3) * [h2 > 0],  g1 = (g2 W2) * [h1 > 0]
    update    W_k -= lr * g_k^T h_{k-1}   (fp32: one addmm_ per layer, gradient and update fused;
                                          where oneDNN computes the gradient, cpu_linear.py, then an add)
              b_k -= lr * sum(g_k, dim 0)

All intermediates live in buffers allocated once per batch size. The weights are the
model's own fp32 parameters, updated in place, so the model is always current.

With compute dtype bfloat16 (`--precision bf16`), the GEMMs run in bf16 (AMX on recent Xeons,
tensor cores on GPUs) on bf16 copies of the weights refreshed every step, while the loss, the
output gradient and the weight update stay in fp32 ("fp32 master weights").
tests/test_fastpath.py checks the step against autograd + torch.optim.SGD, and
tests/test_parity_tensorflow.py the whole fp32 recipe against the tutorial's TensorFlow loop.
"""

from __future__ import annotations

import torch
from torch import nn

from digitnet.cpu_linear import input_gradient, linear, onednn_serves, onednn_serves_gradients, weight_gradient
from digitnet.recipes import Recipe
from digitnet.training.streams import SideStreams

_relu_backward_into = torch.ops.aten.threshold_backward.grad_input
_addmm_relu_into = torch.ops.aten._addmm_activation.out
NARROW_OUTPUTS = 16  # a layer with fewer outputs gets its weight gradient from outer products on a GPU


def supports(recipe: Recipe) -> bool:
    """True for the MLP trained by plain SGD on the tutorial's MSE loss at a constant rate, unaugmented."""
    return (recipe.model == "mlp" and recipe.augment == "none" and recipe.loss == "mse-sum"
            and recipe.optimizer == "sgd" and recipe.momentum == 0 and recipe.weight_decay == 0
            and recipe.schedule == "constant")


class StepBuffers:
    """Everything a written-out step computes into, for one batch size: activations, gradients
    and masked gradients in the compute dtype; bias gradients, targets, logits and the loss's terms
    in fp32."""

    def __init__(self, n: int, sizes: list[int], device, dtype):
        def make(*shape, dt=dtype):
            return torch.empty(*shape, device=device, dtype=dt)

        self.acts = [make(n, s) for s in sizes[1:]]
        self.grads = [make(n, s) for s in sizes[1:-1]]
        self.masked = [make(n, s) for s in sizes[1:-1]]
        self.bias_grads = [make(s, dt=torch.float32) for s in sizes[1:]]
        self.target = make(n, sizes[-1], dt=torch.float32)
        self.top_grad = make(n, sizes[-1])  # the loss's gradient in the compute dtype, where that is not fp32
        self.logits = make(n, sizes[-1], dt=torch.float32)
        # cross-entropy's targets, log-probabilities and gradient class by class, (classes, n): a
        # log_softmax down the columns of the logits' transpose took 5 us, along the rows of 10 12 us
        self.by_class = [make(sizes[-1], n, dt=torch.float32) for _ in range(3)]
        self.ones = torch.ones(n, device=device, dtype=dtype)
        self.outer: dict[int, torch.Tensor] = {}  # layer -> its (n, out, in) outer products, GPU forms only
        self.tail = None  # triton_tail.TailWorkspace, where the fused top layer serves
        # the layers whose forward pass, and those whose weight gradient and gradient below, oneDNN
        # computes (cpu_linear.py)
        self.onednn: set[int] = set()
        self.onednn_gradients: set[int] = set()


class MLPLayers:
    """An MLP's Linear layers as the written-out steps (FusedSGDStep, backprop.BackpropStep) use
    them: sizes, buffers per batch size, the weights in the compute dtype (bf16 copies refreshed
    every step for mixed precision, with room for their weight gradients), the forward pass."""

    def __init__(self, model: nn.Sequential, compute_dtype: torch.dtype = torch.float32, gpu_forms: bool | None = None,
                 fused_tail: bool | None = None):
        self.linears = [m for m in model if isinstance(m, nn.Linear)]
        self.dtype = compute_dtype
        self.mixed = compute_dtype != torch.float32
        self.device = self.linears[0].weight.device
        # float32 gradients on a GPU take the forms of gradients_into (None: there, and only there)
        self.gpu_forms = (self.device.type == "cuda" and not self.mixed) if gpu_forms is None else gpu_forms
        # on a GPU the hidden layers' ReLU runs in the GEMM's epilogue (cuBLASLt): one kernel, not two
        self.relu_epilogue = self.device.type == "cuda"
        self.sizes = [self.linears[0].in_features] + [layer.out_features for layer in self.linears]
        # the top layer and the loss as two Triton kernels (triton_tail.py; None: where it serves)
        self.fused_tail = _fused_tail_serves(self) if fused_tail is None else fused_tail
        # on a GPU each layer's weight and bias gradients run beside the gradient flowing below (streams.py)
        self.side = SideStreams(self.device, 2 * len(self.linears))
        self._buffers: dict[int, StepBuffers] = {}
        self._weights = [(layer.weight, layer.bias) for layer in self.linears]  # updated in place, never replaced
        if self.mixed:
            self.low = [(torch.empty_like(l.weight, dtype=compute_dtype), torch.empty_like(l.bias, dtype=compute_dtype))
                        for l in self.linears]
            self._low_flat = [t for pair in self.low for t in pair]
            self._master_flat = [t for pair in self._weights for t in pair]
            self.low_grads = [torch.empty_like(l.weight, dtype=compute_dtype) for l in self.linears]

    def buffers(self, n: int) -> StepBuffers:
        if n not in self._buffers:  # at most two sizes: the full batch and the last partial one
            buf = self._buffers[n] = StepBuffers(n, self.sizes, self.device, self.dtype)
            top = len(self.linears) - 1
            layers = list(enumerate(self.linears))
            buf.onednn = {k for k, layer in layers if onednn_serves(layer, self.dtype, n, hidden=k < top)}
            buf.onednn_gradients = {k for k, layer in layers if onednn_serves_gradients(layer, self.dtype, n)}
        return self._buffers[n]

    def compute_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The weights in the compute dtype, the bf16 copies refreshed from the masters."""
        if not self.mixed:
            return self._weights
        torch._foreach_copy_(self._low_flat, self._master_flat)  # one launch on a GPU, where six cost six
        return self.low

    def compute_weights_now(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The weights in the compute dtype as last refreshed (this step's, before the update)."""
        return self.low if self.mixed else self._weights

    def gradients_into(self, k: int, grad: torch.Tensor, below: torch.Tensor, buf: StepBuffers,
                       weight: torch.Tensor, bias: torch.Tensor, alpha: float, beta: float, with_bias: bool = True) -> None:
        """weight = beta weight + alpha grad^T below, bias = beta bias + alpha sum(grad, 0), in the
        forms that are fast for float32 on a GPU (benchmarks/gpu_step_probe.py, H100): the bias sums as
        a matrix-vector product with ones (2.7 us where torch.sum took 8.6), and for a layer of under 16
        outputs (the 10 classes) the weight gradient as outer products summed by one matrix-vector
        product, where cuBLAS's float32 GEMM took 54 us for a 10 x 128 result. beta=0 overwrites.
        Without with_bias the bias is left alone (the fused top layer has written it)."""
        n = len(grad)
        if self.linears[k].out_features < NARROW_OUTPUTS:
            if k not in buf.outer:
                buf.outer[k] = grad.new_empty(n, grad.shape[1], below.shape[1])
            outer = torch.mul(grad[:, :, None], below[:, None, :], out=buf.outer[k])
            weight.view(-1).addmv_(outer.view(n, -1).t(), buf.ones, beta=beta, alpha=alpha)
        else:
            weight.addmm_(grad.t(), below, beta=beta, alpha=alpha)
        if with_bias:
            with self.side.fork(2 * k + 1):
                bias.addmv_(grad.t(), buf.ones, beta=beta, alpha=alpha)

    def backward(self, weights, inputs: list[torch.Tensor], grad: torch.Tensor, buf: StepBuffers,
                 layer_gradient, top: int | None = None) -> None:
        """From layer top (the top layer unless named) down: the gradient at each layer's output (in
        the compute dtype), handed with the layer's input to layer_gradient(k, grad, input, buf) once
        the gradient flowing below has been computed, so layer_gradient may update W_k in place. On a
        GPU layer_gradient runs on a side stream (it may fork its bias onto another, side.fork(2k + 1)),
        beside the layers below; all are joined before this returns."""
        for k in range(len(weights) - 1 if top is None else top, -1, -1):
            if grad.dtype != self.dtype:
                grad = buf.top_grad.copy_(grad)
            if k > 0:
                if k in buf.onednn_gradients:
                    below = input_gradient(grad, weights[k][0])  # a new tensor each step (oneDNN writes no out=)
                else:
                    below = torch.mm(grad, weights[k][0], out=buf.grads[k - 1])
                below = _relu_backward_into(below, inputs[k], 0.0, grad_input=buf.masked[k - 1])
            with self.side.fork(2 * k):
                layer_gradient(k, grad, inputs[k], buf)
            if k > 0:
                grad = below
        self.side.join()

    def tail_serves(self, n: int) -> bool:
        """Whether a batch of n rows takes fused_tail_pass (where the fused top layer serves at all)."""
        if not self.fused_tail:
            return False
        from digitnet.training.triton_tail import MAX_ROWS

        return n <= MAX_ROWS

    def fused_tail_pass(self, weights, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor, cross_entropy: bool,
                        buf: StepBuffers, top_gradient: tuple[torch.Tensor, torch.Tensor, float, float],
                        below_bias: torch.Tensor, layer_gradient, loss_out: torch.Tensor | None = None) -> torch.Tensor:
        """With fused_tail, a whole forward and backward pass: the layers below the top one as forward()
        and backward() run them, the top layer and the loss in two Triton kernels (triton_tail.py),
        which also give the layer below its bias gradient: layer_gradient is called for that layer with
        with_bias=False. top_gradient = (weight, bias, alpha, beta): weight = beta weight + alpha
        dL/dW_top, the same for bias and for below_bias (the layer below's bias, or where its gradient
        goes). Returns the batch's mean loss (0-d, on the device; valid until the next step), written
        into loss_out where given."""
        from digitnet.training.triton_tail import TailWorkspace, top_layer_step

        top = len(weights) - 1
        inputs = self.forward(weights, x, buf, layers=top)  # inputs[k] feeds layer k
        if buf.tail is None:
            buf.tail = TailWorkspace(len(x), self.sizes[-1], self.sizes[-2], self.device)
        below = buf.masked[-1]
        master = self.linears[top]  # the float32 weights, also where the compute dtype is bfloat16
        loss = top_layer_step(inputs[top], master.weight, master.bias, y, targets, cross_entropy, below, buf.tail,
                              *top_gradient, loss_out=loss_out, grad_bias_below=below_bias)

        def below_top(k, grad, below_input, buf):
            layer_gradient(k, grad, below_input, buf, with_bias=k != top - 1)

        self.backward(weights, inputs, below, buf, below_top, top=top - 1)
        return loss

    def forward(self, weights, x: torch.Tensor, buf: StepBuffers, layers: int | None = None) -> list[torch.Tensor]:
        """[x, h1, ..., logits]: each layer's input, then the output (ReLU after all but the last);
        with layers, only the first that many layers."""
        inputs = [x]
        for i, (w, b) in enumerate(weights[:layers]):
            hidden = i < len(weights) - 1
            if i in buf.onednn:
                out = linear(inputs[-1], w, b, relu=hidden)  # a new tensor each step (oneDNN writes no out=)
            elif hidden and self.relu_epilogue:
                out = _addmm_relu_into(b, inputs[-1], w.t(), out=buf.acts[i])
            else:
                out = torch.addmm(b, inputs[-1], w.t(), out=buf.acts[i])
                if hidden:
                    out.relu_()
            inputs.append(out)
        return inputs


def _fused_tail_serves(mlp: MLPLayers) -> bool:
    if mlp.device.type != "cuda":  # Triton is imported only where it can serve
        return False
    from digitnet.training.triton_tail import usable

    return usable(mlp.device, mlp.sizes)


class FusedSGDStep:
    """Callable step(x, y) -> loss (0-d fp32 tensor) for an nn.Sequential of Linear/ReLU layers.

    x must already be in the compute dtype (float32, or bfloat16 for mixed precision).
    """

    def __init__(self, model: nn.Sequential, lr: float, compute_dtype: torch.dtype = torch.float32,
                 gpu_forms: bool | None = None, fused_tail: bool | None = None):
        self.mlp = MLPLayers(model, compute_dtype, gpu_forms, fused_tail)
        self.lr = lr  # constant: the fast path serves only the "constant" schedule
        self.eye = torch.eye(self.mlp.sizes[-1], device=self.mlp.device)

    def state_dict(self) -> dict:
        return {}  # stateless: plain SGD keeps nothing between steps but the weights

    def load_state_dict(self, state: dict) -> None:
        pass

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor, loss_out: torch.Tensor | None = None) -> torch.Tensor:
        """One step; the batch's mean loss, written into loss_out (0-d, on the device) where given."""
        n, mlp = len(x), self.mlp
        buf = mlp.buffers(n)
        weights = mlp.compute_weights()
        if mlp.tail_serves(n):
            top = mlp.linears[-1]
            return mlp.fused_tail_pass(weights, x, y, self.eye, False, buf, (top.weight, top.bias, -self.lr, 1.0),
                                       mlp.linears[-2].bias, self._update, loss_out)
        inputs = mlp.forward(weights, x, buf)
        out = inputs.pop()  # the logits; inputs[k] now feeds layer k
        torch.index_select(self.eye, 0, y, out=buf.target)
        diff = torch.sub(out, buf.target, out=buf.target)  # out - onehot, in fp32 whatever the compute dtype
        loss = torch.div(torch.dot(diff.view(-1), diff.view(-1)), n, out=loss_out)
        mlp.backward(weights, inputs, diff.mul_(2.0 / n), buf, self._update)
        return loss

    def _update(self, k: int, grad: torch.Tensor, below_input: torch.Tensor, buf: StepBuffers,
                with_bias: bool = True) -> None:
        """W_k -= lr grad^T below_input, and with_bias b_k -= lr sum(grad, 0)."""
        mlp, layer = self.mlp, self.mlp.linears[k]
        if mlp.gpu_forms:
            mlp.gradients_into(k, grad, below_input, buf, layer.weight, layer.bias, alpha=-self.lr, beta=1.0,
                               with_bias=with_bias)
            return
        if mlp.mixed:
            layer.weight.add_(torch.mm(grad.t(), below_input, out=mlp.low_grads[k]), alpha=-self.lr)
        elif k in buf.onednn_gradients:
            layer.weight.add_(weight_gradient(grad, below_input), alpha=-self.lr)
        else:
            layer.weight.addmm_(grad.t(), below_input, alpha=-self.lr)
        if with_bias:  # the bias gradient summed in float32 whatever the compute dtype
            with mlp.side.fork(2 * k + 1):
                layer.bias.sub_(torch.sum(grad, 0, dtype=torch.float32, out=buf.bias_grads[k]), alpha=self.lr)

