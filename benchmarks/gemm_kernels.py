"""Triton GEMMs for the first layer with the batch's gather fused in, measured by gpu_step_probe.py
against cuBLAS (candidates for the training step, not used by it)."""

import triton
import triton.language as tl


@triton.jit
def gather_linear_relu(x_ptr, order_ptr, w_ptr, b_ptr, out_ptr, n, outputs, inputs: tl.constexpr,
                       PRECISION: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """out = relu(x[order] W^T + b) for a block of rows and outputs."""
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    cols = tl.program_id(1) * BN + tl.arange(0, BN)
    depth = tl.arange(0, BK)
    row_ok, col_ok = rows < n, cols < outputs
    sources = tl.load(order_ptr + rows, mask=row_ok, other=0)
    total = tl.zeros([BM, BN], dtype=tl.float32)
    for k in range(0, inputs, BK):
        k_ok = (k + depth) < inputs
        a = tl.load(x_ptr + sources[:, None] * inputs + (k + depth)[None, :], mask=row_ok[:, None] & k_ok[None, :],
                    other=0.0)
        b = tl.load(w_ptr + cols[None, :] * inputs + (k + depth)[:, None], mask=k_ok[:, None] & col_ok[None, :],
                    other=0.0)
        total += tl.dot(a, b, input_precision=PRECISION)
    total = tl.maximum(total + tl.load(b_ptr + cols, mask=col_ok, other=0.0)[None, :], 0.0)
    tl.store(out_ptr + rows[:, None] * outputs + cols[None, :], total, mask=row_ok[:, None] & col_ok[None, :])


@triton.jit
def weight_gradient_gathered(g_ptr, x_ptr, order_ptr, w_ptr, n: tl.constexpr, outputs, inputs, alpha,
                             PRECISION: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """W += alpha g^T x[order] for a block of W, summing over the batch."""
    outs = tl.program_id(0) * BM + tl.arange(0, BM)
    ins = tl.program_id(1) * BN + tl.arange(0, BN)
    depth = tl.arange(0, BK)
    out_ok, in_ok = outs < outputs, ins < inputs
    total = tl.zeros([BM, BN], dtype=tl.float32)
    for k in range(0, n, BK):
        k_ok = (k + depth) < n
        sources = tl.load(order_ptr + k + depth, mask=k_ok, other=0)
        a = tl.load(g_ptr + (k + depth)[None, :] * outputs + outs[:, None], mask=out_ok[:, None] & k_ok[None, :],
                    other=0.0)
        b = tl.load(x_ptr + sources[:, None] * inputs + ins[None, :], mask=k_ok[:, None] & in_ok[None, :], other=0.0)
        total += tl.dot(a, b, input_precision=PRECISION)
    where = w_ptr + outs[:, None] * inputs + ins[None, :]
    mask = out_ok[:, None] & in_ok[None, :]
    tl.store(where, tl.load(where, mask=mask, other=0.0) + alpha * total, mask=mask)
