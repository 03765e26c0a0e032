"""Does running the seed step's small GEMMs side by side on CUDA streams shorten it?

At batch 512 the seed network's GEMMs (512 x 784 by 784 x 256 and smaller) fill a few dozen of an
H100's 132 multiprocessors: each runs alone, one after another. Inside one step several are
independent of each other (the second layer's weight update, the first layer's bias and weight
gradients), and the batch's rows can be split into chunks whose forward and backward passes are
independent until the weight gradients are summed. This probe times, captured in a CUDA graph and
replayed as training/graphs.py replays epochs, digitnet's step with its gradients forked onto side
streams (training/streams.py) and all in order, and prototype steps that split the batch's rows over
streams or gather the next batch meanwhile (the graph keeps the forks and joins as edges, so replays
run the branches concurrently), the batch's gather included in each:

    python benchmarks/gpu_streams_probe.py   # needs a CUDA device; digitnet's step in fp32, tf32 and
                                             # bf16, the prototypes in fp32 and tf32

Each prototype is checked against FusedSGDStep (the weights after 3 steps) before it is timed.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import torch

from gpu_step_probe import REPLAYS, REPS, per_call_us  # this folder: run as python benchmarks/gpu_streams_probe.py

from digitnet.model import build_model
from digitnet.training import triton_tail
from digitnet.training.fastpath import FusedSGDStep
from digitnet.training.streams import SideStreams

N, LR = 512, 1e-3
_addmm_relu_into = torch.ops.aten._addmm_activation.out
_relu_backward_into = torch.ops.aten.threshold_backward.grad_input


@contextmanager
def forked(stream: torch.cuda.Stream):
    """Run the block on stream, after everything queued so far on the current one."""
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        yield


def join(streams) -> None:
    for stream in streams:
        torch.cuda.current_stream().wait_stream(stream)


class StreamedStep:
    """The seed step (784-256-128-10, MSE, SGD) with its rows in `chunks` chunks on side streams, the
    weight updates forked, and optionally the first layer's weight gradient summed from per-chunk
    partials (split_dw1) and the next batch gathered while this one steps (prefetch)."""

    def __init__(self, model, chunks: int, split_dw1: bool, fork_updates: bool, prefetch: bool, data, labels):
        self.w1, self.b1 = model[0].weight, model[0].bias
        self.w2, self.b2 = model[2].weight, model[2].bias
        self.w3, self.b3 = model[4].weight, model[4].bias
        self.chunks, self.split_dw1, self.fork_updates, self.prefetch = chunks, split_dw1, fork_updates, prefetch
        dev = self.w1.device
        self.streams = [torch.cuda.Stream(dev) for _ in range(max(chunks, 3) + 1)]
        self.rows = [slice(c * N // chunks, (c + 1) * N // chunks) for c in range(chunks)]
        self.h1, self.h2 = torch.empty(N, 256, device=dev), torch.empty(N, 128, device=dev)
        self.below2, self.g1, self.m1 = (torch.empty(N, 128, device=dev), torch.empty(N, 256, device=dev),
                                         torch.empty(N, 256, device=dev))
        self.parts = torch.empty(chunks, 256, 784, device=dev)
        self.ones, self.ones_c = torch.ones(N, device=dev), torch.ones(chunks, device=dev)
        self.work = triton_tail.TailWorkspace(N, 10, 128, dev)
        self.eye = torch.eye(10, device=dev)
        self.data, self.labels = data, labels
        self.xs = [torch.empty(N, 784, device=dev) for _ in range(2)]
        self.ys = [torch.empty(N, dtype=torch.long, device=dev) for _ in range(2)]
        self.turn = 0

    def gather(self, order, into: int):
        torch.index_select(self.data, 0, order, out=self.xs[into])
        torch.index_select(self.labels, 0, order, out=self.ys[into])

    @torch.no_grad()
    def __call__(self, order):
        if not self.prefetch:
            self.gather(order, 0)
            x, y = self.xs[0], self.ys[0]
        else:  # this batch was gathered during the last step; gather the next (here: the same order)
            x, y = self.xs[self.turn], self.ys[self.turn]
            self.turn ^= 1
            with forked(self.streams[-1]):
                self.gather(order, self.turn)
        self._forward(x)
        triton_tail.top_layer_step(self.h2, self.w3, self.b3, y, self.eye, False, self.below2, self.work,
                                   self.w3, self.b3, -LR, 1.0, grad_bias_below=self.b2)
        self._backward(x)
        if self.prefetch:
            join([self.streams[-1]])

    def _per_chunk(self, work):
        if self.chunks == 1:
            work(0, slice(None))
            return
        for c, rows in enumerate(self.rows):
            with forked(self.streams[c]):
                work(c, rows)
        join(self.streams[: self.chunks])

    def _forward(self, x):
        def layers(c, r):
            _addmm_relu_into(self.b1, x[r], self.w1.t(), out=self.h1[r])
            _addmm_relu_into(self.b2, self.h1[r], self.w2.t(), out=self.h2[r])
        self._per_chunk(layers)

    def _backward(self, x):
        def below(c, r):
            torch.mm(self.below2[r], self.w2, out=self.g1[r])
            _relu_backward_into(self.g1[r], self.h1[r], 0.0, grad_input=self.m1[r])
            if self.split_dw1:
                torch.mm(self.m1[r].t(), x[r], out=self.parts[c])
        self._per_chunk(below)
        updates = [
            lambda: self.w2.addmm_(self.below2.t(), self.h1, alpha=-LR),
            lambda: self.b1.addmv_(self.m1.t(), self.ones, alpha=-LR),
            (lambda: self.w1.view(-1).addmv_(self.parts.view(self.chunks, -1).t(), self.ones_c, alpha=-LR))
            if self.split_dw1 else (lambda: self.w1.addmm_(self.m1.t(), x, alpha=-LR)),
        ]
        if not self.fork_updates:
            for update in updates:
                update()
            return
        for stream, update in zip(self.streams, updates[1:]):
            with forked(stream):
                update()
        updates[0]()
        join(self.streams[:2])


VARIANTS = {  # name: (chunks, split_dw1, fork_updates, prefetch); "updates forked" alone is digitnet's step
    "updates forked + next batch gathered meanwhile": (1, False, True, True),
    "2 chunks + updates forked": (2, False, True, False),
    "4 chunks + updates forked": (4, False, True, False),
    "4 chunks + split dW1 + updates forked": (4, True, True, False),
    "4 chunks + split dW1 + updates forked + next batch gathered meanwhile": (4, True, True, True),
}


def today(data, labels, dtype=torch.float32, forked_gradients=True):
    """digitnet's FusedSGDStep and the batch's gather, as an epoch's graph runs them (bf16: the batch in
    bfloat16, as the training loop hands it over)."""
    step = FusedSGDStep(build_model(seed=0, device="cuda"), LR, dtype)
    if not forked_gradients:
        step.mlp.side = SideStreams(torch.device("cpu"), 0)
    data = data.to(dtype)
    xb, yb = torch.empty(N, 784, device="cuda", dtype=dtype), torch.empty(N, dtype=torch.long, device="cuda")

    def call(order):
        step(torch.index_select(data, 0, order, out=xb), torch.index_select(labels, 0, order, out=yb))
    return step.mlp.linears, call


def max_weight_error(reference, linears) -> float:
    return max(float((a - b.weight.detach()).abs().max()) for a, b in zip(reference, linears))


def main() -> int:
    if not torch.cuda.is_available():
        print("needs a CUDA device", file=sys.stderr)
        return 2
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}; us per step (gather included), "
          f"median of {REPLAYS} replays of {REPS} captured steps")
    data = torch.rand(60000, 784, device="cuda") * 2 - 1
    labels = torch.randint(0, 10, (60000,), device="cuda")
    order = torch.randperm(60000, device="cuda")[:N]
    rows: dict[str, dict[str, str]] = {}
    for mode, precision in (("fp32", "highest"), ("tf32", "high"), ("bf16", "highest")):
        torch.set_float32_matmul_precision(precision)
        dtype = torch.bfloat16 if mode == "bf16" else torch.float32
        for forked_gradients in (False, True):
            linears, call = today(data, labels, dtype, forked_gradients)
            for _ in range(3):
                call(order)
            reference = [layer.weight.clone() for layer in linears]
            name = "FusedSGDStep, " + ("gradients forked (digitnet's)" if forked_gradients else "all in order")
            rows.setdefault(name, {})[mode] = f"{per_call_us(lambda: call(order)):.1f}"
        if mode == "bf16":
            continue
        for name, shape in VARIANTS.items():
            try:
                model = build_model(seed=0, device="cuda")
                linears = [m for m in model if isinstance(m, torch.nn.Linear)]
                step = StreamedStep(model, *shape, data, labels)
                if shape[3]:
                    step.gather(order, 0)
                for _ in range(3):
                    step(order)
                torch.cuda.synchronize()
                error = max_weight_error(reference, linears)
                rows.setdefault(name, {})[mode] = f"{per_call_us(lambda s=step: s(order)):.1f} (err {error:.0e})"
            except Exception as exc:  # say what failed, go on with the others
                rows.setdefault(name, {})[mode] = f"failed: {type(exc).__name__}: {str(exc)[:100]}"
    print("\n| step | fp32 us | tf32 us | bf16 us |\n| --- | ---: | ---: | ---: |")
    for name, cells in rows.items():
        print(f"| {name} | {cells.get('fp32', '-')} | {cells.get('tf32', '-')} | {cells.get('bf16', '-')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
