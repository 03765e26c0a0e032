"""What a training run is told and what it produces: the config, one record per epoch, the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from digitnet.errors import ConfigError, ModelFileError
from digitnet.metrics import Evaluation
from digitnet.model import architecture
from digitnet.recipes import Recipe, get_recipe, recipe_from_dict
from digitnet.settings import (DEFAULT_DATASET, DEFAULT_DEVICE, DEFAULT_HIDDEN, DEFAULT_PRECISION, DEFAULT_RECIPE,
                               DEFAULT_SEED, PRECISIONS)


MAX_THREADS = 4096


@dataclass
class TrainConfig:
    recipe: Recipe = field(default_factory=lambda: get_recipe(DEFAULT_RECIPE))
    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    seed: int = DEFAULT_SEED
    shuffle: bool = True
    device: str = DEFAULT_DEVICE
    precision: str = DEFAULT_PRECISION  # "tf32": TF32 products (CUDA); "bf16": bf16 GEMMs, fp32 master weights
    threads: int | None = None  # CPU threads (None: torch's default); see training/threads.py

    def to_dict(self) -> dict:
        d = asdict(self)
        d["recipe"] = self.recipe.to_dict()
        d["hidden"] = list(self.hidden)
        d["architecture"] = architecture(self.hidden, self.recipe.model)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The inverse of to_dict (extra keys, such as config.json's data and versions, are ignored)."""
        try:
            config = cls(recipe_from_dict(d["recipe"]), d["dataset"], d.get("data_dir"), tuple(d["hidden"]),
                         d["seed"], d["shuffle"], d["device"], d.get("precision", DEFAULT_PRECISION),
                         d.get("threads"))
        except ConfigError as exc:
            raise ModelFileError(f"config.json: recipe: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"config.json lacks or garbles a training setting ({type(exc).__name__}: "
                                 f"{str(exc)[:100]})") from None
        problem = config._problem()
        if problem:
            raise ModelFileError(f"config.json: {problem}")
        return config

    def _problem(self) -> str | None:
        checks = [
            (isinstance(self.dataset, str) and self.dataset != "", "dataset must be a name"),
            (self.data_dir is None or isinstance(self.data_dir, str), "data_dir must be a path or null"),
            (all(type(h) is int and h >= 1 for h in self.hidden), "hidden must be a list of positive integers"),
            (type(self.seed) is int, "seed must be an integer"),
            (isinstance(self.shuffle, bool), "shuffle must be true or false"),
            (isinstance(self.device, str), "device must be a name"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.threads is None or (type(self.threads) is int and 1 <= self.threads <= MAX_THREADS),
             f"threads must be null or a number from 1 to {MAX_THREADS}"),
        ]
        return next((message for ok, message in checks if not ok), None)


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
class EpochState:
    """What an on_epoch callback sees: the model and step after the epoch, and all records so far."""

    model: torch.nn.Module
    step: object
    history: list[EpochRecord]


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[EpochRecord]
    final: Evaluation
    config: TrainConfig
    run_dir: str | None = None
    is_main: bool = True  # False on the ranks other than 0 of a data-parallel run
    step_losses: list[torch.Tensor] = field(default_factory=list)  # per epoch, one loss per step
