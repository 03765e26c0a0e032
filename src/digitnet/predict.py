"""Predicting digits with a trained run: confidences, one image or many.

Confidences. A `best`-recipe model is trained with softmax cross-entropy: its confidences are
softmax(outputs). A `seed`-recipe model is trained with the tutorial's MSE against one-hot
targets; the function that minimises that loss is the vector of class probabilities
E[onehot | x], so its outputs are already estimates of the probabilities, only not constrained to
[0, 1]. We clip them at 0 and divide by their sum (all ten equal if every output is <= 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitnet.imageprep import MAX_PIXELS, PreparedDigit, read_digits

# torch is imported inside the functions that need it, so that `digitnet predict --onnx` runs
# without it.


@dataclass
class Prediction:
    digit: int
    confidence: float
    probabilities: list[float]
    prepared: np.ndarray = field(repr=False)  # the 28x28 uint8 input the network saw
    inverted: bool = False
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # (left, top, right, bottom) in the source image

    def to_dict(self) -> dict:
        return {"digit": self.digit, "confidence": self.confidence, "probabilities": self.probabilities,
                "inverted": self.inverted, "box": list(self.box), "prepared": self.prepared.tolist()}


@dataclass
class Reading:
    """The digits of one image, left to right."""

    predictions: list[Prediction]

    @property
    def digits(self) -> str:
        return "".join(str(p.digit) for p in self.predictions)

    def to_dict(self) -> dict:
        """{"digits": "2026", "items": [per digit: digit, confidence, probabilities, box, prepared]};
        an image of one digit also has that digit's fields at the top, as before."""
        single = self.predictions[0].to_dict() if len(self.predictions) == 1 else {}
        return {**single, "digits": self.digits, "items": [p.to_dict() for p in self.predictions]}


def confidences(outputs, loss: str):
    """Rows of class probabilities from raw network outputs (see the module docstring)."""
    import torch

    if loss == "cross-entropy":
        return torch.softmax(outputs, dim=1)
    clipped = outputs.clamp(min=0)
    total = clipped.sum(dim=1, keepdim=True)
    uniform = torch.full_like(outputs, 1.0 / outputs.shape[1])
    return torch.where(total > 0, clipped / total.clamp(min=1e-12), uniform)


class ImagePredictor:
    """Shared by the PyTorch and the ONNX Runtime predictors: images in, Predictions out."""

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:  # (N, 28, 28) uint8 -> (N, 10)
        raise NotImplementedError

    def predict_prepared(self, prepared: list[PreparedDigit]) -> Reading:
        probs = self.probabilities(np.stack([p.pixels for p in prepared]))
        return Reading([Prediction(int(row.argmax()), float(row.max()), [float(v) for v in row], p.pixels,
                                   p.inverted, p.box) for row, p in zip(probs, prepared)])

    def read_image(self, source, name: str = "image", max_pixels: int = MAX_PIXELS) -> Reading:
        """An image file, bytes or Pillow image -> its digits, left to right (ImageError for a bad or
        blank image)."""
        return self.predict_prepared(read_digits(source, name, max_pixels))

    def predict_image(self, source, name: str = "image", max_pixels: int = MAX_PIXELS) -> Prediction:
        """An image of one digit (all its ink counts as that digit) -> its Prediction."""
        return self.predict_prepared(read_digits(source, name, max_pixels, one=True)).predictions[0]


class Predictor(ImagePredictor):
    """A run folder's model in PyTorch."""

    def __init__(self, run_dir: str | Path, device: str = "cpu"):
        from digitnet.runs import load_run  # lazy: --onnx predicts without torch

        self.run_dir = Path(run_dir)
        self.config, self.model = load_run(run_dir, device=device)
        self.model.eval()
        self.loss = self.config["recipe"]["loss"]
        self.device = device

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        from digitnet.data.batches import scale_images

        with torch.no_grad():
            x = scale_images(np.ascontiguousarray(pixels, dtype=np.uint8), self.device)
            return confidences(self.model(x), self.loss).cpu().numpy()
