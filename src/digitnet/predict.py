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


VIEW_SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))  # (down, right) in pixels
VIEW_SCALES = (0.9, 1.1)  # about the field's centre
VIEWS = 1 + len(VIEW_SHIFTS) + len(VIEW_SCALES)


def views(pixels: np.ndarray) -> np.ndarray:
    """(VIEWS * N, 28, 28) uint8: the N prepared digits as they are, then moved a pixel down, up,
    right and left, then scaled by each of VIEW_SCALES, one view after another. Where a digit was
    cut out, how thick its strokes came out and where its mass centred it are all a pixel or a tenth
    uncertain; the network's answer should not hang on them."""
    from scipy import ndimage

    digits = pixels.astype(np.float32)
    moved = [ndimage.shift(digits, (0, down, right), order=0) for down, right in VIEW_SHIFTS]
    centre = (np.array(digits.shape[1:]) - 1) / 2
    scaled = [ndimage.affine_transform(digits, np.diag([1.0, 1 / scale, 1 / scale]),
                                       offset=np.concatenate([[0.0], centre - centre / scale]), order=1)
              for scale in VIEW_SCALES]
    return np.clip(np.rint(np.concatenate([digits, *moved, *scaled])), 0, 255).astype(np.uint8)


SPLIT_MARGIN = 0.4  # how much surer of both halves than of the whole a reading of two touching digits must be
JOIN_MARGIN = 0.2  # how much surer of a piece of ink than of its least sure part a reading of it as one digit must be
JOIN_DOUBT = 0.3  # ... and its doubt (1 - confidence) under this share of that part's


def _prediction(probabilities: np.ndarray, prepared: PreparedDigit) -> Prediction:
    return Prediction(int(probabilities.argmax()), float(probabilities.max()), [float(v) for v in probabilities],
                      prepared.pixels, prepared.inverted, prepared.box)


def _split_or_whole(row: np.ndarray, prepared: PreparedDigit, half_probs) -> list[Prediction]:
    """A prepared digit's reading, its confidences row: itself, or the halves of its split (their
    confidences next in half_probs, two a split) that the network is surest of, where it is surer of
    each than of the whole by SPLIT_MARGIN."""
    chosen, sure = [_prediction(row, prepared)], row.max() + SPLIT_MARGIN
    for split in prepared.splits:
        left, right = next(half_probs), next(half_probs)
        if min(left.max(), right.max()) > sure:
            chosen, sure = [_prediction(left, split[0]), _prediction(right, split[1])], min(left.max(), right.max())
    return chosen


def _one_digit(whole: float, least_part: float) -> bool:
    """Whether the network's confidence in a piece of ink read whole so outweighs its confidence in
    the least sure of the parts it was cut into that it is one digit."""
    return whole > least_part + JOIN_MARGIN and 1 - whole < JOIN_DOUBT * (1 - least_part)


class ImagePredictor:
    """Shared by the PyTorch and the ONNX Runtime predictors: images in, Predictions out.

    A prepared digit's confidences are the mean of the network's over its views (test-time
    augmentation): on the real-world set this reads a few more photos, numbers and printed digits
    right, and MNIST's own test digits too (docs/real-world.md). `one_view = True` asks for the
    network's single answer on the digit as prepared, as the look-inside page shows it."""

    one_view = False

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:  # (N, 28, 28) uint8 -> (N, 10)
        raise NotImplementedError

    def digit_probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 prepared digits -> (N, 10) confidences, over their views unless one_view."""
        if self.one_view:
            return self.probabilities(pixels)
        return self.probabilities(views(pixels)).reshape(VIEWS, len(pixels), -1).mean(axis=0)

    def predict_prepared(self, prepared: list[PreparedDigit]) -> Reading:
        """The prepared digits read. One whose ink may be two touching digits (its splits) is read as
        the two halves of the split the network is surest of both halves of, where it is surer of each
        than of the whole by SPLIT_MARGIN (a single digit cut in two reads as two digits, now and then,
        a little surer than as one: docs/real-world.md). Digits cut from one piece of ink for its shape
        are read as that one piece (their first's joined) where the network is surer of it than of the
        least sure of them by JOIN_MARGIN and its doubt is under JOIN_DOUBT of that one's (a wide 0 cut
        into a 6 and a 2; a margin alone joined two touching printed 4s: docs/real-world.md)."""
        halves = [half for p in prepared for split in p.splits for half in split]
        joined = [p.joined for p in prepared if p.joined is not None]
        probs = self.digit_probabilities(np.stack([p.pixels for p in prepared + halves + joined]))
        half_probs = iter(probs[len(prepared):len(prepared) + len(halves)])
        readings = [_split_or_whole(row, p, half_probs) for row, p in zip(probs, prepared)]
        joined_probs = iter(probs[len(prepared) + len(halves):])
        predictions, k = [], 0
        while k < len(prepared):
            p = prepared[k]
            whole = next(joined_probs) if p.joined is not None else None
            if whole is not None and _one_digit(whole.max(), probs[k:k + p.joins].max(axis=1).min()):
                predictions.append(_prediction(whole, p.joined))
                k += p.joins
            else:
                predictions += readings[k]
                k += 1
        return Reading(predictions)

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
        import torch

        from digitnet.runs import load_run  # lazy: --onnx predicts without torch
        from digitnet.training.devices import fast_layout

        self.run_dir = Path(run_dir)
        self.config, model = load_run(run_dir, device=device)
        self.model = fast_layout(model, torch.device(device)).eval()  # a convnet's seven views: 1.1 -> 0.5 ms
        self.loss = self.config["recipe"]["loss"]
        self.device = device

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        from digitnet.data.batches import scale_images

        with torch.no_grad():
            x = scale_images(np.ascontiguousarray(pixels, dtype=np.uint8), self.device)
            return confidences(self.model(x), self.loss).cpu().numpy()
