"""Whole epochs replayed from one CUDA graph, for the MLP recipes on a GPU.

At these sizes a GPU step is a few dozen small kernels (batches of 512 for the tutorial's recipe,
128 for best's), so eager steps are bound by launching them and by the Python around them: on an
H100 best's written-out steps took 0.474 s an epoch launched one by one and 0.085 s replayed
(benchmarks/train_speed.py --device cuda, docs/performance.md). Here an epoch's full
batches, each gathered from the epoch's order, stepped and its loss stored on the device, are
captured once into one graph and replayed every epoch: one launch an epoch, no host work between
steps. The first epoch (and the first after a resume) runs eagerly, as a real epoch that also sets
up cuBLAS and the optimiser's state outside any capture; the last partial batch runs eagerly after
each replay. Replaying runs the eager steps' kernels on the same addresses, so the weights are
bit-identical to eager training (tests/test_cuda.py). A stop signal is honoured between epochs.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from digitnet.data.batches import EpochBatches


class EpochGraph:
    """A step (FusedSGDStep, or BackpropStep with its schedule on the device) that can also run an
    epoch's full batches from one captured graph: eager step(x, y) -> loss until replay() is used."""

    def __init__(self, step):
        self.step = step
        self.graph: torch.cuda.CUDAGraph | None = None
        self.order: torch.Tensor | None = None  # the epoch's sample order, read by the graph
        self.full_losses: torch.Tensor | None = None  # written by the graph, a loss per full batch
        self.warm = False  # an eager epoch has run: capturing is safe

    def ready(self, batches: EpochBatches) -> bool:
        """Whether replay() can run this epoch: after an eager one, and with a full batch to capture."""
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

    def replay(self, batches: EpochBatches, epoch: int) -> torch.Tensor:
        """Train one epoch: its full batches from the graph, the partial one eagerly; every step's loss, on the device."""
        if self.graph is None:
            self._capture(batches)
        self.order.copy_(batches.order(epoch))
        self.graph.replay()
        losses = torch.empty(len(batches), device=self.full_losses.device)
        full = len(self.full_losses)
        losses[:full] = self.full_losses
        if len(batches) > full:
            losses[full] = self.step(*batches.gather(self.order[full * batches.batch_size :]))
        return losses

    def _capture(self, batches: EpochBatches) -> None:
        size = batches.batch_size
        full = len(batches.x) // size
        self.order = torch.empty(len(batches.x), dtype=torch.long, device=batches.x.device)
        self.full_losses = torch.empty(full, device=batches.x.device)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with _capturable(getattr(self.step, "optimizer", None)), torch.cuda.graph(self.graph):
            for i in range(full):
                self.full_losses[i] = self.step(*batches.gather(self.order[i * size : (i + 1) * size]))


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
