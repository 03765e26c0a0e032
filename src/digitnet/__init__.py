"""digitnet: the TensorFlow tutorial's handwritten-digit MLP, trained, proven, served.

Public API (imported on first use, so `digitnet --help` does not load PyTorch):

    from digitnet import load_mnist, load_fashion_mnist, build_model, train
"""

__version__ = "0.1.0"

_EXPORTS = {
    "load_mnist": "digitnet.data.datasets",
    "load_fashion_mnist": "digitnet.data.datasets",
    "load_dataset": "digitnet.data.datasets",
    "build_model": "digitnet.model",
    "load_model": "digitnet.model",
    "save_model": "digitnet.model",
    "train": "digitnet.runs",
    "resume": "digitnet.runs",
    "TrainConfig": "digitnet.training",
    "get_recipe": "digitnet.recipes",
    "load_run": "digitnet.runs",
    "DigitnetError": "digitnet.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'digitnet' has no attribute {name!r}")
