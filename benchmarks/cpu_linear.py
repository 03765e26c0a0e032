"""A layer's GEMMs on the CPU, MKL's against oneDNN's (src/digitnet/cpu_linear.py chooses between them by
what this measures).

    python benchmarks/cpu_linear.py [--rounds 7] [--all-gemms]

For each layer shape (batch x inputs -> outputs) and dtype, interleaves round by round
  addmm+relu   torch.addmm(b, x, W^T, out=) then relu_(): the GEMM digitnet's steps ran before
  onednn       cpu_linear.linear(x, W, b, relu=True): one primitive, a new output tensor
and prints the median microseconds a call and addmm+relu / onednn (above 1: oneDNN is faster).
With --all-gemms, instead, float32 only and more shapes: each of a layer's three GEMMs, MKL's (addmm into
a buffer; mm into a buffer for the weight gradient grad^T x and the gradient below grad W) against
cpu_linear's oneDNN forms (linear without a ReLU, weight_gradient, input_gradient). Their outputs are new
tensors; where the allocator has handed a freed one back to the system, a large one costs page faults (a
column counts them for the weight gradient, whose output is the largest), which a training step's
steady round of the same sizes did not show.
Both run hot, in a loop of their own: inside a training step, where the step's other data evict the
weights between calls, the difference is smaller (compare whole steps with step_breakdown.py).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
from train_speed import hardware

from digitnet import cpu_linear

SHAPES = [(128, 784, 256), (512, 784, 256), (32, 784, 256), (128, 784, 512), (128, 784, 1024), (128, 512, 256),
          (128, 784, 64), (128, 256, 128), (512, 256, 128)]


def _time(calls: dict, rounds: int, repeats: int, faults: dict | None = None) -> dict[str, float]:
    """Median microseconds a call of each; with faults, also the page faults a call into it."""
    seconds = {name: [] for name in calls}
    faulted = dict.fromkeys(calls, 0)
    for call in calls.values():  # warm-up: oneDNN creates its primitive on the first call
        for _ in range(10):
            call()
    for _ in range(rounds):
        for name, call in calls.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.perf_counter()
            for _ in range(repeats):
                call()
            seconds[name].append((time.perf_counter() - started) / repeats)
            faulted[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    if faults is not None:
        faults.update({name: count / (rounds * repeats) for name, count in faulted.items()})
    return {name: statistics.median(values) * 1e6 for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--all-gemms", action="store_true", help="float32: forward, weight and input gradients")
    args = parser.parse_args()
    print(hardware())
    if args.all_gemms:
        _all_gemms(args.rounds)
        return
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
                     "onednn": lambda: cpu_linear.linear(x, weight, bias, relu=True)}
            us = _time(calls, args.rounds, repeats=max(20, int(2e8 / (rows * inputs * outputs))))
            print(f"| {str(dtype).removeprefix('torch.')} | {rows} | {inputs} -> {outputs} | {us['addmm+relu']:.1f} | "
                  f"{us['onednn']:.1f} | {us['addmm+relu'] / us['onednn']:.2f} |")


ALL_GEMM_SHAPES = [(rows, inputs, outputs) for rows in (32, 64, 128, 512) for inputs, outputs in
                   ((784, 256), (256, 128), (128, 10), (784, 64), (64, 32), (128, 16), (3136, 128), (784, 1024))]


def _all_gemms(rounds: int) -> None:
    print("| batch | layer | multiply-adds | forward mkl / onednn (us) | x | weight gradient | x | gradient below | x "
          "| page faults a oneDNN weight gradient |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    generator = torch.Generator().manual_seed(0)
    for rows, inputs, outputs in ALL_GEMM_SHAPES:
        x, grad = torch.randn(rows, inputs, generator=generator), torch.randn(rows, outputs, generator=generator)
        weight = torch.randn(outputs, inputs, generator=generator) * 0.05
        bias = torch.randn(outputs, generator=generator)
        out, weight_grad, below = torch.empty(rows, outputs), torch.empty(outputs, inputs), torch.empty(rows, inputs)
        calls = {"mkl forward": lambda: torch.addmm(bias, x, weight.t(), out=out),
                 "onednn forward": lambda: cpu_linear.linear(x, weight, bias, relu=False),
                 "mkl weight": lambda: torch.mm(grad.t(), x, out=weight_grad),
                 "onednn weight": lambda: cpu_linear.weight_gradient(grad, x),
                 "mkl below": lambda: torch.mm(grad, weight, out=below),
                 "onednn below": lambda: cpu_linear.input_gradient(grad, weight)}
        faults: dict[str, float] = {}
        us = _time(calls, rounds, repeats=max(20, min(2000, int(3e7 / (rows * inputs * outputs)))), faults=faults)
        cells = []
        for kind in ("forward", "weight", "below"):
            mkl, onednn = us[f"mkl {kind}"], us[f"onednn {kind}"]
            cells += [f"{mkl:.1f} / {onednn:.1f}", f"{mkl / onednn:.2f}"]
        print(f"| {rows} | {inputs} -> {outputs} | {rows * inputs * outputs / 1e6:.1f}M | " + " | ".join(cells)
              + f" | {faults['onednn weight']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
