"""A hidden layer's forward pass on the CPU, relu(x W^T + b), as one oneDNN primitive where that measured
faster than MKL's GEMM followed by a ReLU.

On a 2-core AMD EPYC (Zen 4), oneDNN's linear with its ReLU post-op against addmm then relu_, each hot in
a loop of its own (benchmarks/cpu_linear.py, two runs): float32 at batch 128 784->256 1.25-1.44x as
fast, 784->512 1.12-1.26x, 784->1024 1.18-1.46x, 512->256 1.09x, but 256->128 0.76-0.86x and 784->64
0.86-0.90x; 784->256 at batch 512 1.08-1.21x, at batch 32 0.93-0.98x. So oneDNN serves float32 layers
of at least MIN_WEIGHTS weights on batches of at least MIN_ROWS rows. Inside a whole step the gain is
much smaller: best's step, its first layer through oneDNN, ran 1.023x, 1.026x and 0.997x as fast in
three runs of alternating blocks of 20-50 steps (a fourth, on a busy stretch, 1.28x; a throw-away
probe like benchmarks/paired_steps.py). bfloat16 layers keep MKL: oneDNN measured 1.00-1.39x alone but
0.98-1.04x inside best's bf16 step over three such runs (its first layer alone: 0.97x), no clear gain.
The choice depends only on the shapes and the dtype, never on a timing, so a run still repeats bit for
bit from its seed.

The primitive is PyTorch's private mkldnn._linear_pointwise (the one Inductor emits for CPUs). Where it is
missing, or does not compute relu(x W^T + b) (checked once a process), the GEMM and the ReLU serve.
"""

from __future__ import annotations

import functools

import torch

MIN_WEIGHTS, MIN_ROWS = 100_000, 64


def onednn_serves(layer: torch.nn.Linear, dtype: torch.dtype, rows: int) -> bool:
    """Whether linear_relu is the faster forward for this hidden layer computing in dtype on batches of rows."""
    if layer.weight.device.type != "cpu" or dtype != torch.float32:
        return False
    return layer.weight.numel() >= MIN_WEIGHTS and rows >= MIN_ROWS and _linear_pointwise_matches()


def linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """relu(x weight^T + bias) in a new tensor, as one oneDNN primitive (where onednn_serves says so)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu", [], "")


@functools.cache
def _linear_pointwise_matches() -> bool:
    """Whether this torch has the primitive and it computes relu(x W^T + b) on a small layer: once a
    process, about 20 ms (oneDNN's first primitive)."""
    if not torch.backends.mkldnn.is_available():
        return False
    gen = torch.Generator().manual_seed(0)
    x, weight, bias = torch.randn(5, 33, generator=gen), torch.randn(17, 33, generator=gen), torch.randn(17, generator=gen)
    try:
        got, expected = linear_relu(x, weight, bias), torch.addmm(bias, x, weight.t()).relu_()
        if got.shape != expected.shape or got.dtype != expected.dtype:
            return False
        if not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
            return False
    except (AttributeError, RuntimeError, TypeError):  # not built with oneDNN, renamed, other arguments
        return False
    return True
