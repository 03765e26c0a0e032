"""ONNX export, checked with ONNX Runtime, and prediction through it without PyTorch."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from conftest import TIME_FACTOR

from digitnet.errors import DigitnetError, ModelFileError
from digitnet.export import OnnxPredictor, export_onnx
from digitnet.predict import Predictor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(mnist_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(mnist_run, run)
    path, difference = export_onnx(run, progress=False)
    return run, path, difference


def test_export_matches_pytorch_on_the_whole_test_split(exported, mnist_test_digits):
    run, path, difference = exported
    assert path == run / "model.onnx" and path.stat().st_size > 100_000
    assert difference <= 1e-5
    digits = mnist_test_digits[0]
    onnx_probs = OnnxPredictor(run).probabilities(digits)
    torch_probs = Predictor(run).probabilities(digits)
    assert onnx_probs.shape == (2000, 10)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-5)


def test_dynamic_batch_and_pixel_scaling_inside_the_graph(exported, mnist_test_digits):
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported[1]), providers=["CPUExecutionProvider"])
    for n in (1, 37):
        logits, confidences = session.run(None, {"pixels": mnist_test_digits[0][:n].astype(np.float32)})
        assert logits.shape == confidences.shape == (n, 10)
    assert [i.name for i in session.get_inputs()] == ["pixels"]


def test_predict_with_onnx_does_not_import_torch(exported, mnist_test_digits, tmp_path):
    run = exported[0]
    image = tmp_path / "digit.png"
    Image.fromarray(255 - mnist_test_digits[0][5]).resize((140, 140)).save(image)
    code = ("import sys\nfrom digitnet.cli import main\n"
            f"rc = main(['predict', '--onnx', {str(run)!r}, {str(image)!r}])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(rc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120 * TIME_FACTOR)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\t")[1] == str(Predictor(run).predict_image(image).digit)


def test_bad_cases(exported, tmp_path):
    run = exported[0]
    no_model = tmp_path / "no-model"
    no_model.mkdir()
    shutil.copy(run / "config.json", no_model)
    with pytest.raises(ModelFileError, match="no such model file"):
        export_onnx(no_model, progress=False)
    with pytest.raises(ModelFileError, match="model.onnx: not found; create it with `digitnet export"):
        OnnxPredictor(no_model)
    (no_model / "model.onnx").write_bytes(b"\x08\x07 not protobuf at all")
    with pytest.raises(DigitnetError, match="model.onnx: not a valid ONNX model"):
        OnnxPredictor(no_model)
    cut = tmp_path / "cut"
    shutil.copytree(run, cut)
    data = (cut / "model.onnx").read_bytes()
    (cut / "model.onnx").write_bytes(data[: len(data) // 2])
    done = subprocess.run([sys.executable, "-m", "digitnet", "predict", "--onnx", str(cut), str(tmp_path)],
                          capture_output=True, text=True, timeout=60 * TIME_FACTOR)
    assert done.returncode == 2 and "not a valid ONNX model" in done.stderr and "Traceback" not in done.stderr


def test_the_export_command_prints_one_line_and_nothing_else(mnist_run, tmp_path):
    """The exporter's own chatter (torchvision not installed, deprecations) stays out of the output;
    only the test split is needed, so a folder without the training files is enough."""
    run = shutil.copytree(mnist_run, tmp_path / "run")
    done = subprocess.run([sys.executable, "-m", "digitnet", "export", str(run)], capture_output=True, text=True,
                          timeout=300 * TIME_FACTOR)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"wrote {run / 'model.onnx'}; ONNX Runtime matches PyTorch") and \
        done.stdout.count("\n") == 1


def test_a_cnn_run_exports_and_onnx_runtime_reads_it_as_pytorch_does(tmp_path, mnist_t10k_dir, mnist_test_digits):
    from digitnet.runs import train

    train("cnn", "mnist-10k", data_dir=mnist_t10k_dir, epochs=1, out=tmp_path / "cnn", progress=False)
    path, difference = export_onnx(tmp_path / "cnn", progress=False)
    assert path.is_file() and difference <= 1e-4
    digits = mnist_test_digits[0][:500]
    np.testing.assert_allclose(OnnxPredictor(tmp_path / "cnn").probabilities(digits),
                               Predictor(tmp_path / "cnn").probabilities(digits), atol=1e-4)
