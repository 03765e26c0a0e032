"""The convnet's written-out step (training/convnet.py) against autograd, and its pooling kernels
(training/triton_pool.py) against PyTorch's. The Triton kernels are compiled on a GPU where there is
one, else run by Triton's interpreter on the CPU (conftest.py); PyTorch's forms run anywhere."""

import copy
import importlib.util
import os
import subprocess
import sys

import pytest
import torch
from conftest import TIME_FACTOR, random_batches, with_no_digit_labels

from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet.training.convnet import ConvNetStep, supports_model
from digitnet.training.optim import AutogradStep
from digitnet.training.triton_pool import TorchPool

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TRITON = importlib.util.find_spec("triton") is not None and (DEVICE == "cuda" or os.environ.get("TRITON_INTERPRET") == "1")
needs_triton = pytest.mark.skipif(not TRITON, reason="Triton is not installed (or not in interpreter mode on a CPU)")


@pytest.fixture(autouse=True)
def ieee_float32(monkeypatch):
    """cuDNN's convolutions default to TF32 on a GPU, which made the references here differ from the
    float32 kernels by up to 2%: training runs ask for IEEE float32 (training/devices.cuda_numerics)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def _maps(n, channels, side, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, channels, side, side, generator=gen)
    a[0, 0, :2, :2] = 1.5  # a window of four equal values: the first wins
    a[-1, -1, 2:4, 0:2] = torch.tensor([[0.5, 2.0], [2.0, 0.5]])  # two equal maxima in one window
    bias = torch.randn(channels, generator=gen)
    bias[0] = -1.5  # the tied window's ReLU input is exactly 0
    return a.to(DEVICE), bias.to(DEVICE), torch.randn(n, channels, side // 2, side // 2, generator=gen).to(DEVICE)


# 28x28 maps: 5 images a program, 14x14: 20; batches that leave the last program part-filled, or one image
@needs_triton
@pytest.mark.parametrize(("n", "channels", "side"), [(7, 32, 28), (1, 3, 28), (21, 64, 14), (2, 5, 6)])
def test_triton_pooling_computes_what_pytorchs_kernels_do(n, channels, side):
    from digitnet.training.triton_pool import TritonPool

    a, bias, grad = _maps(n, channels, side)
    out, saved = TorchPool().forward(a.clone(), bias)
    ours, code = TritonPool().forward(a, bias)
    assert torch.equal(ours, out)
    assert torch.equal(ours, torch.relu(torch.nn.functional.max_pool2d(a + bias.view(1, -1, 1, 1), 2)))
    _check_backward(a, bias, grad, out, saved, ours, code)


@needs_triton
@pytest.mark.parametrize(("n", "channels", "side"), [(7, 32, 28), (21, 64, 14)])
def test_triton_pooling_in_bfloat16_computes_what_pytorchs_kernels_do(n, channels, side):
    """--precision bf16's maps: the bias added in float32 and rounded once, the gradients summed in float32."""
    from digitnet.training.triton_pool import TritonPool

    a, bias, grad = _maps(n, channels, side)
    a, grad = a.to(torch.bfloat16), grad.to(torch.bfloat16)
    out, saved = TorchPool().forward(a.clone(), bias)
    ours, code = TritonPool().forward(a, bias)
    assert ours.dtype == torch.bfloat16
    if DEVICE == "cuda":
        assert torch.equal(ours, out)
    else:  # Triton's interpreter rounds float32 to bfloat16 by truncation (a GPU to nearest): one unit apart
        torch.testing.assert_close(ours, out, rtol=2**-7, atol=0)
    _check_backward(a, bias, grad, out, saved, ours, code)


def _check_backward(a, bias, grad, out, saved, ours, code):
    from digitnet.training.triton_pool import TritonPool

    side = a.shape[-1]
    indices = saved[1]
    assert torch.equal(code.long(), (indices // side % 2) * 2 + indices % 2)  # the window's value PyTorch picked
    bias_grad, our_bias_grad = torch.empty_like(bias), torch.empty_like(bias)
    grad_a = TorchPool().backward(grad, out, saved, bias_grad)
    our_grad_a = TritonPool().backward(grad, ours, code, our_bias_grad)
    assert torch.equal(our_grad_a, grad_a)
    torch.testing.assert_close(our_bias_grad, bias_grad, rtol=1e-5, atol=1e-5)
    assert (grad_a != 0).sum() == ((out > 0).sum())  # one gradient a window, where the ReLU passed it


@needs_triton
@pytest.mark.parametrize("n", [7, 1, 12])
def test_the_first_blocks_backward_gives_its_convs_weight_gradient(n):
    """The first block's backward kernel also computes its conv's weight gradient, as cuDNN's backward
    of the pooling's scattered gradient does, padding included."""
    from digitnet.training.triton_pool import TritonPool

    gen = torch.Generator().manual_seed(n)
    image = (torch.rand(n, 1, 28, 28, generator=gen) * 2 - 1).to(DEVICE)
    image[0, 0, 0, :] = 1.0  # the padding is felt: the top row and the left column seen at full strength
    image[0, 0, :, 0] = 1.0
    weight = (torch.randn(8, 1, 3, 3, generator=gen) * 0.3).to(DEVICE)
    bias, grad = torch.randn(8, generator=gen).to(DEVICE), torch.randn(n, 8, 14, 14, generator=gen).to(DEVICE)
    a = torch.conv2d(image, weight, None, 1, 1)
    out, saved = TorchPool().forward(a.clone(), bias)
    ours, code = TritonPool().forward(a, bias)
    grads = {}
    for name, pool, kept in (("torch", TorchPool(), saved), ("triton", TritonPool(), code)):
        grads[name] = (torch.empty_like(weight), torch.empty_like(bias))
        pool.first_backward(grad, out, kept, grads[name][1], image, weight, grads[name][0])
    torch.testing.assert_close(grads["triton"], grads["torch"], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="one-channel"):
        TritonPool().first_backward(grad, ours, code, bias, image.expand(n, 2, 28, 28), weight, weight)


@needs_triton
def test_triton_pooling_refuses_maps_it_cannot_pool():
    from digitnet.training.triton_pool import TritonPool

    a, bias, _ = _maps(2, 4, 6)
    with pytest.raises(ValueError, match="even sides"):
        TritonPool().forward(a[:, :, :5, :5].contiguous(), bias)
    with pytest.raises(ValueError, match="contiguous"):
        TritonPool().forward(a.to(memory_format=torch.channels_last), bias)


def _batches(sizes):
    return random_batches(sizes, device=DEVICE)


KERNELS = [pytest.param(False, id="pytorch-kernels"), pytest.param(True, id="triton-kernels", marks=needs_triton)]


# the cnn recipe (cross-entropy, AdamW), and one the CLI can ask for: the tutorial's MSE and SGD with momentum
MSE_AND_MOMENTUM = {"loss": "mse-sum", "label_smoothing": 0.0, "optimizer": "sgd", "momentum": 0.9, "weight_decay": 0.0}


@pytest.mark.parametrize("overrides", [{}, MSE_AND_MOMENTUM])
@pytest.mark.parametrize("triton_kernels", KERNELS)
def test_written_out_convnet_step_trains_as_autograd(triton_kernels, overrides):
    recipe = get_recipe("cnn", lr=0.01, **overrides)
    ours, reference = build_model(kind="cnn", seed=1, device=DEVICE), build_model(kind="cnn", seed=1, device=DEVICE)
    step = ConvNetStep(ours, recipe, 10, triton_pool=triton_kernels, gpu_forms=triton_kernels, fused_tail=triton_kernels)
    reference_step = AutogradStep(reference, recipe, 10)
    # the last batch smaller, as an epoch's last; a third of the labels NO_DIGIT (the recipe's pairs)
    for x, y in with_no_digit_labels(_batches([32, 32, 17]), recipe):
        assert step(x, y).item() == pytest.approx(reference_step(x, y).item(), rel=1e-5)
        assert step.lr == reference_step.lr
        for a, b in zip(ours.parameters(), reference.parameters()):  # each step's gradients
            # a conv bias's gradient sums 32 x 28 x 28 terms in another order than autograd's: an element
            # near zero parts by up to 1.5e-5 of the tensor's largest (seen with NO_DIGIT labels); a wrong
            # term parts by far more than 1e-4 of it
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=max(1e-6, 1e-4 * float(b.grad.abs().max())))
    untrained = build_model(kind="cnn", seed=1, device=DEVICE).state_dict()
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        # Adam moves a weight by about lr whatever its gradient's size (see test_fastpath.py): within 1% of
        # lr, but for a few of those whose gradient is near zero, as NO_DIGIT's (softmax - 1/10) is in an
        # untrained network (2 weights of 401,408 moved 3.7% of lr apart); the gradients were checked above
        apart = (a - b).abs()
        assert float(apart.max()) <= 0.1 * recipe.lr and float((apart > 0.01 * recipe.lr).float().mean()) <= 1e-4, name
        assert not torch.equal(a, untrained[name])  # it did train


@pytest.mark.parametrize("triton_kernels", KERNELS)
def test_written_out_convnet_step_in_bfloat16_trains_as_autograd_under_autocast(triton_kernels):
    """--precision bf16: the maps and the GEMMs in bfloat16, the gradients handed to AdamW in float32."""
    recipe = get_recipe("cnn", lr=0.01)
    ours, reference = build_model(kind="cnn", seed=1, device=DEVICE), build_model(kind="cnn", seed=1, device=DEVICE)
    step = ConvNetStep(ours, recipe, 10, torch.bfloat16, triton_pool=triton_kernels, fused_tail=triton_kernels)
    reference_step = AutogradStep(reference, recipe, 10, torch.bfloat16)
    in_float32 = ConvNetStep(build_model(kind="cnn", seed=1, device=DEVICE), recipe, 10, triton_pool=False,
                             gpu_forms=False, fused_tail=False)
    for x, y in _batches([32, 32, 17]):  # digits' labels alone: NO_DIGIT's small gradients are the fp32 test's
        loss = step(x.to(torch.bfloat16), y)
        assert loss.dtype == torch.float32
        assert loss.item() == pytest.approx(reference_step(x.to(torch.bfloat16), y).item(), rel=2e-2)
        assert loss.item() != in_float32(x, y).item()  # its products really ran in bfloat16
        for a, b in zip(ours.parameters(), reference.parameters()):
            assert a.grad.dtype == torch.float32
            # bfloat16 keeps 8 bits, and the two round at different places: a few elements of 400,000 part
            # by half their size (on an H100), so each gradient is compared as a whole (up to 0.027 apart
            # under Triton's interpreter, which rounds to bfloat16 by truncation; a wrong term gives ~1)
            assert float((a.grad - b.grad).norm() / b.grad.norm()) < 0.05
    for a, b in zip(ours.parameters(), reference.parameters()):
        # Adam moves a weight by about lr whatever its gradient's size, so where bfloat16's rounding flips
        # a tiny gradient's sign the weights part by up to 2 lr a step: few may, none by more
        apart = (a - b).detach().abs()
        assert float(apart.max()) <= 6 * recipe.lr and float((apart > 0.1 * recipe.lr).float().mean()) < 0.02


def test_written_out_convnet_step_resumes_from_autograds_checkpoint():
    recipe = get_recipe("cnn")
    batches = _batches([16, 16, 16])
    reference, ours = build_model(kind="cnn", seed=2, device=DEVICE), build_model(kind="cnn", seed=2, device=DEVICE)
    reference_step = AutogradStep(reference, recipe, 10)
    reference_step(*batches[0])
    ours.load_state_dict(reference.state_dict())
    step = ConvNetStep(ours, recipe, 10, triton_pool=False, gpu_forms=False, fused_tail=False)
    # a copy, as from a checkpoint file: torch's load_state_dict would share the moments' tensors
    step.load_state_dict(copy.deepcopy(reference_step.state_dict()))
    assert step.lr == reference_step.lr
    for x, y in batches[1:]:
        assert step(x, y).item() == pytest.approx(reference_step(x, y).item(), rel=1e-5)
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=0.01 * recipe.lr)
    assert step.state_dict()["schedule"] == reference_step.state_dict()["schedule"]


def test_only_digitnets_convnet_takes_the_written_out_step():
    assert supports_model(build_model(kind="cnn"))
    assert not supports_model(build_model())  # the MLP
    model = build_model(kind="cnn")
    model[2] = torch.nn.MaxPool2d(3)
    assert not supports_model(model)
    model = build_model(kind="cnn")
    model[4].padding = (0, 0)
    assert not supports_model(model)
    with pytest.raises(ValueError, match="convnet"):
        ConvNetStep(model, get_recipe("cnn"), 10)


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")
def test_triton_is_imported_only_by_the_steps_that_run_its_kernels():
    """Importing Triton costs a process about 50 MB: the server, which never trains, and the training
    modules must not import it (tests/test_serve.py's memory bound tripped when steps.py did)."""
    modules = ["digitnet.training.steps", "digitnet.training.convnet"]
    if importlib.util.find_spec("starlette") is not None:  # the lent GPU machine has no web stack
        modules.append("digitnet.serve.app")
    code = f"import sys, {', '.join(modules)}\nassert 'triton' not in sys.modules, 'triton imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120 * TIME_FACTOR)
    assert done.returncode == 0, done.stderr
