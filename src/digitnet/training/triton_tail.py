"""The MLP's top layer and its loss as two Triton kernels, for the written-out steps on a GPU.

On an H100 the top layer of a step (10 outputs) and the loss around it took 43 us of the seed step's
104 as eleven kernels: a float32 GEMM for the 10 logits that cuBLAS runs in 14 us, five small
kernels for the loss and its gradient, the outer products of the weight gradient, a bias sum, the
gradient flowing below and its ReLU mask. These two kernels take 9 us (benchmarks/gpu_step_probe.py,
docs/performance.md):

    partials  per block of rows: logits = h W^T + b, the loss of each row (MSE against the target
              row, or cross-entropy against it), its gradient g, the gradient below (g W) masked by
              [h > 0], and the block's share of g^T h, sum(g, 0), the loss and the column sums of
              the gradient below (the bias gradient of the layer below)
    apply     the blocks' shares summed in a fixed order: W = beta W + alpha sum, the same for b and
              for the layer below's bias, and the batch's mean loss

Both run the same way eagerly and inside a CUDA graph, so replayed epochs stay bit-identical to
eager ones; the float32 products are IEEE ("ieee") unless the run allowed TF32. With `--precision
bf16` the layer's input h arrives in bfloat16 and the gradient below leaves in bfloat16 (the hidden
layers' GEMMs run in it), while the top layer itself (logits, loss, its weight and bias gradients,
and the layer below's bias gradient) is computed in float32 from the float32 master weights. Triton comes
with PyTorch's CUDA builds; where it is missing the steps keep their PyTorch kernels.
With TRITON_INTERPRET=1 set before this module is imported, the kernels run on the CPU
(tests/test_triton_kernels.py checks them there against autograd).
"""

from __future__ import annotations

import os

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # a CPU build of PyTorch: the steps keep their PyTorch kernels
    triton = None

TRITON_ENV = "DIGITNET_TRITON"  # "0" keeps PyTorch's kernels on a GPU (this top layer, and triton_adamw.py's AdamW)
MAX_HIDDEN = 512  # a block holds 16 rows of the top layer's input in registers: wider inputs keep PyTorch's kernels
MAX_ROWS = 4096  # the apply kernel sums the blocks' bias and loss shares as one tile: larger batches
#                  keep PyTorch's kernels
APPLY_BLOCK = 512


def usable(device: torch.device, sizes: list[int]) -> bool:
    """Whether the fused top layer serves this MLP: on a GPU with Triton (float32 or bfloat16 compute),
    a hidden layer below the top one (its ReLU masks the gradient), and that layer not too wide."""
    return (triton is not None and device.type == "cuda" and len(sizes) >= 3
            and sizes[-2] <= MAX_HIDDEN and os.environ.get(TRITON_ENV, "1") != "0")


if triton is not None:

    @triton.jit
    def _partials_kernel(h_ptr, w_ptr, b_ptr, y_ptr, target_ptr, below_ptr, dw_part_ptr, db_part_ptr, loss_part_ptr,
                         db_below_part_ptr, n, hidden, classes, grad_scale,
                         CROSS_ENTROPY: tl.constexpr, PRECISION: tl.constexpr, BM: tl.constexpr, H: tl.constexpr,
                         C: tl.constexpr):
        block = tl.program_id(0)
        rows = block * BM + tl.arange(0, BM)
        cols = tl.arange(0, H)
        classes_ = tl.arange(0, C)
        row_ok, col_ok, class_ok = rows < n, cols < hidden, classes_ < classes
        h = tl.load(h_ptr + rows[:, None] * hidden + cols[None, :], mask=row_ok[:, None] & col_ok[None, :],
                    other=0.0).to(tl.float32)  # a no-op for float32 runs, bfloat16 -> float32 for bf16 ones
        w = tl.load(w_ptr + classes_[:, None] * hidden + cols[None, :], mask=class_ok[:, None] & col_ok[None, :],
                    other=0.0)
        b = tl.load(b_ptr + classes_, mask=class_ok, other=0.0)
        logits = tl.dot(h, tl.trans(w), input_precision=PRECISION) + b[None, :]
        labels = tl.load(y_ptr + rows, mask=row_ok, other=0)
        real = row_ok[:, None] & class_ok[None, :]
        target = tl.load(target_ptr + labels[:, None] * classes + classes_[None, :], mask=real, other=0.0)
        if CROSS_ENTROPY:  # -sum(target * log_softmax), gradient (softmax - target) / n
            shifted = tl.where(class_ok[None, :], logits, float("-inf"))
            shifted = shifted - tl.max(shifted, 1)[:, None]
            log_probs = shifted - tl.log(tl.sum(tl.exp(shifted), 1))[:, None]
            terms = -target * tl.where(real, log_probs, 0.0)  # no 0 * -inf in the padded classes
            grad = tl.where(real, tl.exp(log_probs) - target, 0.0) * grad_scale
        else:  # sum((out - target)^2), gradient 2 (out - target) / n
            diff = tl.where(real, logits - target, 0.0)
            terms = diff * diff
            grad = diff * grad_scale
        tl.store(loss_part_ptr + block, tl.sum(tl.sum(terms, 1), 0))
        below = tl.where(h > 0, tl.dot(grad, w, input_precision=PRECISION), 0.0)
        tl.store(below_ptr + rows[:, None] * hidden + cols[None, :], below.to(below_ptr.dtype.element_ty),
                 mask=row_ok[:, None] & col_ok[None, :])
        tl.store(db_below_part_ptr + block * hidden + cols, tl.sum(below, 0), mask=col_ok)  # rows past n hold 0
        dw = tl.dot(tl.trans(grad), h, input_precision=PRECISION)
        tl.store(dw_part_ptr + block * classes * hidden + classes_[:, None] * hidden + cols[None, :], dw,
                 mask=class_ok[:, None] & col_ok[None, :])
        tl.store(db_part_ptr + block * classes + classes_, tl.sum(grad, 0), mask=class_ok)

    @triton.jit
    def _store_scaled(out_ptr, offsets, inside, total, alpha, beta, ACCUMULATE: tl.constexpr):
        """out = beta out + alpha total (ACCUMULATE), or alpha total."""
        if ACCUMULATE:
            total = beta * tl.load(out_ptr + offsets, mask=inside, other=0.0) + alpha * total
        else:
            total = alpha * total
        tl.store(out_ptr + offsets, total, mask=inside)

    @triton.jit
    def _sum_parts_into(part_ptr, stride, offsets, inside, out_ptr, alpha, beta, ACCUMULATE: tl.constexpr,
                        PARTS: tl.constexpr, N: tl.constexpr):
        """The blocks' shares (PARTS of them, stride apart) summed in block order, into out as _store_scaled."""
        total = tl.zeros([N], dtype=tl.float32)
        for part in range(PARTS):  # the number of blocks: a constant of each batch size's compiled kernel
            total += tl.load(part_ptr + part * stride + offsets, mask=inside, other=0.0)
        _store_scaled(out_ptr, offsets, inside, total, alpha, beta, ACCUMULATE)

    @triton.jit
    def _apply_kernel(dw_part_ptr, db_part_ptr, loss_part_ptr, db_below_part_ptr, w_ptr, b_ptr, loss_ptr, b_below_ptr,
                      size, classes, hidden, inv_n, alpha, beta,
                      ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr, C: tl.constexpr, PARTS: tl.constexpr,
                      P: tl.constexpr, BELOW_BIAS: tl.constexpr, H: tl.constexpr):
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        _sum_parts_into(dw_part_ptr, size, offsets, offsets < size, w_ptr, alpha, beta, ACCUMULATE, PARTS, BLOCK)
        if tl.program_id(0) == 0:  # the bias and the loss: the blocks' shares summed as one tile each
            blocks = tl.arange(0, P)
            classes_ = tl.arange(0, C)
            block_ok, class_ok = blocks < PARTS, classes_ < classes  # P: PARTS rounded up to a power of two
            bias = tl.sum(tl.load(db_part_ptr + blocks[:, None] * classes + classes_[None, :],
                                  mask=block_ok[:, None] & class_ok[None, :], other=0.0), 0)
            _store_scaled(b_ptr, classes_, class_ok, bias, alpha, beta, ACCUMULATE)
            tl.store(loss_ptr, tl.sum(tl.load(loss_part_ptr + blocks, mask=block_ok, other=0.0), 0) * inv_n)
        if BELOW_BIAS and tl.program_id(0) == tl.num_programs(0) - 1:  # the layer below's bias, in block order
            cols = tl.arange(0, H)
            _sum_parts_into(db_below_part_ptr, hidden, cols, cols < hidden, b_below_ptr, alpha, beta, ACCUMULATE,
                            PARTS, H)


class TailWorkspace:
    """The blocks' partial sums for one batch size, allocated once, and the launch's shape (fixed, never
    autotuned: the block size sets the order of the sums, which must not change between runs)."""

    def __init__(self, n: int, classes: int, hidden: int, device, block_rows: int | None = None, warps: int = 4):
        self.block_rows = block_rows or 16  # 16 rows, 4 warps: the fastest of 16/32/64 x 2/4/8 on an H100
        self.warps = warps
        self.blocks = -(-n // self.block_rows)
        self.dw = torch.empty(self.blocks, classes, hidden, device=device)
        self.db = torch.empty(self.blocks, classes, device=device)
        self.losses = torch.empty(self.blocks, device=device)
        self.db_below = torch.empty(self.blocks, hidden, device=device)
        self.loss = torch.empty((), device=device)


def top_layer_step(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor,
                   targets: torch.Tensor, cross_entropy: bool, below: torch.Tensor, work: TailWorkspace,
                   grad_weight: torch.Tensor, grad_bias: torch.Tensor, alpha: float, beta: float,
                   loss_out: torch.Tensor | None = None, grad_bias_below: torch.Tensor | None = None) -> torch.Tensor:
    """The top layer's forward pass, the loss, and its backward pass, for a batch whose top-layer input
    is h (n, hidden; a ReLU's output). Writes the gradient at h's pre-activation into below, sets
    grad_weight = beta grad_weight + alpha dL/dW (beta=0 overwrites; the same for the bias, and for
    grad_bias_below with the bias gradient of the layer below, sum(below, 0), where given) and returns
    the batch's mean loss (0-d, on the device; written into loss_out where given). targets[c] is the
    target row of label c."""
    n, hidden = h.shape
    classes = weight.shape[0]
    padded_classes = max(16, triton.next_power_of_2(classes))
    precision = "ieee" if torch.get_float32_matmul_precision() == "highest" else "tf32"
    grad_scale = 1.0 / n if cross_entropy else 2.0 / n
    padded_hidden = max(16, triton.next_power_of_2(hidden))
    _partials_kernel[(work.blocks,)](
        h, weight, bias, labels, targets, below, work.dw, work.db, work.losses, work.db_below, n, hidden, classes,
        grad_scale, CROSS_ENTROPY=cross_entropy, PRECISION=precision, BM=work.block_rows, H=padded_hidden,
        C=padded_classes, num_warps=work.warps)
    size = classes * hidden
    loss = work.loss if loss_out is None else loss_out
    _apply_kernel[(triton.cdiv(size, APPLY_BLOCK),)](
        work.dw, work.db, work.losses, work.db_below, grad_weight, grad_bias, loss,
        grad_bias if grad_bias_below is None else grad_bias_below, size, classes, hidden, 1.0 / n, alpha, beta,
        ACCUMULATE=beta != 0, BLOCK=APPLY_BLOCK, C=padded_classes, PARTS=work.blocks,
        P=max(2, triton.next_power_of_2(work.blocks)), BELOW_BIAS=grad_bias_below is not None, H=padded_hidden)
    return loss
