"""The cnn recipe's training step in each layout, on a fixed batch, in one process.

    python benchmarks/cnn_step.py [--rounds 3] [--steps 63]

Interleaves, round by round, --steps steps (63: one mnist-10k epoch at batch 128) of the convnet
  conv-ReLU-pool, NCHW           the textbook order and layout (digitnet before 2026-11-27)
  pool-ReLU, NCHW                pooling first: the same function, ReLU on a quarter of the values
  conv-ReLU-pool, channels-last  oneDNN's native layout, the textbook order
  pool-ReLU, channels-last       what digitnet trains on the CPU now (training/devices.fast_layout)
each in fp32 and under bf16 autocast, and prints each round's seconds.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet.training.optim import AutogradStep


def _textbook_order(model: nn.Sequential) -> nn.Sequential:
    modules = list(model)
    for pool in [i for i, m in enumerate(modules) if isinstance(m, nn.MaxPool2d)]:
        modules[pool], modules[pool + 1] = modules[pool + 1], modules[pool]
    return nn.Sequential(*modules)


def _variants() -> dict:
    recipe = get_recipe("cnn")
    variants = {}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        models = {"conv-ReLU-pool, NCHW": _textbook_order(build_model(kind="cnn", seed=0)),
                  "pool-ReLU, NCHW": build_model(kind="cnn", seed=0),
                  "conv-ReLU-pool, channels-last":
                      _textbook_order(build_model(kind="cnn", seed=0)).to(memory_format=torch.channels_last),
                  "pool-ReLU, channels-last": build_model(kind="cnn", seed=0).to(memory_format=torch.channels_last)}
        for name, model in models.items():
            variants[f"{name}, {precision}"] = AutogradStep(model, recipe, 10**6, dtype)
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=63)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(128, 784, generator=generator) * 2 - 1
    y = torch.randint(0, 10, (128,), generator=generator)
    variants = _variants()
    for step in variants.values():  # warm-up: first-call costs, oneDNN's kernel choice
        for _ in range(5):
            step(x, y)
    seconds = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                step(x, y)
            seconds[name].append(time.perf_counter() - started)
    print(f"cnn recipe, batch 128, {torch.get_num_threads()} threads; seconds per {args.steps} steps, round by round")
    for name, values in seconds.items():
        print(f"{name:36s} " + " ".join(f"{v:.3f}" for v in values))


if __name__ == "__main__":
    main()
