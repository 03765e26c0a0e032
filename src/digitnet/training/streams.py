"""Independent GPU work of a step run side by side on CUDA streams.

At the seed recipe's sizes each GEMM fills a few dozen of an H100's multiprocessors, so kernels that
do not depend on each other (a layer's weight update, its bias update, the gradient flowing to the
layer below) leave most of the GPU idle when they run one after another. Forked onto side streams
they overlap; a CUDA graph captures the forks and joins as edges, so replays overlap them too. On an
H100 the replayed seed step went 70.2 -> 66.2 us in fp32, 46.6 -> 43.6 in tf32, 58.2 -> 54.0 in bf16
(benchmarks/gpu_streams_probe.py); whole epochs moved in bf16 only (0.88x; docs/performance.md, GPU
round 7). Every kernel computes what it computed before, so results are bit for bit those of the same
work run in order. On the CPU everything runs in order.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch

# fork's context where there are no side streams: one made per call by a generator cost ~1.5 us, six a CPU step
_IN_ORDER = nullcontext()


class SideStreams:
    """count side streams of a CUDA device (none elsewhere): fork(i) runs a block on stream i after
    everything queued so far on the current stream; join() makes the current stream wait for all the
    forked work."""

    def __init__(self, device: torch.device, count: int):
        self._streams = [torch.cuda.Stream(device) for _ in range(count)] if device.type == "cuda" else []
        self._forked: list[torch.cuda.Stream] = []

    def fork(self, i: int):
        """The block must read only tensors that outlive the join (buffers allocated once): the caching
        allocator could otherwise hand a tensor freed on the current stream to new work meanwhile."""
        return self._fork(i) if self._streams else _IN_ORDER

    @contextmanager
    def _fork(self, i: int):
        stream = self._streams[i]
        stream.wait_stream(torch.cuda.current_stream())
        self._forked.append(stream)
        with torch.cuda.stream(stream):
            yield

    def join(self) -> None:
        current = torch.cuda.current_stream() if self._forked else None
        for stream in self._forked:
            current.wait_stream(stream)
        self._forked.clear()
