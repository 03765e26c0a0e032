"""The networks: the tutorial's fully connected ReLU MLP and a small CNN; Keras-style init; model files.

Weights are stored only as safetensors plus JSON metadata; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from torch import nn

from digitnet.errors import ModelFileError
from digitnet.settings import CLASSES, DEFAULT_HIDDEN, PIXELS, SIDE
from digitnet.tensorfile import read_tensor_file, write_tensor_file

FORMAT = "digitnet-mlp"
FORMAT_VERSION = 2  # 2: the digest covers the metadata too


CNN_CHANNELS, CNN_DENSE = (32, 64), 128
MODEL_KINDS = ("mlp", "cnn")


def architecture(hidden=DEFAULT_HIDDEN, kind: str = "mlp") -> dict:
    """The JSON description that, with the weights, fully defines a model."""
    if kind == "cnn":
        return {"type": "cnn", "side": SIDE, "channels": list(CNN_CHANNELS), "dense": CNN_DENSE, "classes": CLASSES,
                "activation": "relu"}
    return {"type": "mlp", "inputs": PIXELS, "hidden": [int(h) for h in hidden], "classes": CLASSES,
            "activation": "relu"}


MAX_UNITS = 1 << 16  # per layer: far above any sensible size, far below what would exhaust memory
MAX_HIDDEN_LAYERS = 16


def _positive_ints(values, count: int | None = None) -> bool:
    return (isinstance(values, list) and bool(values) and len(values) <= MAX_HIDDEN_LAYERS
            and (count is None or len(values) == count)
            and all(type(v) is int and 1 <= v <= MAX_UNITS for v in values))


def architecture_problem(arch) -> str | None:
    """What is wrong with an architecture description (from a config or a model file), or None."""
    if not isinstance(arch, dict):
        return "must be a JSON object"
    if arch.get("classes") != CLASSES or arch.get("activation") != "relu":
        return f"must have {CLASSES} classes and relu activation"
    if arch.get("type") == "mlp":
        if arch.get("inputs") != PIXELS or not _positive_ints(arch.get("hidden")):
            return (f"an mlp needs {PIXELS} inputs and 1-{MAX_HIDDEN_LAYERS} hidden sizes from 1 to {MAX_UNITS}")
        return None
    if arch.get("type") == "cnn":
        if arch.get("side") != SIDE or not _positive_ints(arch.get("channels"), 2) or not _positive_ints([arch.get("dense")]):
            return f"a cnn needs side {SIDE}, two channel counts and a dense size from 1 to {MAX_UNITS}"
        return None
    return f"type must be one of {', '.join(MODEL_KINDS)}"


def describe(arch: dict) -> str:
    """A short human description: "784-256-128-10 MLP" or "CNN 32-64 conv, 128 dense"."""
    if arch["type"] == "cnn":
        return f"CNN {'-'.join(map(str, arch['channels']))} conv, {arch['dense']} dense"
    return "-".join(str(n) for n in _layer_sizes(arch)) + " MLP"


def _layer_sizes(arch: dict) -> list[int]:
    return [arch["inputs"], *arch["hidden"], arch["classes"]]


def build_model(hidden=DEFAULT_HIDDEN, seed: int = 0, device: str | torch.device = "cpu", kind: str = "mlp"
                ) -> nn.Sequential:
    """784-h1-...-10 MLP (ReLU between layers, linear output) or the small CNN; Glorot-uniform
    weights and zero biases, as Keras' Dense and Conv2D layers start."""
    if kind == "mlp" and (not hidden or any(int(h) < 1 for h in hidden)):
        raise ValueError(f"hidden sizes must be positive integers, got {hidden!r}")
    return model_from_architecture(architecture(hidden, kind), seed=seed, device=device)


def _cnn_layers(arch: dict) -> list[nn.Module]:
    """Two conv blocks (3x3 conv, 2x2 max-pool, ReLU) and a dense head, on flat scaled pixels.

    Pooling before the ReLU computes exactly what ReLU-then-pool does, forward and backward (both
    are monotonic, and relu(max) = max(relu)), on a quarter of the values: with channels-last on the
    CPU the step ran about 1.4x faster (benchmarks/cnn_step.py), bit-identical. Parameters keep their
    indices in either order."""
    side, (c1, c2) = arch["side"], arch["channels"]
    return [nn.Unflatten(1, (1, side, side)),
            nn.Conv2d(1, c1, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(c2 * (side // 4) ** 2, arch["dense"]), nn.ReLU(),
            nn.Linear(arch["dense"], arch["classes"])]


def _mlp_layers(arch: dict) -> list[nn.Module]:
    sizes = _layer_sizes(arch)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return layers[:-1]  # no activation after the output layer


def _layers(arch: dict) -> list[nn.Module]:
    return _cnn_layers(arch) if arch["type"] == "cnn" else _mlp_layers(arch)


def model_from_architecture(arch: dict, seed: int = 0, device: str | torch.device = "cpu") -> nn.Sequential:
    model = nn.Sequential(*_layers(arch))
    glorot_init_(model, seed)
    return model.to(device)


@torch.no_grad()
def glorot_init_(model: nn.Module, seed: int) -> None:
    """Keras' defaults: kernel ~ U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), bias = 0; for a
    convolution fan_in and fan_out count the kernel's window too."""
    generator = torch.Generator().manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            window = layer.weight[0, 0].numel() if isinstance(layer, nn.Conv2d) else 1
            fan_out, fan_in = layer.weight.shape[0] * window, layer.weight.shape[1] * window
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            layer.weight.copy_(torch.empty(layer.weight.shape).uniform_(-limit, limit, generator=generator))
            layer.bias.zero_()


PASS_BYTES = 16 << 20  # the widest layer output of one evaluation pass, at most (pass_rows)
MAX_PASS_ROWS = 4096


@torch.no_grad()
def pass_rows(model: nn.Sequential) -> int:
    """How many examples to push through model at once when evaluating many: the most, a power of
    two up to 4096, whose widest layer output (float32) stays within 16 MiB. The convnet's first
    layer outputs 100 KB an example: in passes of 4096 each pass allocated (and page-faulted) 400 MB
    and 10,000 test images took 1.6 s on a 2-core CPU, in passes of 128 0.6 s
    (benchmarks/eval_passes.py); the MLPs keep 4096. Fixed by the architecture, so that the summed
    loss has the same bits in training and in `digitnet evaluate`."""
    x = torch.zeros(1, PIXELS, device=next(model.parameters()).device)
    widest = 1
    for layer in model:
        x = layer(x)
        widest = max(widest, x.numel())
    rows = max(1, PASS_BYTES // (4 * widest))
    return min(MAX_PASS_ROWS, 1 << (rows.bit_length() - 1))


def expected_tensors(arch: dict) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of every tensor a model of this architecture stores (built on the
    meta device: shapes without memory)."""
    with torch.device("meta"):
        model = nn.Sequential(*_layers(arch))
    return {k: (tuple(v.shape), torch.float32) for k, v in model.state_dict().items()}


def save_model(model: nn.Module | dict[str, torch.Tensor], path: str | os.PathLike, arch: dict) -> None:
    """Write model.safetensors (from a model or its state dict) atomically; the architecture and a
    digest ride along in the metadata."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    tensors = {k: v.to(torch.float32) for k, v in state.items()}
    write_tensor_file(path, tensors, FORMAT, FORMAT_VERSION, {"architecture": json.dumps(arch)})


def load_model(path: str | os.PathLike, arch: dict | None = None, device: str | torch.device = "cpu") -> nn.Sequential:
    """Load a model saved by save_model, checking every tensor's name, shape and dtype.

    arch, if given (from a run's config.json), must agree with the file's own metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file; train one with `digitnet train`")
    metadata, tensors = read_tensor_file(path, FORMAT, FORMAT_VERSION, "model", "re-train or restore it")
    try:
        file_arch = json.loads(metadata["architecture"])
    except (KeyError, TypeError, ValueError, RecursionError):
        file_arch = None
    problem = "missing" if file_arch is None else architecture_problem(file_arch)
    if problem:
        raise ModelFileError(f"{path}: malformed architecture metadata ({problem})")
    expected = expected_tensors(file_arch)
    if arch is not None and arch.get("type", "mlp") != file_arch["type"]:
        raise ModelFileError(f"{path}: weights are for a {describe(file_arch)} but the config says {describe(arch)}")
    if arch is not None and file_arch["type"] == "mlp" and _layer_sizes(arch) != _layer_sizes(file_arch):
        raise ModelFileError(
            f"{path}: weights are for layers {_layer_sizes(file_arch)} but the config says {_layer_sizes(arch)}"
        )
    if set(tensors) != set(expected):
        raise ModelFileError(f"{path}: tensor names {sorted(tensors)} do not match the architecture's {sorted(expected)}")
    for name, (shape, dtype) in expected.items():
        t = tensors[name]
        if tuple(t.shape) != shape or t.dtype != dtype:
            raise ModelFileError(f"{path}: tensor {name} is {t.dtype} {tuple(t.shape)}, expected {dtype} {shape}")
        if not torch.isfinite(t).all():
            raise ModelFileError(f"{path}: tensor {name} holds NaN or infinite values")
    model = model_from_architecture(file_arch)
    model.load_state_dict(tensors)
    return model.to(device)
