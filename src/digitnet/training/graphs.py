"""Whole epochs replayed from one CUDA graph, for the recipes on a GPU.

At these sizes a GPU step is a few dozen small kernels (batches of 512 for the tutorial's recipe,
128 for best's), so eager steps are bound by launching them and by the Python around them: on an
H100 best's written-out steps took 0.474 s an epoch launched one by one and 0.085 s replayed
(benchmarks/train_speed.py --device cuda, docs/performance.md). Here all of an epoch's batches, the
last partial one included, each gathered from the epoch's order, stepped and its loss stored on the
device, are captured once into one graph and replayed every epoch: one launch an epoch, no host
work between steps. While the GPU replays an epoch the host draws the next epoch's order and queues
its copy, so the next replay waits for nothing. The first epoch (and the first after a resume) runs
eagerly, as a real epoch that also sets up cuBLAS, Triton's kernels and the optimiser's state
outside any capture. Replaying runs the eager steps' kernels on the same addresses, so the weights
are bit-identical to eager training (tests/test_cuda.py). A stop signal is honoured between epochs.

An augmented recipe (the convnet's) replays too: its random numbers cannot be drawn inside the graph
(each batch's generator is seeded on the host by (seed, epoch, step)), so before each replay every
batch's draws are made into fixed buffers, and the graph applies them (data/augment.py, Augmenter's
draw and apply: the same numbers and kernels as an eager epoch).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from digitnet.data.augment import Augmenter, Draws
from digitnet.data.batches import EpochBatches


class EpochGraph:
    """A step (FusedSGDStep, or BackpropStep or AutogradStep with the schedule on the device) that can
    also run a whole epoch from one captured graph: eager step(x, y) -> loss until replay() is used."""

    def __init__(self, step):
        self.step = step
        if hasattr(step, "keep_gradients"):
            step.keep_gradients = True  # the graph reads the gradients where the eager steps left them
        self.draws: list[Draws] | None = None  # each batch's augmentation draws, made before each replay
        self.graph: torch.cuda.CUDAGraph | None = None
        self.order: torch.Tensor | None = None  # the epoch's sample order, read by the graph
        self.losses: torch.Tensor | None = None  # written by the graph, a loss per batch
        self.warm = False  # an eager epoch has run: capturing is safe
        self._next_epoch: int | None = None  # the epoch whose order has been queued for the device...
        self._next_order: torch.Tensor | None = None  # ...into here,
        self._pinned: torch.Tensor | None = None  # from here,
        self._copied: torch.cuda.Event | None = None  # done once this has passed

    def ready(self, batches: EpochBatches) -> bool:
        """Whether replay() can run this epoch: after an eager one (every batch size has been stepped
        outside a capture), and with a full batch."""
        return self.warm and len(batches.x) >= batches.batch_size

    @property
    def lr(self) -> float:
        return self.step.lr

    def state_dict(self) -> dict:
        return self.step.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.step.load_state_dict(state)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.step(x, y)

    def replay(self, batches: EpochBatches, epoch: int, augment: Augmenter | None = None) -> torch.Tensor:
        """Train one epoch from the graph (augmented, where given, as the eager epochs are); every
        step's loss, on the device."""
        if augment is not None:
            self._draw(augment, batches, epoch)
        if self.graph is None:
            self._capture(batches, augment)
        self.order.copy_(self._order_on_device(batches, epoch))
        self.graph.replay()
        self._stage(batches, epoch + 1)  # on the host, while the GPU runs this epoch
        return self.losses.clone(memory_format=torch.contiguous_format)

    def _order_on_device(self, batches: EpochBatches, epoch: int) -> torch.Tensor:
        return self._next_order if self._next_epoch == epoch else batches.order(epoch)

    def _stage(self, batches: EpochBatches, epoch: int) -> None:
        """Draw an epoch's order on the host and queue its copy to the device behind the work queued."""
        order = batches.order(epoch, device="cpu")
        if self._pinned is None:
            self._pinned = torch.empty_like(order).pin_memory()
            self._next_order = torch.empty_like(self.order)
            self._copied = torch.cuda.Event()
        self._copied.synchronize()  # the previous copy has left the pinned buffer
        self._pinned.copy_(order)
        self._next_order.copy_(self._pinned, non_blocking=True)
        self._copied.record()
        self._next_epoch = epoch

    def _draw(self, augment: Augmenter, batches: EpochBatches, epoch: int) -> None:
        """Every batch's random numbers for this epoch, into the buffers the graph reads."""
        sizes = [int(n) for n in batches.sizes()]
        if self.draws is None:
            self.draws = [augment.draw(n, epoch, i) for i, n in enumerate(sizes)]
            return
        for i, (n, out) in enumerate(zip(sizes, self.draws)):
            augment.draw(n, epoch, i, out=out)

    def _capture(self, batches: EpochBatches, augment: Augmenter | None) -> None:
        size = batches.batch_size
        self.order = torch.empty(len(batches.x), dtype=torch.long, device=batches.x.device)
        self.losses = loss_slots(len(batches), batches.x.device)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with _capturable(getattr(self.step, "optimizer", None)), torch.cuda.graph(self.graph):
            for i in range(len(batches)):  # each step writes its loss into its slot: no copy kernel a step
                x, y = batches.gather(self.order[i * size : (i + 1) * size])
                if augment is not None:
                    x, y = augment.apply(x, y, self.draws[i])
                self.step(x, y, loss_out=self.losses[i])


def loss_slots(count: int, device) -> torch.Tensor:
    """count float32 loss slots, one every 16 bytes. Triton specialises a kernel on whether each pointer
    argument is 16-byte aligned, so packed slots (4 bytes apart) would make the kernel writing a step's
    loss compile a second variant in the middle of the capture."""
    return torch.empty(count, 4, device=device)[:, 0]


@contextmanager
def _capturable(optimizer: torch.optim.Optimizer | None):
    """Let torch.optim's capture check pass while capturing. The fused AdamW computes the same with or
    without the flag (its step counts live on the device either way); set only here, it keeps
    torch from warning that eager steps of a capturable optimiser are slow."""
    groups = [] if optimizer is None else optimizer.param_groups
    for group in groups:
        group["capturable"] = True
    try:
        yield
    finally:
        for group in groups:
            group["capturable"] = False
