"""An MLP layer's GEMMs on the CPU through oneDNN where that measured faster than MKL's.

PyTorch's float32 GEMMs on the CPU are MKL's, which takes its AVX-512 code only on Intel CPUs and runs
AVX2 on AMD ones. oneDNN (in every x86 build of torch) runs AVX-512 wherever the CPU has it. What that is
worth depends on the CPU, so there are three plans (PLANS), chosen from /proc/cpuinfo, never from a timing,
so that a run still repeats bit for bit from its seed on one machine:

- EVERY_LARGE_GEMM, AVX-512 at full width beside MKL's AVX2 (AMD, family 26 and later: Zen 5): oneDNN's
  products ran at about twice MKL's, 406 against 202 GFLOP/s on 2 cores for best's first layer, for the
  forward pass, the weight gradient and the gradient flowing below alike; each oneDNN call also costs
  about 13 us whatever its size, so a layer takes oneDNN for all three of its GEMMs when they have at
  least MIN_MULTIPLY_ADDS multiply-adds each (benchmarks/cpu_linear.py --all-gemms on a 2-core EPYC of
  family 26: at batch 128, 784 -> 256 1.9-2.1x as fast, 256 -> 128 1.1-1.4x, 128 -> 10 0.3-0.5x; at
  batch 32, 256 -> 128 0.6-0.8x, 784 -> 64 0.8-1.0x). oneDNN's outputs are new tensors: a large one costs
  page faults where the allocator has given freed memory back to the system (in that benchmark's
  changing sizes, 784 -> 1024 at batch 32 and 64), none in a training step's steady round of the same
  sizes (0 a step, best and tutorial, counted by getrusage in a throw-away probe; training also keeps
  freed memory for reuse, training/memory.py).
- MKL_ONLY, MKL running AVX-512 itself (Intel with AVX-512): on a 2-core Xeon of family 6 model 207
  (AMX, 2026-11-29) oneDNN's forward with its ReLU was no faster than MKL's GEMM at any of the shapes
  (0.94-1.17x at batch 128-512, 0.5-0.7x for the small layers) and its gradients slower (0.6-0.8x);
  inside best's whole step MKL alone measured 1.06x as fast as the forward through oneDNN
  (benchmarks/paired_steps.py --baseline-src, 100 cycles), the tutorial's 1.01x.
- LARGE_HIDDEN_FORWARD, elsewhere (Zen 4, where AVX-512 runs as two 256-bit halves; CPUs without
  AVX-512): only a hidden layer's forward pass, as one primitive with its ReLU: on a 2-core Zen 4 EPYC,
  alone and hot, float32 at batch 128 784 -> 256 1.25-1.44x as fast as MKL's GEMM then the ReLU, 784 ->
  512 1.12-1.26x, 784 -> 1024 1.18-1.46x, 512 -> 256 1.09x, but 256 -> 128 0.76-0.86x and 784 -> 64
  0.86-0.90x; 784 -> 256 at batch 512 1.08-1.21x, at batch 32 0.93-0.98x. So it serves float32 layers
  of at least MIN_WEIGHTS weights on batches of at least MIN_ROWS rows; inside best's whole step that
  gained 1.023x, 1.026x and 0.997x in three runs of paired blocks. The weight gradient through oneDNN
  measured 0.96-0.98x in the step there. bfloat16 layers keep MKL (no clear gain inside best's bf16
  step, 0.98-1.04x).

The written-out training steps (training/fastpath.py, training/backprop.py) and an MLP's evaluation
passes (forward) use these forms. The primitive is PyTorch's private mkldnn._linear_pointwise (the one
Inductor emits for CPUs); the gradients are the same primitive on transposed views. Where it is missing,
or does not compute what it should in any of the three forms (checked once a process), MKL serves.
"""

from __future__ import annotations

import functools

import torch

from digitnet import cpuinfo

MIN_WEIGHTS, MIN_ROWS = 100_000, 64
MIN_MULTIPLY_ADDS = 3_000_000
FULL_WIDTH_AVX512_FAMILY = 26  # AMD's Zen 5
EVERY_LARGE_GEMM, LARGE_HIDDEN_FORWARD, MKL_ONLY = "every-large-gemm", "large-hidden-forward", "mkl-only"
PLANS = (EVERY_LARGE_GEMM, LARGE_HIDDEN_FORWARD, MKL_ONLY)


def onednn_serves(layer: torch.nn.Linear, dtype: torch.dtype, rows: int, hidden: bool = True) -> bool:
    """Whether oneDNN is the faster forward pass for this layer (ReLU'd where hidden) computing in dtype
    on batches of rows."""
    if cpu_plan() == MKL_ONLY or not _float32_on_cpu(layer, dtype) or not _linear_pointwise_matches():
        return False
    if cpu_plan() == EVERY_LARGE_GEMM:
        return _multiply_adds(layer, rows) >= MIN_MULTIPLY_ADDS
    return hidden and layer.weight.numel() >= MIN_WEIGHTS and rows >= MIN_ROWS


def onednn_serves_gradients(layer: torch.nn.Linear, dtype: torch.dtype, rows: int) -> bool:
    """Whether oneDNN is the faster way to this layer's weight gradient and the gradient below it."""
    return (_float32_on_cpu(layer, dtype) and cpu_plan() == EVERY_LARGE_GEMM and _linear_pointwise_matches()
            and _multiply_adds(layer, rows) >= MIN_MULTIPLY_ADDS)


@torch.no_grad()
def forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """model(x) without gradients, an MLP's (Linear and ReLU layers) forward passes through oneDNN where
    onednn_serves says so: evaluation's passes of thousands of rows."""
    layers = list(model) if isinstance(model, torch.nn.Sequential) else []
    if not layers or not all(isinstance(layer, torch.nn.Linear | torch.nn.ReLU) for layer in layers):
        return model(x)
    out, k = x, 0
    while k < len(layers):
        layer = layers[k]
        relu = k + 1 < len(layers) and isinstance(layers[k + 1], torch.nn.ReLU)
        if isinstance(layer, torch.nn.Linear) and onednn_serves(layer, out.dtype, len(out), hidden=relu):
            out = linear(out, layer.weight, layer.bias, relu)
            k += 2 if relu else 1
        else:
            out = layer(out)
            k += 1
    return out


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, relu: bool) -> torch.Tensor:
    """x weight^T + bias, relu'd where asked, in a new tensor, as one oneDNN primitive."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu" if relu else "none", [], "")


def input_gradient(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """grad weight: the gradient at a layer's input from the one at its output, in a new tensor."""
    return torch.ops.mkldnn._linear_pointwise(grad, weight.t(), None, "none", [], "")


def weight_gradient(grad: torch.Tensor, below: torch.Tensor) -> torch.Tensor:
    """grad^T below: a layer's weight gradient from the gradient at its output and its input, in a new tensor."""
    return torch.ops.mkldnn._linear_pointwise(grad.t(), below.t(), None, "none", [], "")


@functools.cache
def cpu_plan() -> str:
    """This CPU's plan: one of PLANS."""
    return plan_for(cpuinfo.first_processor())


def plan_for(fields: dict[str, str]) -> str:
    """From /proc/cpuinfo's fields: EVERY_LARGE_GEMM for an AMD CPU of family FULL_WIDTH_AVX512_FAMILY or
    later with AVX-512, MKL_ONLY for an Intel CPU with AVX-512, LARGE_HIDDEN_FORWARD for any other."""
    avx512 = "avx512f" in fields.get("flags", "").split()
    vendor = fields.get("vendor_id")
    try:
        family = int(fields.get("cpu family", ""))
    except ValueError:
        family = 0
    if avx512 and vendor == "AuthenticAMD" and family >= FULL_WIDTH_AVX512_FAMILY:
        return EVERY_LARGE_GEMM
    if avx512 and vendor == "GenuineIntel":
        return MKL_ONLY
    return LARGE_HIDDEN_FORWARD


def _float32_on_cpu(layer: torch.nn.Linear, dtype: torch.dtype) -> bool:
    return layer.weight.device.type == "cpu" and dtype == torch.float32


def _multiply_adds(layer: torch.nn.Linear, rows: int) -> int:
    return rows * layer.in_features * layer.out_features


@functools.cache
def _linear_pointwise_matches() -> bool:
    """Whether this torch has the primitive and it computes all three forms on a small layer: once a
    process, about 20 ms (oneDNN's first primitives)."""
    if not torch.backends.mkldnn.is_available():
        return False
    gen = torch.Generator().manual_seed(0)
    x, weight, bias = torch.randn(5, 33, generator=gen), torch.randn(17, 33, generator=gen), torch.randn(17, generator=gen)
    grad = torch.randn(5, 17, generator=gen)
    try:
        pairs = [(linear(x, weight, bias, relu=True), torch.addmm(bias, x, weight.t()).relu_()),
                 (linear(x, weight, bias, relu=False), torch.addmm(bias, x, weight.t())),
                 (input_gradient(grad, weight), grad @ weight), (weight_gradient(grad, x), grad.t() @ x)]
        for got, expected in pairs:
            if got.shape != expected.shape or got.dtype != expected.dtype:
                return False
            if not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
                return False
    except (AttributeError, RuntimeError, TypeError):  # not built with oneDNN, renamed, other arguments
        return False
    return True
