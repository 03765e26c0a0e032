"""Where the convnet's GPU training step spends its time, and what cuDNN's settings and the layout change.

    python benchmarks/gpu_cnn_probe.py [--steps 50]     # needs a CUDA device

Times the cnn recipe's step (batch 128, AdamW, autograd: training.optim.AutogradStep) on random data,
eagerly, in each combination of
  layout      NCHW (what digitnet trains on a GPU) or channels-last
  cuDNN       digitnet's policy (deterministic algorithms, no autotuning: a run repeats bit for bit)
              or cuDNN's defaults with autotuning (benchmark=True), as an idiomatic script might
  precision   fp32 (IEEE) or tf32
then profiles a few steps of digitnet's setting and of the fastest one and prints each one's
costliest GPU kernels: is the step bound by launches or by a kernel, and which?
"""

from __future__ import annotations

import argparse
import time

import torch

from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet.training.optim import AutogradStep

POLICIES = {"deterministic": (True, False), "defaults + benchmark": (False, True)}  # (deterministic, benchmark)


def configure(policy: str, precision: str) -> None:
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = POLICIES[policy]
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")


def make_step(channels_last: bool) -> AutogradStep:
    model = build_model(kind="cnn", seed=0, device="cuda")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return AutogradStep(model, get_recipe("cnn"), 10**6)


def ms_per_step(step: AutogradStep, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    for _ in range(5):  # first calls: cuDNN's choice of algorithms, the optimiser's state
        step(x, y)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000 / steps


def kernel_table(step: AutogradStep, x: torch.Tensor, y: torch.Tensor, rows: int = 14) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            step(x, y)
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows, max_name_column_width=70)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("needs a CUDA device")
        return 2
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(128, 784, generator=generator) * 2 - 1).cuda()
    y = torch.randint(0, 10, (128,), generator=generator).cuda()
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}; "
          f"cnn step, batch 128, eager, ms per step over {args.steps} steps\n")
    print("| layout | cuDNN | precision | ms/step |\n| --- | --- | --- | ---: |")
    timings = {}
    for channels_last in (False, True):
        for policy in POLICIES:
            for precision in ("fp32", "tf32"):
                configure(policy, precision)
                key = (channels_last, policy, precision)
                timings[key] = ms_per_step(make_step(channels_last), x, y, args.steps)
                layout = "channels-last" if channels_last else "NCHW"
                print(f"| {layout} | {policy} | {precision} | {timings[key]:.3f} |", flush=True)
    fastest = min((key for key in timings if key[2] == "fp32"), key=timings.get)
    for label, key in (("digitnet's setting (NCHW, deterministic, fp32)", (False, "deterministic", "fp32")),
                       (f"the fastest fp32 setting {fastest}", fastest)):
        configure(key[1], key[2])
        step = make_step(key[0])
        ms_per_step(step, x, y, 5)
        print(f"\n{label}, 10 steps:\n{kernel_table(step, x, y)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
