"""GPU checks (skipped where there is no CUDA device, as on CI): graph replay, resume of every recipe,
the written-out backward pass against autograd."""

import pytest
import torch
from conftest import Crash, crash_after, random_batches

from digitnet.data import load_dataset
from digitnet.recipes import get_recipe
from digitnet.runs import resume, train
from digitnet.training import TrainConfig, fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize(("recipe", "precision"), [(r, p) for r in ("tutorial", "best") for p in ("fp32", "tf32", "bf16")]
                         + [("cnn", "fp32"), ("cnn", "tf32"), ("cnn", "bf16")])
def test_epochs_replayed_from_a_cuda_graph_compute_what_eager_steps_compute(fashion_dir, monkeypatch, recipe, precision):
    """The convnet trains augmented: its replayed epochs apply draws made before each replay."""
    from digitnet.model import build_model
    from digitnet.training.graphs import EpochGraph
    from digitnet.training.steps import make_step

    data = load_dataset("fashion-mnist", fashion_dir, progress=False)
    config = TrainConfig(get_recipe(recipe, epochs=3), "fashion-mnist", device="cuda", precision=precision)
    kind = get_recipe(recipe).model
    assert isinstance(make_step(build_model(device="cuda", kind=kind), config.recipe, 10), EpochGraph)
    graphed = fit(config, data, progress=False)
    monkeypatch.setenv("DIGITNET_CUDA_GRAPHS", "0")
    eager = fit(config, data, progress=False)
    for (name, a), b in zip(graphed.model.state_dict().items(), eager.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [r.test_accuracy for r in graphed.history] == [r.test_accuracy for r in eager.history]
    assert [r.lr for r in graphed.history] == [r.lr for r in eager.history]
    assert [r.train_loss for r in graphed.history] == [r.train_loss for r in eager.history]  # the loss slots
    assert graphed.history[-1].test_accuracy > 0.5


def test_the_convnet_takes_the_written_out_step_on_a_gpu(monkeypatch):
    from digitnet.model import build_model
    from digitnet.training.convnet import ConvNetStep
    from digitnet.training.steps import make_step
    from digitnet.training.triton_pool import TorchPool, TritonPool

    recipe = get_recipe("cnn")
    fp32 = make_step(build_model(device="cuda", kind="cnn"), recipe, 10).step  # inside its EpochGraph
    bf16 = make_step(build_model(device="cuda", kind="cnn"), recipe, 10, torch.bfloat16).step
    assert type(fp32) is ConvNetStep and type(bf16) is ConvNetStep and bf16.mlp.mixed
    pytest.importorskip("triton")
    assert isinstance(fp32.pool, TritonPool)
    monkeypatch.setenv("DIGITNET_TRITON", "0")
    assert isinstance(make_step(build_model(device="cuda", kind="cnn"), recipe, 10).step.pool, TorchPool)


def test_tf32_is_used_only_when_asked_for_and_only_inside_the_run(fashion_dir):
    data = load_dataset("fashion-mnist", fashion_dir, progress=False)
    cudnn = torch.backends.cudnn
    before = torch.get_float32_matmul_precision(), cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark
    runs = {p: fit(TrainConfig(get_recipe("tutorial", epochs=1), "fashion-mnist", device="cuda", precision=p), data,
                   progress=False) for p in ("fp32", "tf32")}
    assert (torch.get_float32_matmul_precision(), cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark) == before
    fp32, tf32 = (runs[p].model.state_dict() for p in ("fp32", "tf32"))
    assert not torch.equal(fp32["0.weight"], tf32["0.weight"])  # TF32 products round differently
    torch.testing.assert_close(fp32["0.weight"], tf32["0.weight"], rtol=0, atol=1e-3)


def test_a_stop_signal_during_replayed_epochs_ends_the_run_at_the_epoch_boundary(fashion_dir):
    import os
    import signal

    from digitnet.training import TrainingInterrupted

    data = load_dataset("fashion-mnist", fashion_dir, progress=False)
    finished = []

    def interrupt_after_second(record, state):
        finished.append(record.epoch)
        if record.epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)

    config = TrainConfig(get_recipe("best", epochs=4), "fashion-mnist", device="cuda")
    with pytest.raises(TrainingInterrupted, match="during epoch 3 "):
        fit(config, data, on_epoch=interrupt_after_second, progress=False)
    assert finished == [1, 2]


@pytest.mark.parametrize("recipe", ["tutorial", "best", "cnn"])
def test_resume_on_cuda_is_bit_identical(tmp_path, fashion_dir, recipe):
    common = dict(data_dir=fashion_dir, epochs=4, device="cuda", progress=False)
    train(recipe, "fashion-mnist", out=tmp_path / "whole", **common)
    with pytest.raises(Crash):
        train(recipe, "fashion-mnist", out=tmp_path / "cut", on_epoch=crash_after(2), **common)
    resume(tmp_path / "cut", progress=False)
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(tmp_path / "cut" / "model.safetensors"))
    differ = {k: float((a[k] - b[k]).abs().max()) for k in a if not torch.equal(a[k], b[k])}
    assert not differ, f"largest differences: {differ}"


def test_written_out_backward_pass_on_cuda_tracks_autograd():
    from digitnet.model import build_model
    from digitnet.training.backprop import BackpropStep
    from digitnet.training.optim import AutogradStep

    recipe = get_recipe("best")
    batches = random_batches([128] * 5)
    ours, reference = build_model(seed=1, device="cuda"), build_model(seed=1, device="cuda")
    step, reference_step = BackpropStep(ours, recipe, 10), AutogradStep(reference, recipe, 10)
    for x, y in batches:
        x, y = x.cuda(), y.cuda()
        assert step(x, y).item() == pytest.approx(reference_step(x, y).item(), rel=1e-4)
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize(("recipe", "dtype"), [("tutorial", torch.float32), ("tutorial", torch.bfloat16),
                                              ("best", torch.float32), ("best", torch.bfloat16)])
def test_gradients_forked_onto_side_streams_are_those_computed_in_order(recipe, dtype):
    from digitnet.model import build_model
    from digitnet.training.steps import make_step
    from digitnet.training.streams import SideStreams

    steps = [make_step(build_model(seed=1, device="cuda"), get_recipe(recipe), 100, dtype, cuda_graphs=False)
             for _ in range(2)]
    assert steps[0].mlp.side._streams  # a GPU step forks
    steps[1].mlp.side = SideStreams(torch.device("cpu"), 0)  # everything in order on the current stream
    for x, y in random_batches([512, 512, 512, 96], seed=3, device="cuda"):
        losses = [step(x.to(dtype), y) for step in steps]
        assert torch.equal(*losses)
    for forked, in_order in zip(*(step.mlp.linears for step in steps)):
        assert torch.equal(forked.weight, in_order.weight) and torch.equal(forked.bias, in_order.bias)


@pytest.mark.parametrize(("recipe", "precision"), [("tutorial", "tf32"), ("cnn", "fp32")])
def test_evaluate_on_cuda_repeats_the_figures_training_wrote(tmp_path, fashion_dir, recipe, precision):
    """Re-evaluation uses the run's own products (TF32 for a tf32 run; IEEE float32 convolutions for
    an fp32 cnn, where cuDNN's default would be TF32), so the figures come back bit for bit."""
    from digitnet.runs.evaluate import evaluate_run

    train(recipe, "fashion-mnist", data_dir=fashion_dir, epochs=1, device="cuda", precision=precision,
          augment="none" if recipe == "cnn" else None, out=tmp_path / "run", progress=False)
    evaluation, last_row, _ = evaluate_run(tmp_path / "run", device="cuda", progress=False)
    assert (evaluation.loss, evaluation.accuracy) == (last_row["test_loss"], last_row["test_accuracy"])


def test_the_triton_top_layer_serves_by_default_and_trains_as_pytorchs_kernels(fashion_dir, monkeypatch):
    pytest.importorskip("triton")
    from digitnet.model import build_model
    from digitnet.training.steps import make_step

    recipe = get_recipe("tutorial", epochs=2)
    assert make_step(build_model(device="cuda"), recipe, 10).step.mlp.fused_tail  # EpochGraph(FusedSGDStep)
    data = load_dataset("fashion-mnist", fashion_dir, progress=False)
    config = TrainConfig(recipe, "fashion-mnist", device="cuda")
    fused = fit(config, data, progress=False)
    monkeypatch.setenv("DIGITNET_TRITON", "0")
    plain = fit(config, data, progress=False)
    for (name, a), b in zip(fused.model.state_dict().items(), plain.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4, msg=name)
    assert abs(fused.history[-1].test_accuracy - plain.history[-1].test_accuracy) < 0.005
