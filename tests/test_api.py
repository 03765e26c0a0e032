"""The public Python API as the README shows it."""

import subprocess
import sys

import pytest
from conftest import TIME_FACTOR

import digitnet
from digitnet import load_mnist, train


def test_public_names_resolve_and_importing_the_package_loads_no_torch():
    assert set(digitnet.__all__) >= {"load_mnist", "load_fashion_mnist", "build_model", "train"}
    for name in digitnet.__all__:
        assert getattr(digitnet, name) is not None
    with pytest.raises(AttributeError):
        digitnet.not_a_name  # noqa: B018
    code = "import sys, digitnet\nassert 'torch' not in sys.modules\ndigitnet.train\nassert 'torch' in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120 * TIME_FACTOR)
    assert done.returncode == 0, done.stderr


def test_load_mnist_offline_error_is_a_digitnet_error():
    with pytest.raises(digitnet.DigitnetError, match="--data-dir"):
        load_mnist(progress=False)


@pytest.mark.slow
def test_train_returns_history_and_writes_the_run(tmp_path, mnist_t10k_dir):
    result = train("best", "mnist-10k", data_dir=mnist_t10k_dir, epochs=2, out=tmp_path / "run", progress=False)
    assert [r.epoch for r in result.history] == [1, 2]
    assert result.run_dir == str(tmp_path / "run")
    assert (tmp_path / "run" / "model.safetensors").is_file()

