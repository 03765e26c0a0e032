"""GPU checks (skipped where there is no CUDA device, as on CI): graph replay and resume."""

import pytest
import torch
from conftest import Crash, crash_after

from digitnet.data import load_dataset
from digitnet.recipes import get_recipe
from digitnet.runs import resume, train
from digitnet.training import TrainConfig, fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_graph_replay_computes_what_eager_steps_compute(fashion_dir, monkeypatch, precision):
    data = load_dataset("fashion-mnist", fashion_dir, progress=False)
    config = TrainConfig(get_recipe("tutorial", epochs=3), "fashion-mnist", device="cuda", precision=precision)
    graphed = fit(config, data, progress=False)
    monkeypatch.setenv("DIGITNET_CUDA_GRAPHS", "0")
    eager = fit(config, data, progress=False)
    for (name, a), b in zip(graphed.model.state_dict().items(), eager.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [r.test_accuracy for r in graphed.history] == [r.test_accuracy for r in eager.history]


def test_resume_on_cuda_is_bit_identical(tmp_path, fashion_dir):
    common = dict(data_dir=fashion_dir, epochs=4, device="cuda", progress=False)
    train("tutorial", "fashion-mnist", out=tmp_path / "whole", **common)
    with pytest.raises(Crash):
        train("tutorial", "fashion-mnist", out=tmp_path / "cut", on_epoch=crash_after(2), **common)
    resume(tmp_path / "cut", progress=False)
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
