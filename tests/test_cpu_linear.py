"""The hidden layers' forward pass through oneDNN on the CPU (training/cpu_linear.py): what it computes,
which layers take it, and a torch whose private primitive is gone or changed keeping the GEMM and ReLU."""

import pytest
import torch
from conftest import random_batches
from test_fastpath import _autograd_reference
from torch import nn

from digitnet.model import build_model
from digitnet.training import cpu_linear
from digitnet.training.fastpath import FusedSGDStep, MLPLayers

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


@needs_onednn
@pytest.mark.parametrize(("rows", "inputs", "outputs"), [(128, 784, 256), (3, 5, 7), (1, 64, 1)])
def test_linear_relu_is_relu_of_the_affine_map(rows, inputs, outputs):
    gen = torch.Generator().manual_seed(rows + inputs)
    x, weight, bias = (torch.randn(*shape, generator=gen) for shape in ((rows, inputs), (outputs, inputs), (outputs,)))
    expected = torch.relu(x.double() @ weight.double().t() + bias.double())
    got = cpu_linear.linear_relu(x, weight, bias)
    assert got.dtype == torch.float32 and got.shape == (rows, outputs)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-4 * inputs ** 0.5)


@needs_onednn
def test_onednn_serves_large_float32_layers_on_full_batches_on_the_cpu():
    first, second = nn.Linear(784, 256), nn.Linear(256, 128)
    assert cpu_linear.onednn_serves(first, torch.float32, rows=128)
    assert not cpu_linear.onednn_serves(first, torch.float32, rows=32)  # MKL's GEMM was as fast or faster
    assert not cpu_linear.onednn_serves(second, torch.float32, rows=128)  # 32,768 weights: the same
    assert not cpu_linear.onednn_serves(first, torch.bfloat16, rows=128)  # no clear gain inside a step
    if torch.cuda.is_available():
        assert not cpu_linear.onednn_serves(first.cuda(), torch.float32, rows=128)


@needs_onednn
def test_the_mlp_forward_takes_onednn_for_the_layers_it_serves():
    model = build_model(seed=0)  # 784-256-128-10
    assert MLPLayers(model).buffers(128).onednn == {0} and MLPLayers(model).buffers(32).onednn == set()
    assert MLPLayers(build_model((512, 256), seed=0)).buffers(64).onednn == {0, 1}  # never the top: no ReLU
    assert MLPLayers(model, torch.bfloat16).buffers(128).onednn == set()


@pytest.mark.parametrize("primitive", ["missing", "silently_different"])
def test_a_torch_whose_primitive_is_gone_or_changed_keeps_the_gemm_and_relu(monkeypatch, primitive):
    def missing(*args):
        raise AttributeError("'_OpNamespace' 'mkldnn' object has no attribute '_linear_pointwise'")

    def no_relu(x, weight, bias):
        return torch.addmm(bias, x, weight.t())

    cpu_linear._linear_pointwise_matches.cache_clear()
    monkeypatch.setattr(cpu_linear, "linear_relu", {"missing": missing, "silently_different": no_relu}[primitive])
    try:
        batches = random_batches([64] * 3)
        step = FusedSGDStep(build_model(seed=1), lr=0.05)
        assert step.mlp.buffers(64).onednn == set()
        losses = torch.tensor([step(x, y).item() for x, y in batches])
        expected = torch.tensor(_autograd_reference(build_model(seed=1), batches, lr=0.05))
        torch.testing.assert_close(losses, expected, rtol=1e-5, atol=1e-6)
    finally:
        monkeypatch.undo()
        cpu_linear._linear_pointwise_matches.cache_clear()
    assert cpu_linear._linear_pointwise_matches() == torch.backends.mkldnn.is_available()
