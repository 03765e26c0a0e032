"""Training recipes as plain data: loss, optimiser, schedule, batch size, epochs.

`seed` is the tutorial's recipe, number for number. `best` keeps the same network and
changes only how it is trained. Every field can be overridden from the CLI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from digitnet.errors import ConfigError

LOSSES = ("mse-sum", "cross-entropy")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "onecycle")


@dataclass(frozen=True)
class Recipe:
    name: str
    loss: str  # "mse-sum": sum((out - onehot)^2) / batch, as the tutorial; or "cross-entropy"
    optimizer: str  # "sgd" (plain, optional momentum) or "adamw"
    lr: float  # the peak learning rate for "onecycle"
    batch_size: int = 512
    epochs: int = 30
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"  # "onecycle": linear warm-up, then cosine decay to zero
    warmup_fraction: float = 0.0  # share of all steps spent warming up, for "onecycle"
    label_smoothing: float = 0.0  # cross-entropy only

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> "Recipe":
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"--schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}")
        if not self.lr > 0:
            raise ConfigError(f"--lr {self.lr}: the learning rate must be a positive number")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.epochs < 1:
            raise ConfigError(f"--epochs {self.epochs}: must be at least 1")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"--momentum {self.momentum}: must be in [0, 1)")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight-decay {self.weight_decay}: must be >= 0")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"--warmup-fraction {self.warmup_fraction}: must be in [0, 1)")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing {self.label_smoothing}: must be in [0, 1)")
        if self.label_smoothing and self.loss != "cross-entropy":
            raise ConfigError("--label-smoothing applies only to --loss cross-entropy")
        return self


RECIPES = {
    "seed": Recipe(name="seed", loss="mse-sum", optimizer="sgd", lr=0.001),
    "best": Recipe(
        name="best", loss="cross-entropy", optimizer="adamw", lr=2e-3, batch_size=128,
        weight_decay=0.05, schedule="onecycle", warmup_fraction=0.05, label_smoothing=0.1,
    ),
}


def get_recipe(name: str, **overrides) -> Recipe:
    """The named recipe with the given fields replaced (None values are ignored)."""
    if name not in RECIPES:
        raise ConfigError(f"--recipe {name!r}: choose one of {', '.join(RECIPES)}")
    known = {f.name for f in fields(Recipe)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown recipe fields: {', '.join(sorted(unknown))}")
    return replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None}).validate()
