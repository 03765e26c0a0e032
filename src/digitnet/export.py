"""ONNX export: a model file that runs without Python's PyTorch, checked at once.

model.onnx takes float pixels 0-255 of shape (batch, 28, 28), any batch size, and does the
tutorial's scaling (2x/255 - 1) itself; it returns "logits" and "confidences" (computed as
`digitnet.predict` documents, so the confidences match `digitnet predict`). After writing, the
file is run with ONNX Runtime on the run's whole test split and must match PyTorch within 1e-5.

Needs the optional extra: pip install -e ".[onnx]" (onnx, onnxscript for the exporter,
onnxruntime to run it).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings
from pathlib import Path

import numpy as np

from digitnet.errors import DigitnetError, ModelFileError
from digitnet.predict import ImagePredictor
from digitnet.settings import SIDE

# torch and the run folder are imported inside the export functions: OnnxPredictor, in this module
# too, must run without PyTorch installed.

ONNX_FILE = "model.onnx"
TOLERANCE = 1e-5
OPSET = 18


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DigitnetError(f"{module} is not installed; pip install 'digitnet[onnx]'") from None


def _graph_module(model, loss: str):
    import torch

    from digitnet.data.batches import scale_pixels
    from digitnet.predict import confidences

    class PixelsToConfidences(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = model

        def forward(self, pixels):
            logits = self.mlp(scale_pixels(pixels))
            return logits, confidences(logits, loss)

    return PixelsToConfidences().eval()


@contextlib.contextmanager
def _exporter_quiet():
    """Silence the exporter's warnings and log lines (deprecations, "torchvision is not installed.
    Skipping torchvision::nms" and the like): none of them concerns this model or the user."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(run_dir: str | Path, data_dir=None, progress: bool = True) -> tuple[Path, float]:
    """Write RUN/model.onnx and verify it on the test split; returns (path, max |difference|)."""
    import torch

    from digitnet.fsutil import atomic_path
    from digitnet.runs import load_run, load_run_data

    _require("onnx"), _require("onnxscript")
    ort = _require("onnxruntime")
    config, model = load_run(run_dir)
    module = _graph_module(model, config["recipe"]["loss"])
    path = Path(run_dir) / ONNX_FILE
    pixels = load_run_data(config, run_dir, data_dir, progress, test_only=True).x_test.astype(np.float32)
    with torch.no_grad():
        expected_logits, expected_conf = (t.numpy() for t in module(torch.from_numpy(pixels)))
    with atomic_path(path) as tmp, _exporter_quiet():
        torch.onnx.export(
            module, (torch.zeros(2, SIDE, SIDE),), str(tmp), dynamo=True, opset_version=OPSET, verbose=False,
            input_names=["pixels"], output_names=["logits", "confidences"],
            dynamic_shapes={"pixels": {0: torch.export.Dim("batch")}}, external_data=False,
        )
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        logits, conf = session.run(None, {"pixels": pixels})
        difference = float(max(np.abs(logits - expected_logits).max(), np.abs(conf - expected_conf).max()))
        if not difference <= TOLERANCE:
            raise ModelFileError(f"the exported model differs from PyTorch by {difference:.2e} (> {TOLERANCE:g}) on "
                                 "the test split; not written")
    return path, difference


class OnnxPredictor(ImagePredictor):
    """RUN/model.onnx through ONNX Runtime: no PyTorch imported."""

    def __init__(self, run_dir: str | Path):
        ort = _require("onnxruntime")
        path = Path(run_dir) / ONNX_FILE
        if not path.is_file():
            raise ModelFileError(f"{path}: not found; create it with `digitnet export {run_dir}`")
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            reason = str(exc).strip().splitlines()[0][:200]
            raise ModelFileError(f"{path}: not a valid ONNX model ({reason}); export it again") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != ["pixels"]:
            raise ModelFileError(f"{path}: expected one input named 'pixels', found {names}; export it again")

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(["confidences"], {"pixels": pixels.astype(np.float32)})[0]
