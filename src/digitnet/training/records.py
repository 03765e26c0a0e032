"""What a training run is told and what it produces: the config, one record per epoch, the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from digitnet.errors import ModelFileError
from digitnet.metrics import Evaluation
from digitnet.model import architecture
from digitnet.recipes import Recipe, get_recipe, recipe_from_dict
from digitnet.settings import (DEFAULT_DATASET, DEFAULT_DEVICE, DEFAULT_HIDDEN, DEFAULT_PRECISION, DEFAULT_RECIPE,
                               DEFAULT_SEED)


@dataclass
class TrainConfig:
    recipe: Recipe = field(default_factory=lambda: get_recipe(DEFAULT_RECIPE))
    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    seed: int = DEFAULT_SEED
    shuffle: bool = True
    device: str = DEFAULT_DEVICE
    precision: str = DEFAULT_PRECISION  # or "bf16": GEMMs in bfloat16, fp32 master weights, fp32 evaluation

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
            return cls(recipe_from_dict(d["recipe"]), d["dataset"], d.get("data_dir"), tuple(d["hidden"]),
                       int(d["seed"]), bool(d["shuffle"]), d["device"], d.get("precision", DEFAULT_PRECISION))
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
