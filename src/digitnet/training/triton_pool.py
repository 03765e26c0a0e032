"""The convnet's 2x2 max-pool, conv bias and ReLU, forward and backward, as one Triton kernel each.

On an H100 the convnet's step spent 54 us a step in PyTorch's max-pool backward and 71 us in seven
`sum` kernels, the largest two the conv biases' gradients over the full-size feature maps
(benchmarks/gpu_cnn_probe.py, docs/performance.md), besides a pool, a bias add and a ReLU forward
and a ReLU mask backward per block. The bias is per channel, so it can be added after the pooling:
fl(max(c) + b) = max(fl(c + b)), rounding being monotonic, so the forward values are the module's
bit for bit, on a quarter of the values. Here, per conv block:

    forward   r = relu(maxpool(a) + b) over a conv's NCHW output a, and which of the four values
              of each window was the largest (a byte, the first on ties, as PyTorch's pooling)
    backward  g = the gradient at r where r > 0, written at that position of each window (zero at
              the other three): the gradient at a; and each block's share of the bias gradient
              sum(g), summed by channel in a fixed order afterwards; for the first block, whose
              gradient goes no further, the first conv's weight gradient instead of the gradient
              at a (first_backward: nine products a window of a one-channel image)

Each program handles one channel of a few whole images, so both directions read and write every
value once, and the same way eagerly and in a CUDA graph (bit-identical replays). `TorchPool` is the
same computation in PyTorch's kernels, for a device without Triton and as the tests' reference.
"""

from __future__ import annotations

import os

import torch

from digitnet.training.triton_tail import TRITON_ENV

try:
    import triton
    import triton.language as tl
except ImportError:  # PyTorch's CPU builds: TorchPool
    triton = None

BLOCK = 1024  # values of one channel per program: as many whole images as fit


def triton_serves(device: torch.device) -> bool:
    return triton is not None and device.type == "cuda" and os.environ.get(TRITON_ENV, "1") != "0"


class TorchPool:
    """PyTorch's kernels: max_pool2d with indices, the bias and ReLU; backward the ReLU mask, the bias
    sum and the pooling's scatter."""

    def forward(self, a: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        pooled, indices = torch.ops.aten.max_pool2d_with_indices(a, [2, 2], [2, 2])
        return torch.relu_(pooled.add_(bias.view(1, -1, 1, 1))), (a, indices)

    def backward(self, grad: torch.Tensor, out: torch.Tensor, saved: tuple, bias_grad: torch.Tensor) -> torch.Tensor:
        a, indices = saved
        grad = torch.ops.aten.threshold_backward(grad, out, 0.0)
        torch.sum(grad, (0, 2, 3), dtype=torch.float32, out=bias_grad)
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, a, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)

    def first_backward(self, grad: torch.Tensor, out: torch.Tensor, saved: tuple, bias_grad: torch.Tensor,
                       image: torch.Tensor, weight: torch.Tensor, weight_grad: torch.Tensor) -> None:
        """backward() for the first block, whose gradient stops there: only its conv's weight and bias
        gradients (a 3x3 'same' convolution of the one-channel image)."""
        grad_a = self.backward(grad, out, saved, bias_grad)
        weight_grad.copy_(torch.ops.aten.convolution_backward(grad_a, image, weight, None, [1, 1], [1, 1], [1, 1], False,
                                                              [0, 0], 1, [False, True, False])[1])


class TritonPool:
    """The two Triton kernels below; contiguous float32 or bfloat16 NCHW maps of even sides (bfloat16:
    the bias added, the gradients summed and the weight gradient computed in float32)."""

    def __init__(self):
        self._partials: dict[tuple, torch.Tensor] = {}

    @staticmethod
    def _grid(shape: torch.Size) -> tuple[tuple[int, int], int]:
        n, channels, height, width = shape
        samples = max(1, BLOCK // (height * width // 4))  # whole images of one channel per program
        return (channels, triton.cdiv(n, samples)), samples

    def forward(self, a: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, channels, height, width = a.shape
        if not a.is_contiguous() or height % 2 or width % 2 or a.dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"TritonPool needs contiguous float32 or bfloat16 NCHW maps of even sides, not "
                             f"{tuple(a.shape)} {a.dtype}")
        out = a.new_empty(n, channels, height // 2, width // 2)
        code = torch.empty(out.shape, dtype=torch.int8, device=a.device)
        grid, samples = self._grid(a.shape)
        _pool_forward_kernel[grid](a, bias, out, code, n, C=channels, HO=height // 2, WO=width // 2, SAMPLES=samples,
                                   BLOCK=_block(samples, out.shape))
        return out, code

    def backward(self, grad: torch.Tensor, out: torch.Tensor, code: torch.Tensor,
                 bias_grad: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = out.shape
        grad_a = grad.new_empty(n, channels, 2 * height, 2 * width)
        self._backward(grad, out, code, bias_grad, grad_a, None, None)
        return grad_a

    def first_backward(self, grad: torch.Tensor, out: torch.Tensor, code: torch.Tensor, bias_grad: torch.Tensor,
                       image: torch.Tensor, weight: torch.Tensor, weight_grad: torch.Tensor) -> None:
        """The first block's backward: its gradient goes no further, so instead of writing the gradient
        at the conv's output, each window's gradient is multiplied by the nine image values its
        position saw (3x3 'same' convolution of a one-channel image): the conv's weight gradient, in
        the same kernel. On an H100 cuDNN's deterministic weight gradient for this conv ran FFTs."""
        if image.shape[1] != 1 or weight.shape[2:] != (3, 3):
            raise ValueError(f"first_backward needs a one-channel image and 3x3 kernels, not {tuple(weight.shape)}")
        self._backward(grad, out, code, bias_grad, None, image.contiguous(), weight_grad)

    def _backward(self, grad, out, code, bias_grad, grad_a, image, weight_grad) -> None:
        n, channels, height, width = out.shape
        grid, samples = self._grid((n, channels, 2 * height, 2 * width))
        partials = self._partials_for(grid, channels, grad.device, weights=image is not None)
        _pool_backward_kernel[grid](grad.contiguous(), out, code, grad_a, image, partials, n, C=channels, HO=height,
                                    WO=width, SAMPLES=samples, BLOCK=_block(samples, out.shape),
                                    WEIGHT=image is not None)
        torch.sum(partials[:, :, 0], 0, out=bias_grad)
        if image is not None:
            torch.sum(partials[:, :, 1:10], 0, out=weight_grad.view(channels, 9))

    def _partials_for(self, grid, channels: int, device, weights: bool) -> torch.Tensor:
        """Each program's shares: of the bias gradient (column 0) and, with weights, of the first conv's
        nine weights' (columns 1-9); allocated once per launch shape."""
        key = (grid, device, weights)
        if key not in self._partials:
            self._partials[key] = torch.zeros(grid[1], channels, 16 if weights else 1, device=device)
        return self._partials[key]


def _block(samples: int, pooled_shape: torch.Size) -> int:
    return triton.next_power_of_2(samples * pooled_shape[2] * pooled_shape[3])


if triton is not None:

    @triton.jit
    def _window(n, C: tl.constexpr, HO: tl.constexpr, WO: tl.constexpr, SAMPLES: tl.constexpr, BLOCK: tl.constexpr):
        """This program's values: each one's offset in the pooled map and in the full one (the window's
        top left), which are real, and each one's sample and place in its pooled plane."""
        channel = tl.program_id(0)
        item = tl.arange(0, BLOCK)
        sample = tl.program_id(1) * SAMPLES + item // (HO * WO)
        place = item % (HO * WO)
        inside = (item < SAMPLES * HO * WO) & (sample < n)
        plane = sample.to(tl.int64) * C + channel  # offsets past 2**31 in batches of over 85,000 images
        pooled = plane * (HO * WO) + place
        top_left = plane * (4 * HO * WO) + (place // WO) * (4 * WO) + (place % WO) * 2
        return pooled, top_left, inside, sample, place

    @triton.jit
    def _pool_forward_kernel(a_ptr, bias_ptr, out_ptr, code_ptr, n, C: tl.constexpr, HO: tl.constexpr,
                             WO: tl.constexpr, SAMPLES: tl.constexpr, BLOCK: tl.constexpr):
        pooled, top_left, inside, _, _ = _window(n, C, HO, WO, SAMPLES, BLOCK)
        best = tl.load(a_ptr + top_left, mask=inside, other=0.0).to(tl.float32)  # bfloat16 is exact in float32
        code = tl.zeros([BLOCK], dtype=tl.int32)
        for k in tl.static_range(1, 4):  # row by row, as PyTorch's pooling: the first of equal values wins
            value = tl.load(a_ptr + top_left + (k // 2) * (2 * WO) + (k % 2), mask=inside,
                            other=0.0).to(tl.float32)
            take = (value > best) | (value != value)  # a NaN wins, as there
            best = tl.where(take, value, best)
            code = tl.where(take, k, code)
        value = best + tl.load(bias_ptr + tl.program_id(0))
        out = tl.where(value > 0, value, 0.0)
        out = tl.where(value != value, value, out)  # ReLU keeps NaN
        tl.store(out_ptr + pooled, out.to(out_ptr.dtype.element_ty), mask=inside)
        tl.store(code_ptr + pooled, code.to(tl.int8), mask=inside)

    @triton.jit
    def _pool_backward_kernel(grad_ptr, out_ptr, code_ptr, grad_a_ptr, image_ptr, partials_ptr, n, C: tl.constexpr,
                              HO: tl.constexpr, WO: tl.constexpr, SAMPLES: tl.constexpr, BLOCK: tl.constexpr,
                              WEIGHT: tl.constexpr):
        pooled, top_left, inside, sample, place = _window(n, C, HO, WO, SAMPLES, BLOCK)
        grad = tl.load(grad_ptr + pooled, mask=inside, other=0.0).to(tl.float32)
        out = tl.load(out_ptr + pooled, mask=inside, other=0.0).to(tl.float32)
        code = tl.load(code_ptr + pooled, mask=inside, other=0).to(tl.int32)
        grad = tl.where(out <= 0, 0.0, grad)  # ReLU's backward, as threshold_backward
        shares = partials_ptr + (tl.program_id(1) * C + tl.program_id(0)) * (16 if WEIGHT else 1)
        tl.store(shares, tl.sum(grad, 0))
        if WEIGHT:  # dW[kh, kw] = sum of grad x image[row + kh - 1, col + kw - 1], (row, col) the window's winner
            row = (place // WO) * 2 + code // 2
            col = (place % WO) * 2 + code % 2
            for k in tl.static_range(9):
                r = row + (k // 3 - 1)
                c = col + (k % 3 - 1)
                seen = inside & (r >= 0) & (r < 2 * HO) & (c >= 0) & (c < 2 * WO)
                value = tl.load(image_ptr + sample.to(tl.int64) * (4 * HO * WO) + r * (2 * WO) + c, mask=seen,
                                other=0.0).to(tl.float32)
                tl.store(shares + 1 + k, tl.sum(grad * value, 0))
        else:
            for k in tl.static_range(4):
                tl.store(grad_a_ptr + top_left + (k // 2) * (2 * WO) + (k % 2),
                         tl.where(code == k, grad, 0.0).to(grad_a_ptr.dtype.element_ty), mask=inside)
