"""A hidden layer's forward pass on the CPU: MKL's GEMM then a ReLU against oneDNN's linear with its
ReLU post-op (training/cpu_linear.py chooses between them by what this measures).

    python benchmarks/cpu_linear.py [--rounds 7]

For each layer shape (batch x inputs -> outputs) and dtype, interleaves round by round
  addmm+relu   torch.addmm(b, x, W^T, out=) then relu_(): the GEMM digitnet's steps ran before
  onednn       torch.ops.mkldnn._linear_pointwise(x, W, b, "relu"): one primitive, a new output tensor
and prints the median microseconds a call and addmm+relu / onednn (above 1: oneDNN is faster).
Both run hot, in a loop of their own: inside a training step, where the step's other data evict the
weights between calls, the difference is smaller (compare whole steps with step_breakdown.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from train_speed import hardware

SHAPES = [(128, 784, 256), (512, 784, 256), (32, 784, 256), (128, 784, 512), (128, 784, 1024), (128, 512, 256),
          (128, 784, 64), (128, 256, 128), (512, 256, 128)]


def _time(calls: dict, rounds: int, repeats: int) -> dict[str, float]:
    seconds = {name: [] for name in calls}
    for call in calls.values():  # warm-up: oneDNN creates its primitive on the first call
        for _ in range(10):
            call()
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(repeats):
                call()
            seconds[name].append((time.perf_counter() - started) / repeats)
    return {name: statistics.median(values) * 1e6 for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(hardware())
    print("| dtype | batch | layer | addmm+relu (us) | onednn (us) | addmm+relu / onednn |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    generator = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        for rows, inputs, outputs in SHAPES:
            x = torch.randn(rows, inputs, generator=generator).to(dtype)
            weight = (torch.randn(outputs, inputs, generator=generator) * 0.05).to(dtype)
            bias = torch.randn(outputs, generator=generator).to(dtype)
            out = torch.empty(rows, outputs, dtype=dtype)
            calls = {"addmm+relu": lambda: torch.addmm(bias, x, weight.t(), out=out).relu_(),
                     "onednn": lambda: torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu", [], "")}
            us = _time(calls, args.rounds, repeats=max(20, int(2e8 / (rows * inputs * outputs))))
            print(f"| {str(dtype).removeprefix('torch.')} | {rows} | {inputs} -> {outputs} | {us['addmm+relu']:.1f} | "
                  f"{us['onednn']:.1f} | {us['addmm+relu'] / us['onednn']:.2f} |")


if __name__ == "__main__":
    main()
