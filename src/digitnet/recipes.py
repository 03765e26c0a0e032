"""Training recipes as plain data: model, loss, optimiser, schedule, batch size, epochs, augmentation.

`tutorial` (old name `seed`, still accepted) is the tutorial's recipe, number for number. `best`
keeps the same network and changes only how it is trained; `cnn` trains a small convnet on
augmented batches. Every field can be overridden from the
CLI: the CLI builds one option per field from the metadata below.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from digitnet.errors import ConfigError
from digitnet.settings import AUGMENTATIONS, LOSSES, MODELS, OPTIMIZERS, RECIPE_ALIASES, SCHEDULES


FIELD_TYPES = {"str": str, "int": int, "float": (int, float)}  # the annotations, as strings


def _option(default=None, help: str = "", choices=None):
    metadata = {"help": help, "choices": choices}
    return field(metadata=metadata) if default is None else field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Recipe:
    name: str
    loss: str = _option(help="mse-sum: sum((out - onehot)^2)/batch, as the tutorial; cross-entropy: softmax "
                             "cross-entropy", choices=LOSSES)
    optimizer: str = _option(help="sgd (plain, see --momentum) or adamw", choices=OPTIMIZERS)
    lr: float = _option(help="learning rate (the peak rate for the onecycle schedule)")
    batch_size: int = _option(512, "examples per step (the last partial batch is kept)")
    epochs: int = _option(30, "number of epochs")
    momentum: float = _option(0.0, "SGD momentum")
    weight_decay: float = _option(0.0, "weight decay (SGD: L2 in the gradient; AdamW: decoupled)")
    schedule: str = _option("constant", "constant, or onecycle: linear warm-up then cosine decay to zero, stepped "
                                        "every batch", choices=SCHEDULES)
    warmup_fraction: float = _option(0.0, "share of all steps spent warming up (onecycle)")
    label_smoothing: float = _option(0.0, "label smoothing (cross-entropy only)")
    model: str = _option("mlp", "mlp: the tutorial's fully connected network (see --hidden); cnn: two conv blocks "
                                "and a dense head", choices=MODELS)
    augment: str = _option("none", "random changes to each training batch, drawn from --seed and the epoch: affine "
                                   "(rotation, scale, shear, shift), +thickness (thinner or bolder strokes), +print (a "
                                   "tenth of each batch swapped for digits printed in matplotlib's fonts), +pairs (a "
                                   "tenth made two digits side by side, to be read as no one digit)",
                           choices=AUGMENTATIONS)

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> "Recipe":
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, FIELD_TYPES[f.type]) or isinstance(value, bool):
                raise ConfigError(f"{option_name(f.name)} {value!r}: must be of type {f.type}")
            if f.type == "float" and not math.isfinite(value):
                raise ConfigError(f"{option_name(f.name)} {value!r}: must be a finite number")
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f"{option_name(f.name)} {getattr(self, f.name)!r}: choose one of {', '.join(choices)}")
        checks = [
            (self.lr > 0, "lr", "the learning rate must be a positive number"),
            (self.batch_size >= 1, "batch_size", "must be at least 1"),
            (self.epochs >= 1, "epochs", "must be at least 1"),
            (0 <= self.momentum < 1, "momentum", "must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
            (0 <= self.warmup_fraction < 1, "warmup_fraction", "must be in [0, 1)"),
            (0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConfigError(f"{option_name(name)} {getattr(self, name)}: {message}")
        if self.label_smoothing and self.loss != "cross-entropy":
            raise ConfigError("--label-smoothing applies only to --loss cross-entropy")
        return self


def option_name(field_name: str) -> str:
    """The CLI option of a recipe field: batch_size -> --batch-size."""
    return "--" + field_name.replace("_", "-")


def overridable_fields():
    """The recipe fields a user may override (all but the name)."""
    return [f for f in fields(Recipe) if f.name != "name"]


RECIPES = {
    "tutorial": Recipe(name="tutorial", loss="mse-sum", optimizer="sgd", lr=0.001),
    "best": Recipe(
        name="best", loss="cross-entropy", optimizer="adamw", lr=2e-3, batch_size=128,
        weight_decay=0.05, schedule="onecycle", warmup_fraction=0.05, label_smoothing=0.1,
    ),
    "cnn": Recipe(
        name="cnn", loss="cross-entropy", optimizer="adamw", lr=2e-3, batch_size=128, epochs=30,
        weight_decay=0.05, schedule="onecycle", warmup_fraction=0.05, label_smoothing=0.1,
        model="cnn", augment="affine+thickness+print+pairs",
    ),
}
RECIPE_NAMES = tuple(RECIPES)


def canonical_name(name: str) -> str:
    """The recipe's current name ("seed" -> "tutorial"); ConfigError for an unknown one."""
    name = RECIPE_ALIASES.get(name, name)
    if name not in RECIPES:
        raise ConfigError(f"--recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return name


def get_recipe(name: str, **overrides) -> Recipe:
    """The named recipe with the given fields replaced (None values are ignored)."""
    recipe = RECIPES[canonical_name(name)]
    known = {f.name for f in overridable_fields()}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown recipe fields: {', '.join(sorted(unknown))}")
    return replace(recipe, **{k: v for k, v in overrides.items() if v is not None}).validate()


def recipe_from_dict(d: dict) -> Recipe:
    """A recipe saved by to_dict (a run's config.json), checked; old names are mapped to new ones."""
    d = dict(d)
    d["name"] = RECIPE_ALIASES.get(d.get("name"), d.get("name"))
    return Recipe(**d).validate()
