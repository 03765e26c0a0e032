"""Where a GPU training step's time goes, kernel by kernel, and what the alternatives cost.

Times, on random data, each piece of the seed recipe's step (batch 512: 784-256-128-10) and of
best's (batch 128), and candidate replacements for the costly ones, each captured 20 times into a
CUDA graph and replayed (median of 15 replays, CUDA events), in fp32 and TF32:

    python benchmarks/gpu_step_probe.py                # needs a CUDA device
    python benchmarks/gpu_step_probe.py --steps-only   # the whole steps alone
    python benchmarks/gpu_step_probe.py --sweep        # + the Triton top layer's block shapes and Triton
                                                       #   GEMMs for the first layer (minutes of compiling)
    python benchmarks/gpu_step_probe.py --blas         # the GEMMs and whole steps under cuBLAS and under
                                                       #   cuBLASLt (torch's preferred_blas_library)

A whole step's time over the sum of its pieces shows what fusing could gain; "empty kernel" is the
floor any kernel pays inside a graph.
"""

from __future__ import annotations

import statistics
import sys

import torch

REPS, REPLAYS = 20, 15


def per_call_us(fn) -> float:
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(REPS):
            fn()
    times = []
    for _ in range(REPLAYS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1000 / REPS)
    return statistics.median(times)


def pieces(n: int, dev: str = "cuda") -> dict:
    """The seed step's kernels at batch n, and alternatives, as zero-argument callables."""
    x = torch.rand(n, 784, device=dev) * 2 - 1
    w1, b1 = torch.randn(256, 784, device=dev) * 0.05, torch.randn(256, device=dev) * 0.05
    w2, b2 = torch.randn(128, 256, device=dev) * 0.05, torch.randn(128, device=dev) * 0.05
    w3, b3 = torch.randn(10, 128, device=dev) * 0.1, torch.randn(10, device=dev) * 0.1
    h1, h2, out = torch.empty(n, 256, device=dev), torch.empty(n, 128, device=dev), torch.empty(n, 10, device=dev)
    g1, g2, g3 = torch.randn(n, 256, device=dev), torch.randn(n, 128, device=dev), torch.randn(n, 10, device=dev)
    grad_w1, grad_w1_t = torch.empty(256, 784, device=dev), torch.empty(784, 256, device=dev)
    bias_grad, ones = torch.empty(256, device=dev), torch.ones(n, device=dev)
    outer3 = torch.empty(n, 10, 128, device=dev)
    g3_padded, w3_padded = torch.zeros(n, 16, device=dev), torch.zeros(16, 128, device=dev)
    b3_padded, out_padded = torch.zeros(16, device=dev), torch.empty(n, 16, device=dev)
    g3_padded[:, :10] = g3
    w3_padded[:10] = w3
    y = torch.randint(0, 10, (n,), device=dev)
    eye, target = torch.eye(10, device=dev), torch.empty(n, 10, device=dev)
    data, order, xbuf = torch.rand(60000, 784, device=dev), torch.randperm(60000, device=dev)[:n], torch.empty(n, 784, device=dev)
    tiny = torch.zeros(1, device=dev)
    lr = 1e-3

    from digitnet.training import triton_tail

    below, masked = torch.empty(n, 128, device=dev), torch.empty(n, 128, device=dev)
    work = triton_tail.TailWorkspace(n, 10, 128, dev)

    def top_layer_in_pytorch():  # what the Triton top layer replaces, in the GPU forms
        torch.addmm(b3, h2, w3.t(), out=out)
        torch.index_select(eye, 0, y, out=target)
        diff = torch.sub(out, target, out=target)
        loss = torch.dot(diff.view(-1), diff.view(-1)) / n
        diff.mul_(2.0 / n)
        torch.ops.aten.threshold_backward.grad_input(torch.mm(diff, w3, out=below), h2, 0.0, grad_input=masked)
        w3.view(-1).addmv_(torch.mul(diff[:, :, None], h2[:, None, :], out=outer3).view(n, -1).t(), ones, alpha=-lr)
        b3.addmv_(diff.t(), ones, alpha=-lr)
        return loss

    def top_layer_in_triton():
        return triton_tail.top_layer_step(h2, w3, b3, y, eye, False, masked, work, w3, b3, -lr, 1.0)

    def loss_part():
        torch.index_select(eye, 0, y, out=target)
        diff = target.neg_().add_(out)
        loss = torch.dot(diff.view(-1), diff.view(-1)) / n
        diff.mul_(2.0 / n)
        return loss

    return {
        "empty kernel (1-element add)": lambda: tiny.add_(1),
        "gather the batch (index_select)": lambda: torch.index_select(data, 0, order, out=xbuf),
        "fwd1 addmm": lambda: torch.addmm(b1, x, w1.t(), out=h1),
        "fwd1 addmm + relu_": lambda: torch.addmm(b1, x, w1.t(), out=h1).relu_(),
        "fwd1 _addmm_activation (relu epilogue)": lambda: torch._addmm_activation(b1, x, w1.t()),
        "fwd2 addmm + relu_": lambda: torch.addmm(b2, h1, w2.t(), out=h2).relu_(),
        "fwd2 _addmm_activation": lambda: torch._addmm_activation(b2, h1, w2.t()),
        "fwd3 addmm": lambda: torch.addmm(b3, h2, w3.t(), out=out),
        "loss and its gradient (6 kernels)": loss_part,
        "dX3 mm(g3, W3)": lambda: torch.mm(g3, w3),
        "dX2 mm(g2, W2)": lambda: torch.mm(g2, w2),
        "relu backward (threshold_backward)": lambda: torch.ops.aten.threshold_backward(g2, h2, 0.0),
        "dW3 addmm_ (grad + update)": lambda: w3.addmm_(g3.t(), h2, alpha=-lr),
        "dW2 addmm_ (grad + update)": lambda: w2.addmm_(g2.t(), h1, alpha=-lr),
        "dW1 addmm_ (grad + update), today": lambda: w1.addmm_(g1.t(), x, alpha=-lr),
        "dW1 mm(g.t(), x) only": lambda: torch.mm(g1.t(), x, out=grad_w1),
        "dW1 mm(x.t(), g) only (transposed result)": lambda: torch.mm(x.t(), g1, out=grad_w1_t),
        "bias grad sum(g1, 0)": lambda: torch.sum(g1, 0, out=bias_grad),
        "bias grad mv(g1.t(), ones)": lambda: torch.mv(g1.t(), ones, out=bias_grad),
        "bias update sub_": lambda: b1.sub_(bias_grad, alpha=lr),
        "bias grad and update in one addmv_ (GPU form)": lambda: b1.addmv_(g1.t(), ones, alpha=-lr),
        "dW3 outer products + addmv_ (GPU form)": lambda: w3.view(-1).addmv_(
            torch.mul(g3[:, :, None], h2[:, None, :], out=outer3).view(n, -1).t(), ones, alpha=-lr),
        "dW3 padded to 16 rows, addmm_": lambda: w3_padded.addmm_(g3_padded.t(), h2, alpha=-lr),
        "fwd3 padded to 16 outputs, addmm": lambda: torch.addmm(b3_padded, h2, w3_padded.t(), out=out_padded),
        "top layer + MSE loss, fwd and bwd, PyTorch GPU forms (11 kernels)": top_layer_in_pytorch,
        "**top layer + MSE loss, fwd and bwd, Triton (2 kernels)**": top_layer_in_triton,
        **{f"top layer in Triton, {rows}-row blocks, {warps} warps":
           _tail_variant(h2, w3, b3, y, eye, masked, rows, warps)
           for rows in (16, 32, 64) for warps in (2, 4, 8) if n == 512 and "--sweep" in sys.argv[1:]},
    }


def _tail_variant(h2, w3, b3, y, eye, masked, rows, warps):
    from digitnet.training import triton_tail

    work = triton_tail.TailWorkspace(len(h2), 10, h2.shape[1], h2.device, block_rows=rows, warps=warps)
    return lambda: triton_tail.top_layer_step(h2, w3, b3, y, eye, False, masked, work, w3, b3, -1e-3, 1.0)


GEMM_TILES = [(32, 32, 32, 2), (32, 64, 32, 4), (64, 32, 32, 4), (64, 64, 32, 4), (64, 64, 16, 4), (128, 64, 32, 8),
              (64, 128, 32, 8)]  # (rows, columns, depth, warps) of a Triton GEMM's block


def triton_gemms(n: int, dev: str = "cuda") -> dict:
    """The first layer's two GEMMs (the step's largest) written in Triton with the batch's gather fused
    in, at several block shapes: does a kernel shaped for these sizes beat cuBLAS (fwd1 16 us, dW1
    12.5 us in float32 on an H100)? Each is checked against PyTorch before it is timed."""
    import triton

    from gemm_kernels import gather_linear_relu, weight_gradient_gathered

    data, order = torch.rand(60000, 784, device=dev) * 2 - 1, torch.randperm(60000, device=dev)[:n]
    w1, b1 = torch.randn(256, 784, device=dev) * 0.05, torch.randn(256, device=dev) * 0.05
    g1, h1 = torch.randn(n, 256, device=dev), torch.empty(n, 256, device=dev)
    precision = "ieee" if torch.get_float32_matmul_precision() == "highest" else "tf32"
    x = data[order]
    expected_h1 = torch.relu(torch.addmm(b1, x, w1.t()))
    expected_w1 = w1 - 1e-3 * (g1.t() @ x)
    rows = {}
    for bm, bn, bk, warps in GEMM_TILES:
        def forward(bm=bm, bn=bn, bk=bk, warps=warps):
            gather_linear_relu[(triton.cdiv(n, bm), triton.cdiv(256, bn))](
                data, order, w1, b1, h1, n, 256, 784, PRECISION=precision, BM=bm, BN=bn, BK=bk, num_warps=warps)

        w = w1.clone()

        def backward(bm=bm, bn=bn, bk=bk, warps=warps, w=w):
            weight_gradient_gathered[(triton.cdiv(256, bm), triton.cdiv(784, bn))](
                g1, data, order, w, n, 256, 784, -1e-3, PRECISION=precision, BM=bm, BN=bn, BK=bk, num_warps=warps)

        forward()
        backward()
        tolerance = 1e-4 if precision == "ieee" else 2e-2
        forward_error = float((h1 - expected_h1).abs().max())
        backward_error = float((w - expected_w1).abs().max())
        shape = f"{bm}x{bn}x{bk}, {warps} warps"
        rows[f"Triton gather + fwd1 + bias + ReLU, {shape} (max error {forward_error:.1e})"] = (
            forward if forward_error < tolerance else None)
        rows[f"Triton dW1 from the gathered batch + update, {shape} (max error {backward_error:.1e})"] = (
            backward if backward_error < tolerance * 10 else None)
    return rows


def whole_steps(dev: str = "cuda") -> dict:
    from digitnet.model import build_model
    from digitnet.recipes import get_recipe
    from digitnet.training.backprop import BackpropStep
    from digitnet.training.fastpath import FusedSGDStep

    steps = {}
    variants = {"plain GEMMs and sums": (dict(gpu_forms=False, fused_tail=False), False, False),
                "GPU forms (2026-11-27)": (dict(gpu_forms=True, fused_tail=False), False, False),
                "GPU forms + ReLU epilogue": (dict(gpu_forms=True, fused_tail=False), True, False),
                "GPU forms + ReLU epilogue + Triton top layer": (dict(gpu_forms=True, fused_tail=True), True, False),
                "GPU forms + ReLU epilogue + Triton top layer + Triton AdamW (today's default)":
                    (dict(gpu_forms=True, fused_tail=True), True, True)}
    for n, name in ((512, "seed"), (128, "best")):
        x = torch.rand(n, 784, device=dev) * 2 - 1
        y = torch.randint(0, 10, (n,), device=dev)
        for label, (forms, epilogue, triton_adamw) in variants.items():
            if name == "seed":
                if triton_adamw:  # the seed recipe has no AdamW: the same as the row before
                    continue
                step = FusedSGDStep(build_model(seed=0, device=dev), 0.001, **forms)
                step.mlp.relu_epilogue = epilogue
                steps[f"whole {name} step (FusedSGDStep, {label})"] = lambda s=step, x=x, y=y: s(x, y)
                continue
            step = BackpropStep(build_model(seed=0, device=dev), get_recipe("best"), 10**5, **forms)
            step.mlp.relu_epilogue = epilogue
            step.schedule_on_device(10**5, triton_adamw=triton_adamw)
            step(x, y)  # the optimiser's state, outside the capture
            for group in step.optimizer.param_groups:
                group["capturable"] = True
            steps[f"whole {name} step (BackpropStep + AdamW, {label})"] = lambda s=step, x=x, y=y: s(x, y)
            if label.startswith("GPU forms + ReLU epilogue + Triton top layer"):
                kind = "Triton AdamW" if triton_adamw else "torch's fused AdamW"
                steps[f"best's {kind} update alone, schedule on the device"] = lambda s=step: s._update()
    return steps


GEMM_PIECES = ("fwd1 addmm", "fwd2 addmm + relu_", "fwd3 addmm", "dX2 mm(g2, W2)", "dW2 addmm_ (grad + update)",
               "dW1 addmm_ (grad + update), today", "dW1 mm(g.t(), x) only", "bias grad and update in one addmv_ (GPU form)")


def under_each_library(selected: dict) -> dict:
    """Each callable twice: with cuBLAS and with cuBLASLt preferred. cuBLASLt's heuristics may pick
    other tiles (split-K among them) for these small shapes; the choice holds for a captured graph."""
    rows = {}
    for library in ("cublas", "cublaslt"):
        def under(fn, library=library):
            def call():
                before = torch.backends.cuda.preferred_blas_library()
                torch.backends.cuda.preferred_blas_library(library)
                try:
                    return fn()
                finally:
                    torch.backends.cuda.preferred_blas_library(before)
            return call
        rows.update({f"{name} [{library}]": under(fn) for name, fn in selected.items()})
    return rows


def blas_rows(batch: int) -> dict:
    chosen = {name: fn for name, fn in pieces(batch).items() if name in GEMM_PIECES}
    if batch == 512:
        chosen.update({name: fn for name, fn in whole_steps().items() if "today's default" in name or
                       name.endswith("Triton top layer)") and "seed" in name})
    return under_each_library(chosen)


def main() -> int:
    steps_only = "--steps-only" in sys.argv[1:]  # the whole steps alone: a quick check after a change
    blas_only = "--blas" in sys.argv[1:]
    if not torch.cuda.is_available():
        print("needs a CUDA device", file=sys.stderr)
        return 2
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}; us per call, median of {REPLAYS} "
          f"replays of {REPS} captured calls")
    rows: dict[str, dict[str, float | str]] = {}
    for mode, precision in (("fp32", "highest"), ("tf32", "high")):
        torch.set_float32_matmul_precision(precision)
        for batch in (512, 128):
            if blas_only:
                selected = blas_rows(batch)
            elif steps_only:
                selected = whole_steps() if batch == 512 else {}
            else:
                gemms = triton_gemms(batch) if "--sweep" in sys.argv[1:] else {}
                selected = {**pieces(batch), **({**whole_steps(), **gemms} if batch == 512 else {})}
            for name, fn in selected.items():
                key = f"{name} [batch {batch}]" if not name.startswith("whole") else name
                try:
                    if fn is None:
                        raise ValueError("wrong result, not timed")
                    rows.setdefault(key, {})[mode] = per_call_us(fn)
                except Exception as exc:  # a variant this torch does not support: say so, go on
                    rows.setdefault(key, {})[mode] = f"failed: {type(exc).__name__}: {str(exc)[:80]}"
    print("\n| piece | fp32 us | tf32 us |\n| --- | ---: | ---: |")
    for key, times in rows.items():
        cells = [f"{t:.1f}" if isinstance(t, float) else t for t in (times.get("fp32", "-"), times.get("tf32", "-"))]
        print(f"| {key} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
