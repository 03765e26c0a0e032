"""Where the convnet's GPU training step spends its time, and what cuDNN's settings and the layout change.

    python benchmarks/gpu_cnn_probe.py [--steps 50]     # needs a CUDA device
    python benchmarks/gpu_cnn_probe.py --replayed        # the steps as digitnet replays them

--replayed: each candidate step (autograd, as the convnet trained on a GPU before the written-out
ConvNetStep; ConvNetStep with Triton's or PyTorch's pooling, with or without the Triton top layer)
captured in a CUDA graph as training/graphs.py captures it and replayed, microseconds a step in fp32
and tf32 under digitnet's cuDNN policy (and ConvNetStep under cuDNN's autotuning among its
deterministic algorithms); the profiler's costliest kernels of the replayed autograd and written-out
steps; and the dense layer's weight gradient in each form cuBLAS could be asked for it.
"""

from __future__ import annotations

import argparse
import time

import torch

from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet.training.convnet import ConvNetStep
from digitnet.training.graphs import _capturable, loss_slots
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


def kernel_table(step, x: torch.Tensor, y: torch.Tensor, rows: int = 14) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            step(x, y)
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows, max_name_column_width=70)


CANDIDATES = {  # name -> step factory over a fresh convnet on the GPU
    "autograd (before)": lambda model: AutogradStep(model, get_recipe("cnn"), 10**6),
    "written out": lambda model: ConvNetStep(model, get_recipe("cnn"), 10**6),
    "written out, PyTorch's pooling": lambda model: ConvNetStep(model, get_recipe("cnn"), 10**6, triton_pool=False),
    "written out, PyTorch's top layer": lambda model: ConvNetStep(model, get_recipe("cnn"), 10**6, fused_tail=False),
}


class ReplayedStep:
    """A step captured in a CUDA graph as graphs.EpochGraph captures an epoch's steps (schedule and
    AdamW on the device, gradients kept in place), after a few eager steps."""

    def __init__(self, step, x: torch.Tensor, y: torch.Tensor):
        step.schedule_on_device(10**6)
        step.keep_gradients = True
        for _ in range(3):
            step(x, y)
        self.loss = loss_slots(1, x.device)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with _capturable(step.optimizer), torch.cuda.graph(self.graph):
            step(x, y, loss_out=self.loss[0])

    def __call__(self, x=None, y=None) -> None:
        self.graph.replay()


def us_per_replay(replayed, steps: int) -> float:
    """Microseconds a call of replayed() (a ReplayedStep, or a graph's replay) over steps calls."""
    for _ in range(10):
        replayed()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        replayed()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1000 / steps


def dense_gradient_forms(steps: int) -> None:
    """The dense layer's weight gradient (128 x 3136 from a batch of 128), in the forms cuBLAS could be
    asked for it, each replayed from a graph of 20 calls: us a call."""
    generator = torch.Generator().manual_seed(0)
    grad, below = (torch.randn(128, size, generator=generator).cuda() for size in (128, 3136))
    weight = torch.empty(128, 3136, device="cuda")
    forms = {"addmm_(g^T, h, beta=0) (BackpropStep's)": lambda: weight.addmm_(grad.t(), below, beta=0.0),
             "mm(g^T, h, out=w)": lambda: torch.mm(grad.t(), below, out=weight),
             "mm(contiguous g^T, h, out=w)": lambda: torch.mm(grad.t().contiguous(), below, out=weight),
             "mm(h^T, g, out=w^T)": lambda: torch.mm(below.t(), grad, out=weight.t())}
    print("\n| dense weight gradient, fp32 | us a call |\n| --- | ---: |")
    for name, form in forms.items():
        form()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(20):
                form()
        print(f"| {name} | {us_per_replay(graph.replay, steps) / 20:.1f} |", flush=True)


def compare_replayed(x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    print("| step, replayed from a CUDA graph | cuDNN | fp32 us/step | tf32 us/step |\n| --- | --- | ---: | ---: |")
    settings = [(name, "deterministic") for name in CANDIDATES] + [("written out", "deterministic + benchmark")]
    for name, policy in settings:
        row = []
        for precision in ("fp32", "tf32"):
            configure("deterministic", precision)
            torch.backends.cudnn.benchmark = policy.endswith("benchmark")
            row.append(us_per_replay(ReplayedStep(CANDIDATES[name](build_model(kind="cnn", seed=0, device="cuda")), x, y),
                                     steps))
        print(f"| {name} | {policy} | {row[0]:.1f} | {row[1]:.1f} |", flush=True)
    configure("deterministic", "fp32")
    for name in ("autograd (before)", "written out"):
        replayed = ReplayedStep(CANDIDATES[name](build_model(kind="cnn", seed=0, device="cuda")), x, y)
        us_per_replay(replayed, 5)
        print(f"\n{name}, fp32, 10 replays:\n{kernel_table(replayed, x, y, rows=30)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--replayed", action="store_true", help="compare the candidate steps replayed from graphs")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("needs a CUDA device")
        return 2
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(128, 784, generator=generator) * 2 - 1).cuda()
    y = torch.randint(0, 10, (128,), generator=generator).cuda()
    if args.replayed:
        print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}; "
              f"cnn step, batch 128, us per replayed step over {args.steps * 4} replays\n")
        compare_replayed(x, y, args.steps * 4)
        configure("deterministic", "fp32")
        dense_gradient_forms(args.steps)
        return 0
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
