"""The training loop: one recipe, one data set, evaluation on the test split every epoch."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from digitnet import fastpath
from digitnet.data import Dataset, load_dataset
from digitnet.data.batches import EpochBatches, scale_images
from digitnet.distributed import Distributed
from digitnet.errors import DigitnetError
from digitnet.evaluate import Evaluation, evaluate
from digitnet.losses import make_loss
from digitnet.model import DEFAULT_HIDDEN, architecture, build_model
from digitnet.recipes import Recipe, get_recipe


class TrainingDiverged(DigitnetError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    recipe: Recipe = field(default_factory=lambda: get_recipe("seed"))
    dataset: str = "mnist"
    data_dir: str | None = None
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    seed: int = 0
    shuffle: bool = True
    device: str = "auto"
    precision: str = "fp32"  # or "bf16": GEMMs in bfloat16, fp32 master weights, fp32 evaluation

    def to_dict(self) -> dict:
        d = asdict(self)
        d["recipe"] = self.recipe.to_dict()
        d["hidden"] = list(self.hidden)
        d["architecture"] = architecture(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The inverse of to_dict (extra keys, such as config.json's data and versions, are ignored)."""
        from digitnet.errors import ModelFileError

        try:
            return cls(Recipe(**d["recipe"]).validate(), d["dataset"], d.get("data_dir"), tuple(d["hidden"]),
                       int(d["seed"]), bool(d["shuffle"]), d["device"], d.get("precision", "fp32"))
        except (KeyError, TypeError) as exc:
            raise ModelFileError(f"config.json lacks or garbles a training setting ({exc})") from None


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    seconds: float  # training time of the epoch, evaluation excluded
    eval_seconds: float
    lr: float  # learning rate at the epoch's last step


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[EpochRecord]
    final: Evaluation
    config: TrainConfig
    run_dir: str | None = None
    is_main: bool = True  # False on the ranks other than 0 of a data-parallel run
    step_losses: list[torch.Tensor] = field(default_factory=list)  # per epoch, one loss per step


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DigitnetError(f"--device {name!r}: not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DigitnetError(f"--device {name}: CUDA is not available here; use --device cpu")
    return device


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    params = model.parameters()
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, recipe: Recipe, total_steps: int):
    """Per-step LR multiplier: 1 for "constant"; linear warm-up then cosine to 0 for "onecycle"."""
    if recipe.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    warmup = max(1, round(recipe.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class AutogradStep:
    """step(x, y) -> loss for any recipe: autograd, a torch.optim optimiser and a per-step schedule."""

    def __init__(self, model: torch.nn.Module, recipe: Recipe, total_steps: int, compute_dtype=torch.float32):
        self.model = model
        self.compute_dtype = compute_dtype
        self.loss_fn = make_loss(recipe.loss, recipe.label_smoothing)
        self.optimizer = make_optimizer(model, recipe)
        self.schedule = make_schedule(self.optimizer, recipe, total_steps)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])

    def __call__(self, x: torch.Tensor, y: torch.Tensor, share: float = 1.0) -> torch.Tensor:
        """One step; in data-parallel training, share weights this rank's loss (see distributed.py)."""
        if self.compute_dtype == torch.float32:
            out = self.model(x)
        else:
            with torch.autocast(x.device.type, dtype=self.compute_dtype):
                out = self.model(x)
        loss = self.loss_fn(out.float(), y)
        if share != 1.0:
            loss = loss * share
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        return loss.detach()


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
CUDA_GRAPHS_ENV = "DIGITNET_CUDA_GRAPHS"  # "0" turns CUDA graph replay of the fused step off


def make_step(model: torch.nn.Module, recipe: Recipe, total_steps: int, compute_dtype=torch.float32,
              dist: Distributed | None = None):
    """The fastest step that computes the recipe: hand-fused for plain SGD on MSE, else autograd.

    Across processes: autograd through DistributedDataParallel, which all-reduces the gradients.
    """
    if dist is not None and dist.active:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [dist.local_rank] if next(model.parameters()).is_cuda else None
        return AutogradStep(DistributedDataParallel(model, device_ids=device_ids), recipe, total_steps,
                            compute_dtype)
    if fastpath.supports(recipe):
        step = fastpath.FusedSGDStep(model, recipe.lr, compute_dtype)
        on_cuda = next(model.parameters()).is_cuda
        if on_cuda and os.environ.get(CUDA_GRAPHS_ENV, "1") != "0":
            return fastpath.CudaGraphStep(step, recipe.batch_size)
        return step
    return AutogradStep(model, recipe, total_steps, compute_dtype)


class PeerFailure(DigitnetError):
    """In data-parallel training, another process failed, was killed or stopped answering."""


class TrainingInterrupted(DigitnetError):
    """SIGINT or SIGTERM arrived; training stopped between two steps."""

    def __init__(self, signum: int, epoch: int, step: int):
        self.signum, self.epoch, self.step = signum, epoch, step
        super().__init__(f"{signal.Signals(signum).name} during epoch {epoch} (after step {step})")


class StopSignals:
    """While active, SIGINT and SIGTERM only set a flag, which the loop checks after every step."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False


def _check_finite(loss: torch.Tensor, losses: torch.Tensor, epoch: int, i: int, lr: float) -> None:
    if not math.isfinite(float(loss)):
        recent = ", ".join(f"{v:.4g}" for v in losses[max(0, i - 4) : i + 1].tolist())
        raise TrainingDiverged(
            f"epoch {epoch} step {i + 1}: the training loss became {float(loss)} (last losses: {recent}); "
            f"lower the learning rate (now --lr {lr:g})"
        )


def train_one_epoch(step, batches: EpochBatches, epoch: int, progress: bool, stop: StopSignals | None = None,
                    dist: Distributed | None = None) -> torch.Tensor:
    """One pass over the training split; returns the loss of every step (float32, on the CPU).

    Stops at once, between steps, on a non-finite loss (on the CPU, where checking costs
    nothing; on a GPU at the end of the epoch) or when a stop signal has arrived.
    """
    from tqdm import tqdm

    losses = torch.empty(len(batches), device=batches.x.device)
    check_each_step = losses.device.type == "cpu"
    bar = tqdm(batches.epoch(epoch), total=len(batches), desc=f"epoch {epoch}", leave=False,
               disable=None if progress else True, unit="batch")
    shares = batches.shares() if dist is not None and dist.active else None
    for i, (x, y) in enumerate(bar):
        losses[i] = step(x, y) if shares is None else step(x, y, shares[i])
        if check_each_step:
            _check_finite(losses[i], losses, epoch, i, step.lr)
        if stop is not None and stop.received is not None:
            bar.close()
            raise TrainingInterrupted(stop.received, epoch, i + 1)
    if shares is not None:  # each rank holds its weighted share of every step's loss: average them
        losses = dist.all_reduce_sum(losses.div_(dist.world_size))
    losses = losses.cpu()
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        _check_finite(losses[bad[0, 0]], losses, epoch, int(bad[0, 0]), step.lr)
    return losses


def mean_loss(step_losses: torch.Tensor, batches: EpochBatches) -> float:
    """The epoch's training loss: the mean over examples of the per-batch mean losses."""
    return float((step_losses.double() * batches.sizes()).sum()) / len(batches.x)


def prepare_test_tensors(data: Dataset, device: torch.device):
    """The test split on the device: images scaled to [-1, 1] and flattened, labels int64."""
    return scale_images(data.x_test, device), torch.as_tensor(data.y_test, device=device).long()


@dataclass
class EpochState:
    """What an on_epoch callback sees: the model and step after the epoch, and all records so far."""

    model: torch.nn.Module
    step: object
    history: list[EpochRecord]


def _restore(checkpoint: dict, model: torch.nn.Module, step) -> list[EpochRecord]:
    from digitnet.checkpoint import restore_rng
    from digitnet.errors import ModelFileError

    try:
        model.load_state_dict(checkpoint["model"])
        step.load_state_dict(checkpoint["step"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ModelFileError(f"the checkpoint does not fit this run's model or recipe ({exc})") from None
    restore_rng(checkpoint)
    return [EpochRecord(**r) for r in checkpoint["history"]]


def fit(config: TrainConfig, data: Dataset, on_epoch: Callable[[EpochRecord, EpochState], None] | None = None,
        progress: bool = True, checkpoint: dict | None = None, dist: Distributed | None = None) -> TrainResult:
    """Train config's model on data, or continue from a checkpoint; call on_epoch after each epoch.

    SIGINT and SIGTERM stop training between two steps (TrainingInterrupted); a non-finite
    loss stops it at once (TrainingDiverged). In both cases the last on_epoch is the last
    finished epoch.
    """
    recipe = config.recipe
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config.hidden, seed=config.seed, device=device)
    if config.precision not in PRECISIONS:
        raise DigitnetError(f"--precision {config.precision!r}: choose one of {', '.join(PRECISIONS)}")
    compute_dtype = PRECISIONS[config.precision]
    x_train = scale_images(data.x_train, device).to(compute_dtype)
    y_train = torch.as_tensor(data.y_train, device=device).long()
    x_test, y_test = prepare_test_tensors(data, device)
    dist = dist or Distributed()
    batches = EpochBatches(x_train, y_train, recipe.batch_size, seed=config.seed, shuffle=config.shuffle,
                           rank=dist.rank, world_size=dist.world_size)
    step = make_step(model, recipe, recipe.epochs * len(batches), compute_dtype, dist)
    loss_fn = make_loss(recipe.loss, recipe.label_smoothing)
    history = _restore(checkpoint, model, step) if checkpoint else []
    state = EpochState(model, step, history)
    step_losses: list[torch.Tensor] = []
    final = evaluate(model, x_test, y_test, loss_fn) if history else None
    model.train()
    with StopSignals() as stop:
        for epoch in range(len(history) + 1, recipe.epochs + 1):
            started = time.perf_counter()
            step_losses.append(train_one_epoch(step, batches, epoch, progress, stop, dist))
            trained = time.perf_counter()
            final = evaluate(model, x_test, y_test, loss_fn)
            record = EpochRecord(epoch, mean_loss(step_losses[-1], batches), final.loss, final.accuracy,
                                 trained - started, time.perf_counter() - trained, step.lr)
            history.append(record)
            if on_epoch is not None:
                on_epoch(record, state)
    return TrainResult(model, history, final, config, step_losses=step_losses)


def _fit_into(writer, config, data, on_epoch, progress, checkpoint, dist: Distributed) -> TrainResult:
    """fit() with a run folder written (by rank 0) after every epoch and reported at the end.

    An interruption or divergence carries the run folder and its last saved epoch, so the
    message can say what is kept and how to resume.
    """
    def after_epoch(record: EpochRecord, state: EpochState) -> None:
        if dist.is_main:
            writer.on_epoch(record, state)
            if on_epoch is not None:
                on_epoch(record, state)

    try:
        result = fit(config, data, on_epoch=after_epoch, progress=progress and dist.is_main, checkpoint=checkpoint,
                     dist=dist)
    except (TrainingInterrupted, TrainingDiverged) as exc:
        exc.run_dir, exc.saved_epochs = str(writer.run_dir), len(writer.history)
        raise
    except RuntimeError as exc:
        if not dist.active:
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        failure = PeerFailure(f"rank {dist.rank}: another process of this run failed or stopped answering "
                              f"({reason[:160]})")
        failure.run_dir, failure.saved_epochs = str(writer.run_dir), len(writer.history)
        raise failure from None
    if dist.is_main:
        writer.finish(result, data)
    result.run_dir, result.is_main = str(writer.run_dir), dist.is_main
    return result


def _join(device: str) -> Distributed:
    """The process group torchrun set up, if any (validating --device first)."""
    from digitnet import distributed

    return distributed.from_environment(resolve_device(device))


def train(recipe: str | Recipe = "seed", dataset: str = "mnist", *, data_dir=None, out=None, epochs=None,
          hidden=DEFAULT_HIDDEN, seed: int = 0, shuffle: bool = True, device: str = "auto", precision: str = "fp32",
          progress: bool = True, write_run: bool = True, on_epoch=None, **recipe_overrides) -> TrainResult:
    """Train a model and (by default) write a run folder; the Python face of `digitnet train`.

    Under torchrun, every process calls this; rank 0 downloads, prints and writes the run folder.

    >>> result = train("seed", "fashion-mnist", data_dir="data/fashion-mnist", epochs=3)  # doctest: +SKIP
    >>> result.history[-1].test_accuracy  # doctest: +SKIP
    """
    if isinstance(recipe, str):
        recipe = get_recipe(recipe, epochs=epochs, **recipe_overrides)
    dist = _join(device)  # a bad --device fails here, before the data is loaded
    try:
        data_dir = None if data_dir is None else str(Path(data_dir).expanduser().resolve())
        config = TrainConfig(recipe, dataset, data_dir, tuple(hidden), seed, shuffle, device, precision)
        with dist.main_first():
            data = load_dataset(dataset, data_dir, progress=progress and dist.is_main)
        if not write_run:
            return fit(config, data, on_epoch=on_epoch, progress=progress and dist.is_main, dist=dist)
        from digitnet.runs import RunWriter

        writer = RunWriter.create(config, data, out) if dist.is_main else _RankWriter(out)
        return _fit_into(writer, config, data, on_epoch, progress, None, dist)
    finally:
        dist.close()


class _RankWriter:
    """What ranks other than 0 hold in place of a RunWriter: they write nothing."""

    def __init__(self, out):
        self.run_dir, self.history = Path(out or "."), []


def resume(run_dir, *, data_dir=None, device: str | None = None, progress: bool = True, on_epoch=None
           ) -> TrainResult:
    """Continue a run folder from its last checkpoint with its own config (from scratch if it has none).

    On the same device, the result is bit-identical to the run never interrupted.
    """
    from digitnet.checkpoint import load_checkpoint
    from digitnet.runs import RunWriter, check_data_matches, load_config

    saved = load_config(run_dir)
    config = TrainConfig.from_dict(saved)
    if device is not None:
        config.device = device
    dist = _join(config.device)
    try:
        with dist.main_first():
            data = load_dataset(config.dataset, data_dir or config.data_dir, progress=progress and dist.is_main)
        check_data_matches(saved, data, run_dir)
        checkpoint = load_checkpoint(run_dir)
        history = [EpochRecord(**r) for r in checkpoint["history"]] if checkpoint else []
        writer = RunWriter(Path(run_dir), saved, history) if dist.is_main else _RankWriter(run_dir)
        return _fit_into(writer, config, data, on_epoch, progress, checkpoint, dist)
    finally:
        dist.close()
