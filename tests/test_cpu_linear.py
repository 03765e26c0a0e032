"""An MLP layer's GEMMs through oneDNN on the CPU (src/digitnet/cpu_linear.py): what each form computes, which
layers take which under each CPU's plan, the steps that use them against autograd, and a torch whose
private primitive is gone or changed keeping MKL."""

import pytest
import torch
from conftest import random_batches
from test_fastpath import (_autograd_reference, assert_backprop_matches_autograd,
                           assert_fused_step_matches_autograd)
from torch import nn

from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet import cpu_linear
from digitnet.cpuinfo import first_processor
from digitnet.training.fastpath import FusedSGDStep, MLPLayers

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")

ZEN5 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"


@pytest.fixture(params=cpu_linear.PLANS)
def plan(request, monkeypatch):
    """Each CPU's plan, whatever CPU runs the test."""
    return _use_plan(monkeypatch, request.param)


def _use_plan(monkeypatch, plan: str) -> str:
    monkeypatch.setattr(cpu_linear, "cpu_plan", lambda: plan)
    return plan


XEON = ("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\n"
        "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n")
EVERY, FORWARD, MKL = cpu_linear.EVERY_LARGE_GEMM, cpu_linear.LARGE_HIDDEN_FORWARD, cpu_linear.MKL_ONLY


@pytest.mark.parametrize(("cpuinfo", "expected"), [
    (ZEN5, EVERY),
    (ZEN5.replace("cpu family\t: 26", "cpu family\t: 27"), EVERY),  # later families keep full-width AVX-512
    (ZEN5.replace("cpu family\t: 26", "cpu family\t: 25"), FORWARD),  # Zen 4: AVX-512 as two 256-bit halves
    (ZEN5.replace(" avx512f", ""), FORWARD),
    (XEON, MKL),  # MKL runs AVX-512 on Intel itself
    (XEON.replace(" avx512f", ""), FORWARD),
    (ZEN5.replace("AuthenticAMD", "GenuineIntel"), MKL),
    (ZEN5.replace("cpu family\t: 26", "cpu family\t: twenty-six"), FORWARD),
    ("", FORWARD),
    (ZEN5 + "\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n", EVERY),  # the first processor decides
    (XEON + "\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\n", MKL),
])
def test_the_plan_follows_the_cpu_vendor_family_and_avx512(cpuinfo, expected):
    assert cpu_linear.plan_for(first_processor(cpuinfo)) == expected


@needs_onednn
@pytest.mark.parametrize(("rows", "inputs", "outputs"), [(128, 784, 256), (3, 5, 7), (1, 64, 1)])
@pytest.mark.parametrize("transposed_grad", [False, True])  # cross-entropy's gradient is a transposed view
def test_each_form_computes_its_product(rows, inputs, outputs, transposed_grad):
    gen = torch.Generator().manual_seed(rows + inputs)
    x, weight, bias = (torch.randn(*shape, generator=gen) for shape in ((rows, inputs), (outputs, inputs), (outputs,)))
    grad = (torch.randn(outputs, rows, generator=gen).t() if transposed_grad
            else torch.randn(rows, outputs, generator=gen))
    affine = x.double() @ weight.double().t() + bias.double()
    pairs = [(cpu_linear.linear(x, weight, bias, relu=True), torch.relu(affine), (rows, outputs)),
             (cpu_linear.linear(x, weight, bias, relu=False), affine, (rows, outputs)),
             (cpu_linear.input_gradient(grad, weight), grad.double() @ weight.double(), (rows, inputs)),
             (cpu_linear.weight_gradient(grad, x), grad.double().t() @ x.double(), (outputs, inputs))]
    for got, expected, shape in pairs:
        assert got.dtype == torch.float32 and got.shape == shape
        summed = expected.shape[1] if expected.shape == (rows, outputs) else max(rows, outputs)
        torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-4 * summed ** 0.5)


@needs_onednn
def test_where_mkl_is_as_fast_only_large_hidden_layers_forward_on_full_batches_take_onednn(monkeypatch):
    _use_plan(monkeypatch, FORWARD)
    first, second, top = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)
    assert cpu_linear.onednn_serves(first, torch.float32, rows=128)
    assert not cpu_linear.onednn_serves(first, torch.float32, rows=128, hidden=False)  # no ReLU to fold in
    assert not cpu_linear.onednn_serves(first, torch.float32, rows=32)  # MKL's GEMM was as fast or faster
    assert not cpu_linear.onednn_serves(second, torch.float32, rows=128)  # 32,768 weights: the same
    assert not cpu_linear.onednn_serves(first, torch.bfloat16, rows=128)  # no clear gain inside a step
    assert not any(cpu_linear.onednn_serves_gradients(layer, torch.float32, rows=512) for layer in (first, second, top))
    model = build_model(seed=0)  # 784-256-128-10
    assert MLPLayers(model).buffers(128).onednn == {0} and MLPLayers(model).buffers(32).onednn == set()
    assert MLPLayers(build_model((512, 256), seed=0)).buffers(64).onednn == {0, 1}  # never the top: no ReLU
    assert MLPLayers(model, torch.bfloat16).buffers(128).onednn == set()


def test_where_mkl_runs_avx512_itself_no_layer_takes_onednn(monkeypatch):
    _use_plan(monkeypatch, MKL)
    first, second, top = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)
    for rows in (32, 128, 512, 4096):
        for layer in (first, second, top):
            assert not cpu_linear.onednn_serves(layer, torch.float32, rows)
            assert not cpu_linear.onednn_serves_gradients(layer, torch.float32, rows)
    buffers = MLPLayers(build_model((1024, 512), seed=0)).buffers(512)
    assert buffers.onednn == buffers.onednn_gradients == set()


@needs_onednn
def test_where_onednn_outruns_mkl_every_gemm_of_3m_multiply_adds_takes_it(monkeypatch):
    _use_plan(monkeypatch, EVERY)
    first, second, top = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)
    for serves in (cpu_linear.onednn_serves, cpu_linear.onednn_serves_gradients):
        assert serves(first, torch.float32, rows=32) and serves(second, torch.float32, rows=96)
        assert not serves(second, torch.float32, rows=64)  # 2.1M multiply-adds: 0.84-1.15x
        assert not serves(top, torch.float32, rows=512)  # 0.6-1.1x: oneDNN's call costs ~13 us
        assert not serves(first, torch.bfloat16, rows=128)
    assert cpu_linear.onednn_serves(nn.Linear(4096, 1024), torch.float32, rows=8, hidden=False)  # a wide top layer
    buffers = MLPLayers(build_model(seed=0)).buffers(128)
    assert buffers.onednn == buffers.onednn_gradients == {0, 1}
    assert MLPLayers(build_model(seed=0)).buffers(16).onednn_gradients == {0}  # 3.2M and 0.5M
    assert MLPLayers(build_model(seed=0), torch.bfloat16).buffers(128).onednn_gradients == set()
    if torch.cuda.is_available():
        assert not cpu_linear.onednn_serves_gradients(first.cuda(), torch.float32, rows=128)


@needs_onednn
@pytest.mark.parametrize(("hidden", "sizes"), [((256, 128), [512, 512, 96]), ((1024,), [16, 5]), ((64, 32, 16), [50])])
def test_the_tutorial_step_under_either_plan_matches_autograd_and_sgd(plan, hidden, sizes):
    step = assert_fused_step_matches_autograd(hidden, sizes)
    small = hidden == (64, 32, 16)  # 50 x 784 x 64: under 3M multiply-adds, MKL under either plan
    assert bool(step.mlp.buffers(sizes[0]).onednn_gradients) == (plan == EVERY and not small)


@needs_onednn
@pytest.mark.parametrize(("recipe", "overrides", "sizes"), [
    ("best", {}, [128, 128, 128, 37]),
    ("tutorial", {"momentum": 0.9, "weight_decay": 1e-3, "lr": 0.01}, [96, 64, 96, 64]),  # 256 -> 128 switches
])
def test_the_written_out_backward_under_either_plan_matches_autograd(plan, recipe, overrides, sizes):
    _, step = assert_backprop_matches_autograd(get_recipe(recipe, **overrides), (256, 128), sizes)
    assert step.mlp.buffers(96).onednn_gradients == ({0, 1} if plan == EVERY else set())


@pytest.mark.parametrize("form", ["linear", "input_gradient", "weight_gradient"])
@pytest.mark.parametrize("primitive", ["missing", "silently_different"])
def test_a_torch_whose_primitive_is_gone_or_changed_keeps_mkl(monkeypatch, form, primitive):
    real = getattr(cpu_linear, form)

    def missing(*args, **kwargs):
        raise AttributeError("'_OpNamespace' 'mkldnn' object has no attribute '_linear_pointwise'")

    def different(*args, **kwargs):
        return real(*args, **kwargs) * 1.01

    cpu_linear._linear_pointwise_matches.cache_clear()
    _use_plan(monkeypatch, EVERY)
    monkeypatch.setattr(cpu_linear, form, {"missing": missing, "silently_different": different}[primitive])
    try:
        batches = random_batches([128] * 3)
        step = FusedSGDStep(build_model(seed=1), lr=0.05)
        assert step.mlp.buffers(128).onednn == step.mlp.buffers(128).onednn_gradients == set()
        losses = torch.tensor([step(x, y).item() for x, y in batches])
        expected = torch.tensor(_autograd_reference(build_model(seed=1), batches, lr=0.05))
        torch.testing.assert_close(losses, expected, rtol=1e-5, atol=1e-6)
    finally:
        monkeypatch.undo()
        cpu_linear._linear_pointwise_matches.cache_clear()
    assert cpu_linear._linear_pointwise_matches() == torch.backends.mkldnn.is_available()


@needs_onednn
@pytest.mark.parametrize(("hidden", "rows", "onednn_layers"), [((256, 128), 4096, {EVERY: 3, FORWARD: 1, MKL: 0}),
                                                                ((256, 128), 8, {EVERY: 0, FORWARD: 0, MKL: 0}),
                                                                ((32,), 4096, {EVERY: 1, FORWARD: 0, MKL: 0})])
def test_evaluation_passes_take_onednn_where_it_serves_and_give_the_model_s_output(plan, monkeypatch, hidden, rows,
                                                                                   onednn_layers):
    calls = []
    real = cpu_linear.linear
    monkeypatch.setattr(cpu_linear, "linear", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    model = build_model(hidden, seed=2)
    x = torch.rand(rows, 784, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.testing.assert_close(cpu_linear.forward(model, x), model(x).detach(), rtol=1e-4, atol=1e-4)
    assert len(calls) == onednn_layers[plan]


def test_evaluation_passes_of_other_models_are_the_model_s_own():
    convnet = build_model(seed=0, kind="cnn")
    x = torch.rand(4, 784, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cpu_linear.forward(convnet, x), convnet(x).detach())
