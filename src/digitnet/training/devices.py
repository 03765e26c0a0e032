"""Which device trains, and in which precision its matrix products run."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from digitnet.errors import ConfigError
from digitnet.settings import PRECISIONS

COMPUTE_DTYPES = dict(zip(PRECISIONS, (torch.float32, torch.float32, torch.bfloat16), strict=True))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r}: not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available here; use --device cpu")
    return device


def compute_dtype(precision: str) -> torch.dtype:
    if precision not in COMPUTE_DTYPES:
        raise ConfigError(f"--precision {precision!r}: choose one of {', '.join(COMPUTE_DTYPES)}")
    return COMPUTE_DTYPES[precision]


def check_precision(precision: str, device: torch.device) -> None:
    compute_dtype(precision)
    if precision == "tf32" and device.type != "cuda":
        raise ConfigError(f"--precision tf32 needs a CUDA GPU (this run trains on {device}); use fp32 or bf16")


@contextmanager
def cuda_numerics(precision: str, device: torch.device):
    """Within, on a CUDA device: float32 matrix products and convolutions in IEEE float32 ("fp32";
    cuDNN would otherwise use TF32 by default) or on the TF32 tensor cores ("tf32", 10-bit mantissas:
    TensorFlow's and JAX's default on GPUs, opt-in here; bf16 runs its own products in bfloat16 and
    keeps float32 for the rest); and cuDNN's deterministic algorithms only, so that a run repeats bit
    for bit and a resumed run equals the uninterrupted one (with cuDNN's defaults the cnn's resume on
    an H100 was not bit-identical, tests/test_cuda.py). TF32 exists on CUDA GPUs only."""
    check_precision(precision, device)
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    saved = torch.get_float32_matmul_precision(), cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = precision == "tf32", True, False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved[1:]


def fast_layout(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model in the memory layout that trains it fastest here: a convnet on the CPU keeps its
    feature maps channels-last (oneDNN's native layout: its pooling and convolutions ran 1.3x
    faster in fp32 and 1.7x in bf16, benchmarks/cnn_step.py); everything else as built. The weights
    keep their values, only their order in memory changes (files are written contiguous); results
    differ from the other layout's in the last bits, as with any change of kernels."""
    has_conv = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    if has_conv and device.type == "cpu":
        return model.to(memory_format=torch.channels_last)
    return model
