"""The training loop: one recipe, one data set, evaluation on the test split every epoch."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from digitnet import fastpath
from digitnet.data import Dataset, load_dataset
from digitnet.data.batches import EpochBatches, scale_images
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

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.compute_dtype == torch.float32:
            out = self.model(x)
        else:
            with torch.autocast(x.device.type, dtype=self.compute_dtype):
                out = self.model(x)
        loss = self.loss_fn(out.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        return loss.detach()


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def make_step(model: torch.nn.Module, recipe: Recipe, total_steps: int, compute_dtype=torch.float32):
    """The fastest step that computes the recipe: hand-fused for plain SGD on MSE, else autograd."""
    if fastpath.supports(recipe):
        return fastpath.FusedSGDStep(model, recipe.lr, compute_dtype)
    return AutogradStep(model, recipe, total_steps, compute_dtype)


def train_one_epoch(step, batches: EpochBatches, epoch: int, progress: bool) -> torch.Tensor:
    """One pass over the training split; returns the loss of every step (float32, on the CPU)."""
    from tqdm import tqdm

    losses = torch.empty(len(batches), device=batches.x.device)
    bar = tqdm(batches.epoch(epoch), total=len(batches), desc=f"epoch {epoch}", leave=False,
               disable=None if progress else True, unit="batch")
    for i, (x, y) in enumerate(bar):
        losses[i] = step(x, y)
    return losses.cpu()


def mean_loss(step_losses: torch.Tensor, batches: EpochBatches) -> float:
    """The epoch's training loss: the mean over examples of the per-batch mean losses."""
    return float((step_losses.double() * batches.sizes()).sum()) / len(batches.x)


def prepare_test_tensors(data: Dataset, device: torch.device):
    """The test split on the device: images scaled to [-1, 1] and flattened, labels int64."""
    return scale_images(data.x_test, device), torch.as_tensor(data.y_test, device=device).long()


def fit(config: TrainConfig, data: Dataset, on_epoch: Callable[[EpochRecord, torch.nn.Module], None] | None = None,
        progress: bool = True) -> TrainResult:
    """Train config's model on data; call on_epoch after each epoch's evaluation."""
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
    batches = EpochBatches(x_train, y_train, recipe.batch_size, seed=config.seed, shuffle=config.shuffle)
    step = make_step(model, recipe, recipe.epochs * len(batches), compute_dtype)
    loss_fn = make_loss(recipe.loss, recipe.label_smoothing)
    history: list[EpochRecord] = []
    step_losses: list[torch.Tensor] = []
    final = None
    model.train()
    for epoch in range(1, recipe.epochs + 1):
        started = time.perf_counter()
        step_losses.append(train_one_epoch(step, batches, epoch, progress))
        trained = time.perf_counter()
        train_loss = mean_loss(step_losses[-1], batches)
        if not math.isfinite(train_loss):
            raise TrainingDiverged(
                f"epoch {epoch}: the training loss became {train_loss}; lower the learning rate (--lr {recipe.lr:g})"
            )
        final = evaluate(model, x_test, y_test, loss_fn)
        record = EpochRecord(epoch, train_loss, final.loss, final.accuracy, trained - started,
                             time.perf_counter() - trained, step.lr)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record, model)
    return TrainResult(model, history, final, config, step_losses=step_losses)


def train(recipe: str | Recipe = "seed", dataset: str = "mnist", *, data_dir=None, out=None, epochs=None,
          hidden=DEFAULT_HIDDEN, seed: int = 0, shuffle: bool = True, device: str = "auto", precision: str = "fp32",
          progress: bool = True, write_run: bool = True, on_epoch=None, **recipe_overrides) -> TrainResult:
    """Train a model and (by default) write a run folder; the Python face of `digitnet train`.

    >>> result = train("seed", "fashion-mnist", data_dir="data/fashion-mnist", epochs=3)  # doctest: +SKIP
    >>> result.history[-1].test_accuracy  # doctest: +SKIP
    """
    if isinstance(recipe, str):
        recipe = get_recipe(recipe, epochs=epochs, **recipe_overrides)
    resolve_device(device)  # a bad --device fails before the data is loaded
    config = TrainConfig(recipe, dataset, None if data_dir is None else str(data_dir), tuple(hidden), seed,
                         shuffle, device, precision)
    data = load_dataset(dataset, data_dir, progress=progress)
    if not write_run:
        return fit(config, data, on_epoch=on_epoch, progress=progress)
    from digitnet.runs import RunWriter

    writer = RunWriter.create(config, data, out)

    def after_epoch(record: EpochRecord, model: torch.nn.Module) -> None:
        writer.on_epoch(record, model)
        if on_epoch is not None:
            on_epoch(record, model)

    result = fit(config, data, on_epoch=after_epoch, progress=progress)
    writer.finish(result, data)
    result.run_dir = str(writer.run_dir)
    return result
