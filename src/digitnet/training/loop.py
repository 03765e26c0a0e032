"""The training loop: one recipe, one data set, evaluation on the test split every epoch."""

from __future__ import annotations

import math
import time
from typing import Callable

import torch

from digitnet.data import Dataset
from digitnet.data.augment import Augmenter
from digitnet.data.batches import EpochBatches, scale_images
from digitnet.distributed import Distributed
from digitnet.errors import ModelFileError
from digitnet.losses import make_loss
from digitnet.metrics import evaluate
from digitnet.model import build_model
from digitnet.training.devices import compute_dtype, cuda_numerics, fast_layout, resolve_device
from digitnet.training.graphs import EpochGraph
from digitnet.training.memory import retain_freed_memory
from digitnet.training.records import EpochRecord, EpochState, TrainConfig, TrainResult
from digitnet.training.steps import make_step
from digitnet.training.threads import thread_count
from digitnet.training.stops import StopSignals, TrainingDiverged, TrainingInterrupted


def _check_finite(loss: torch.Tensor, losses: torch.Tensor, epoch: int, i: int, lr: float) -> None:
    if not math.isfinite(float(loss)):
        recent = ", ".join(f"{v:.4g}" for v in losses[max(0, i - 4) : i + 1].tolist())
        raise TrainingDiverged(
            f"epoch {epoch} step {i + 1}: the training loss became {float(loss)} (last losses: {recent}); "
            f"lower the learning rate (now --lr {lr:g})"
        )


def train_one_epoch(step, batches: EpochBatches, epoch: int, progress: bool, stop: StopSignals | None = None,
                    dist: Distributed | None = None, augment: Augmenter | None = None) -> torch.Tensor:
    """One pass over the training split; returns the loss of every step (float32, on the CPU).

    Stops at once, between steps, on a non-finite loss (on the CPU, where checking costs
    nothing; on a GPU at the end of the epoch) or when a stop signal has arrived (before the
    epoch, where the whole epoch is replayed from a CUDA graph).
    """
    if isinstance(step, EpochGraph) and step.ready(batches):
        if stop is not None and stop.received is not None:
            raise TrainingInterrupted(stop.received, epoch, 0)
        losses = step.replay(batches, epoch, augment)
    else:
        losses = _step_by_step(step, batches, epoch, progress, stop, dist, augment)
    if dist is not None and dist.active:  # each rank holds its weighted share of every step's loss: average them
        losses = dist.all_reduce_sum(losses.div_(dist.world_size))
    losses = losses.cpu()
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        _check_finite(losses[bad[0, 0]], losses, epoch, int(bad[0, 0]), step.lr)
    return losses


def _step_by_step(step, batches: EpochBatches, epoch: int, progress: bool, stop: StopSignals | None,
                  dist: Distributed | None, augment: Augmenter | None) -> torch.Tensor:
    from tqdm import tqdm  # lazy: tqdm is only needed once training starts

    losses = torch.empty(len(batches), device=batches.x.device)
    check_each_step = losses.device.type == "cpu"
    bar = tqdm(batches.epoch(epoch), total=len(batches), desc=f"epoch {epoch}", leave=False,
               disable=None if progress else True, unit="batch")
    shares = batches.shares() if dist is not None and dist.active else None
    for i, (x, y) in enumerate(bar):
        if augment is not None:
            x, y = augment(x, y, epoch, i)
        losses[i] = step(x, y) if shares is None else step(x, y, shares[i])
        if check_each_step:
            _check_finite(losses[i], losses, epoch, i, step.lr)
        if stop is not None and stop.received is not None:
            bar.close()
            raise TrainingInterrupted(stop.received, epoch, i + 1)
    if isinstance(step, EpochGraph):
        step.warm = True
    return losses


def mean_loss(step_losses: torch.Tensor, batches: EpochBatches) -> float:
    """The epoch's training loss: the mean over examples of the per-batch mean losses."""
    return float((step_losses.double() * batches.sizes()).sum()) / len(batches.x)


def prepare_test_tensors(data: Dataset, device: torch.device):
    """The test split on the device: images scaled to [-1, 1] and flattened, labels int64."""
    return scale_images(data.x_test, device), torch.as_tensor(data.y_test, device=device).long()


def _restore(checkpoint: dict, model: torch.nn.Module, step) -> list[EpochRecord]:
    try:
        model.load_state_dict(checkpoint["model"])
        step.load_state_dict(checkpoint["step"])
        return [EpochRecord(**r) for r in checkpoint["history"]]
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"the checkpoint does not fit this run's model or recipe ({exc})") from None


def fit(config: TrainConfig, data: Dataset, on_epoch: Callable[[EpochRecord, EpochState], None] | None = None,
        progress: bool = True, checkpoint: dict | None = None, dist: Distributed | None = None) -> TrainResult:
    """Train config's model on data, or continue from a checkpoint; call on_epoch after each epoch.

    SIGINT and SIGTERM stop training between two steps (TrainingInterrupted); a non-finite
    loss stops it at once (TrainingDiverged). In both cases the last on_epoch is the last
    finished epoch. From here on the process keeps the memory it frees for reuse (training/memory.py).
    """
    device = resolve_device(config.device)
    retain_freed_memory()
    with thread_count(config.threads), cuda_numerics(config.precision, device):
        return _fit(config, device, data, on_epoch, progress, checkpoint, dist)


def _fit(config: TrainConfig, device: torch.device, data: Dataset, on_epoch, progress: bool, checkpoint: dict | None,
         dist: Distributed | None) -> TrainResult:
    recipe, dtype = config.recipe, compute_dtype(config.precision)
    model = fast_layout(build_model(config.hidden, seed=config.seed, device=device, kind=recipe.model), device)
    augment = Augmenter(recipe.augment, config.seed, device) if recipe.augment != "none" else None
    x_train = scale_images(data.x_train, device).to(dtype)
    y_train = torch.as_tensor(data.y_train, device=device).long()
    x_test, y_test = prepare_test_tensors(data, device)
    dist = dist or Distributed()
    batches = EpochBatches(x_train, y_train, recipe.batch_size, seed=config.seed, shuffle=config.shuffle,
                           rank=dist.rank, world_size=dist.world_size)
    step = make_step(model, recipe, recipe.epochs * len(batches), dtype, dist)
    loss_fn = make_loss(recipe.loss, recipe.label_smoothing)
    history = _restore(checkpoint, model, step) if checkpoint else []
    state = EpochState(model, step, history)
    step_losses: list[torch.Tensor] = []
    final = evaluate(model, x_test, y_test, loss_fn) if history else None
    model.train()
    with StopSignals() as stop:
        for epoch in range(len(history) + 1, recipe.epochs + 1):
            started = time.perf_counter()
            step_losses.append(train_one_epoch(step, batches, epoch, progress, stop, dist, augment))
            trained = time.perf_counter()
            final = evaluate(model, x_test, y_test, loss_fn)
            record = EpochRecord(epoch, mean_loss(step_losses[-1], batches), final.loss, final.accuracy,
                                 trained - started, time.perf_counter() - trained, step.lr)
            history.append(record)
            if on_epoch is not None:
                on_epoch(record, state)
    return TrainResult(model, history, final, config, step_losses=step_losses)
