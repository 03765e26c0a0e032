"""A hidden layer's forward pass on the CPU, relu(x W^T + b), as one oneDNN primitive where that measured
faster than MKL's GEMM followed by a ReLU.

On a 2-core AMD EPYC (Zen 4), oneDNN's linear with its ReLU post-op against addmm then relu_, hot
(benchmarks/cpu_linear.py, two runs): float32 at batch 128 784->256 1.14-1.25x as fast, 784->512
1.10-1.26x, 784->1024 1.23-1.46x, 512->256 1.03-1.09x, but 256->128 0.76-0.87x and 784->64 0.86-0.91x;
784->256 at batch 512 1.10-1.21x, at batch 32 0.93-1.00x; bfloat16 1.00-1.39x at every size measured.
So oneDNN serves float32 layers of at least MIN_FLOAT32_WEIGHTS weights on batches of at least
MIN_FLOAT32_ROWS rows, and every bfloat16 layer. In best's whole step (784-256-128-10, batch 128, the
first layer through oneDNN) the gain is smaller than alone: 1.01-1.03x (docs/performance.md). The choice
depends only on the shapes and the dtype, never on a timing, so a run still repeats bit for bit from its
seed.

The primitive is PyTorch's private mkldnn._linear_pointwise (the one Inductor emits for CPUs). Where it is
missing, or does not compute relu(x W^T + b) (checked once a process), the GEMM and the ReLU serve.
"""

from __future__ import annotations

import functools

import torch

MIN_FLOAT32_WEIGHTS, MIN_FLOAT32_ROWS = 100_000, 64


def onednn_serves(layer: torch.nn.Linear, dtype: torch.dtype, rows: int) -> bool:
    """Whether linear_relu is the faster forward for this hidden layer computing in dtype on batches of rows."""
    if layer.weight.device.type != "cpu" or dtype not in (torch.float32, torch.bfloat16):
        return False
    if dtype == torch.float32 and (layer.weight.numel() < MIN_FLOAT32_WEIGHTS or rows < MIN_FLOAT32_ROWS):
        return False
    return _linear_pointwise_matches()


def linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """relu(x weight^T + bias) in a new tensor, as one oneDNN primitive (where onednn_serves says so)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu", [], "")


@functools.cache
def _linear_pointwise_matches() -> bool:
    """Whether this torch has the primitive and it computes relu(x W^T + b) (float32 and bfloat16, to
    their precision) on a small layer: once a process, about 20 ms (oneDNN's first primitives)."""
    if not torch.backends.mkldnn.is_available():
        return False
    gen = torch.Generator().manual_seed(0)
    x, weight, bias = torch.randn(5, 33, generator=gen), torch.randn(17, 33, generator=gen), torch.randn(17, generator=gen)
    try:
        for dtype, tolerance in ((torch.float32, 1e-4), (torch.bfloat16, 0.1)):
            args = (x.to(dtype), weight.to(dtype), bias.to(dtype))
            expected = torch.addmm(args[2], args[0], args[1].t()).relu_()
            got = linear_relu(*args)
            if got.shape != expected.shape or got.dtype != dtype:
                return False
            if not torch.allclose(got.float(), expected.float(), rtol=tolerance, atol=tolerance):
                return False
    except (AttributeError, RuntimeError, TypeError):  # not built with oneDNN, renamed, other arguments
        return False
    return True
