"""The one source of truth for geometry, choice names and defaults.

Everything else (the library, the CLI's options and help, the docs' tables) reads these. This
module imports nothing heavy, so the CLI can build its parser from it without loading PyTorch.
"""

from __future__ import annotations

# Geometry: MNIST's digits are 28x28 pixels, the ink fitted into 20x20, ten classes.
SIDE = 28
PIXELS = SIDE * SIDE
FIT = 20
CLASSES = 10
NO_DIGIT = CLASSES  # a training label: ink that is no one digit (two touching, data/augment.py), every class alike

# Data sets (see data/sources.py for their files and hashes).
DATASETS = ("mnist", "fashion-mnist", "mnist-10k")
DEFAULT_DATASET = "mnist"

# Recipes (see recipes.py). "seed" is the tutorial recipe's old name, still accepted.
RECIPE_ALIASES = {"seed": "tutorial"}
DEFAULT_RECIPE = "tutorial"
LOSSES = ("mse-sum", "cross-entropy")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "onecycle")
MODELS = ("mlp", "cnn")
AUGMENTATIONS = ("none", "affine", "affine+thickness", "affine+thickness+print", "affine+thickness+print+pairs")

# Models and training.
DEFAULT_HIDDEN = (256, 128)
DEFAULT_SEED = 0
PRECISIONS = ("fp32", "tf32", "bf16")
DEFAULT_PRECISION = "fp32"
DEFAULT_DEVICE = "auto"

# A run folder's record of itself (runs/folder.py writes it), read by the CLI before torch loads.
RUN_CONFIG = "config.json"
