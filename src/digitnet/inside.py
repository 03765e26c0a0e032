"""What the network computes for one input, layer by layer: for the look-inside page, `/api/inspect`
and `digitnet inspect`.

The layers shown are the ones a reader of the tutorial thinks in: for the MLP each hidden layer
after its ReLU and the ten outputs; for the CNN each conv block after its pooling, the dense layer
and the outputs. "Contributions" say which units of the last hidden layer pushed a digit's output
up or down: unit j adds h_j * W[digit, j] to it (h_j >= 0 after the ReLU), so the sum of all
contributions plus the bias is that output exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from digitnet.data.batches import scale_images
from digitnet.model import pass_rows
from digitnet.predict import confidences

CONTRIBUTORS = 8  # units listed as pushing the winning digit up, and as many pushing it down


@dataclass
class LayerView:
    name: str  # "hidden 1", "conv block 2", "output"
    kind: str  # "units" (a vector) or "maps" (channels x height x width)
    values: np.ndarray  # float32, shape (units,) or (channels, height, width)

    def to_dict(self, digits: int = 4) -> dict:
        return {"name": self.name, "kind": self.kind, "shape": list(self.values.shape),
                "values": np.round(self.values.reshape(-1).astype(np.float64), digits).tolist()}


def _is_cnn(model: nn.Sequential) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model)


def _shown_after(model: nn.Sequential) -> list[tuple[int, str]]:
    """(index of the module whose output is shown, its name), in order."""
    modules = list(model)
    if _is_cnn(model):
        flatten = next(i for i, m in enumerate(modules) if isinstance(m, nn.Flatten))
        # a block ends where the next conv (or the flattening) begins: after its pooling and ReLU
        starts = [i for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)][1:] + [flatten]
        blocks = [i - 1 for i in starts]
        dense = [i for i, m in enumerate(modules) if isinstance(m, nn.ReLU) and i > flatten]
        return [*((i, f"conv block {k + 1}") for k, i in enumerate(blocks)),
                *((i, "dense" if len(dense) == 1 else f"dense {k + 1}") for k, i in enumerate(dense)),
                (len(modules) - 1, "output")]
    relus = [i for i, m in enumerate(modules) if isinstance(m, nn.ReLU)]
    return [*((i, f"hidden {k + 1}") for k, i in enumerate(relus)), (len(modules) - 1, "output")]


@torch.no_grad()
def layer_outputs(model: nn.Sequential, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """(name, batch of outputs) of every shown layer, for a batch of scaled, flattened inputs."""
    shown = dict(_shown_after(model))
    outputs = []
    for index, module in enumerate(model):
        x = module(x)
        if index in shown:
            outputs.append((shown[index], x))
    return outputs


def hidden_and_outputs(model: nn.Sequential, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For (N, 28, 28) uint8 images, in one walk through them: the last hidden layer's activations
    (N, units) and the network's outputs (N, 10), float32."""
    model.eval()
    hidden, outputs = [], []
    batch = pass_rows(model)
    for start in range(0, len(pixels), batch):
        x = scale_images(np.ascontiguousarray(pixels[start : start + batch]), "cpu")
        layers = layer_outputs(model, x)
        hidden.append(layers[-2][1].reshape(len(x), -1).numpy())
        outputs.append(layers[-1][1].numpy())
    if not hidden:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(hidden), np.concatenate(outputs)


def scaled_per_unit(weights: np.ndarray) -> np.ndarray:
    """Each unit's weights divided by its own largest magnitude: -1..1, so every unit shows."""
    return weights / np.maximum(np.abs(weights).reshape(len(weights), -1).max(axis=1), 1e-12)[:, None, None]


def first_layer(model: nn.Sequential) -> tuple[str, np.ndarray]:
    """(layer name, weights per unit): (units, 28, 28) for the MLP, (channels, 3, 3) kernels for the CNN."""
    if _is_cnn(model):
        conv = next(m for m in model if isinstance(m, nn.Conv2d))
        return "conv block 1", conv.weight.detach()[:, 0].cpu().numpy().copy()
    linear = next(m for m in model if isinstance(m, nn.Linear))
    side = int(round(linear.in_features ** 0.5))
    return "hidden 1", linear.weight.detach().reshape(-1, side, side).cpu().numpy().copy()


def contributions(model: nn.Sequential, last_hidden: torch.Tensor, digit: int) -> dict:
    """Which units of the last hidden layer pushed `digit`'s output up and down, and by how much."""
    output = list(model)[-1]
    pushes = (last_hidden.reshape(-1) * output.weight.detach()[digit]).numpy()
    order = np.argsort(pushes)
    up = [int(j) for j in order[::-1][:CONTRIBUTORS] if pushes[j] > 0]
    down = [int(j) for j in order[:CONTRIBUTORS] if pushes[j] < 0]
    return {"digit": digit, "bias": float(output.bias.detach()[digit]),
            "up": [{"unit": j, "push": float(pushes[j])} for j in up],
            "down": [{"unit": j, "push": float(pushes[j])} for j in down]}


def look_inside(model: nn.Sequential, pixels: np.ndarray, loss: str) -> dict:
    """Everything the look-inside page shows for one prepared 28x28 uint8 digit, JSON-ready."""
    model.eval()
    x = scale_images(np.ascontiguousarray(pixels[None], dtype=np.uint8), "cpu")
    outputs = layer_outputs(model, x)
    views = [LayerView(name, "maps" if out.dim() == 4 else "units", out[0].numpy()) for name, out in outputs]
    probabilities = confidences(outputs[-1][1], loss)[0].numpy()
    digit = int(probabilities.argmax())
    return {"digit": digit, "confidence": float(probabilities[digit]),
            "probabilities": [float(p) for p in probabilities], "input": pixels.astype(int).tolist(),
            "layers": [view.to_dict() for view in views],
            "contributions": contributions(model, outputs[-2][1][0], digit)}
