"""The CLI's parser, built from digitnet.settings and digitnet.recipes (the one source of truth)."""

from __future__ import annotations

import argparse

from digitnet import __version__
from digitnet.recipes import RECIPE_NAMES, RECIPES, option_name, overridable_fields
from digitnet.settings import (DATASETS, DEFAULT_DATASET, DEFAULT_DEVICE, DEFAULT_HIDDEN, DEFAULT_PRECISION,
                               DEFAULT_RECIPE, DEFAULT_SEED, PRECISIONS, RECIPE_ALIASES)

FIELD_TYPES = {"str": str, "float": float, "int": int}


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 256,128") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: every hidden size must be a positive integer")
    return sizes


def _threads(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of threads >= 1, or auto")
    return count


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="read the IDX files (gzipped or plain) from DIR instead of the cache; never downloads "
                        "(default: $DIGITNET_DATA, else the cache in $DIGITNET_HOME or the user cache folder)")
    p.add_argument("--device", default=DEFAULT_DEVICE,
                   help="cpu, cuda or cuda:N; auto (default) picks CUDA when available, else the CPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (they are off anyway when not a terminal)")


def _add_run_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run folder written by `digitnet train`")


def _add_recipe_options(p: argparse.ArgumentParser) -> None:
    """One option per recipe field, its help naming each recipe's value."""
    for f in overridable_fields():
        values = "; ".join(f"{name}: {getattr(recipe, f.name)}" for name, recipe in RECIPES.items())
        p.add_argument(option_name(f.name), type=FIELD_TYPES[f.type], choices=f.metadata["choices"],
                       help=f"{f.metadata['help']} ({values})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitnet",
        description="Train, evaluate and use the TensorFlow tutorial's handwritten-digit network (784-256-128-10 by default).",
        epilog="Run `digitnet COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"digitnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _train_command(sub)
    _evaluate_command(sub)
    _predict_command(sub)
    _export_command(sub)
    _serve_command(sub)
    _inspect_command(sub)
    _compare_command(sub)
    return parser


def _train_command(sub) -> None:
    t = sub.add_parser(
        "train", help="train a model and write a run folder",
        description="Train the MLP with a recipe, evaluate on the test split after every epoch, and write "
                    "runs/<time>-<recipe>/ (config.json, metrics.csv, plots, model.safetensors, summary.md).",
    )
    t.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET,
                   help="mnist (default), fashion-mnist, or mnist-10k (MNIST's 10k test files: first 8,000 train, "
                        "last 2,000 test; for machines without the training split)")
    t.add_argument("--recipe", choices=(*RECIPE_NAMES, *RECIPE_ALIASES), default=DEFAULT_RECIPE,
                   help=f"{DEFAULT_RECIPE} (default; alias seed): the tutorial's MSE + plain SGD lr 0.001 batch 512; "
                        "best: cross-entropy + AdamW + one-cycle schedule")
    _add_recipe_options(t)
    hidden = ",".join(map(str, DEFAULT_HIDDEN))
    t.add_argument("--hidden", type=_hidden, default=DEFAULT_HIDDEN, metavar="H1,H2,...",
                   help=f"hidden layer sizes (default: {hidden})")
    t.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seeds the initial weights and the shuffle (default: {DEFAULT_SEED})")
    t.add_argument("--no-shuffle", action="store_true",
                   help="keep the data set's order every epoch, as the tutorial's tf.data pipeline does")
    t.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help="fp32 (default, the tutorial's numbers); tf32 (CUDA GPUs only): float32 matrix products "
                        "on TF32 tensor cores, TensorFlow's and JAX's GPU default; bf16: matrix products in "
                        "bfloat16 with fp32 master weights and fp32 evaluation (fast on CPUs with AMX and on GPUs)")
    t.add_argument("--threads", type=_threads, metavar="N|auto",
                   help="CPU threads for the whole run, recorded for --resume (default: every core; the count "
                        "changes the result's last bits): auto takes the cores other processes leave idle at the "
                        "start, faster on a busy machine")
    t.add_argument("--resume", metavar="RUN",
                   help="continue RUN from its last checkpoint with its own config (only --data-dir, --device and "
                        "--no-progress may be given with it); on the same device the result is bit-identical to "
                        "an uninterrupted run")
    t.add_argument("--out", metavar="DIR", help="run folder to write (default: runs/<time>-<recipe>)")
    t.add_argument("--snapshots", type=int, default=0, metavar="K",
                   help="keep the weights every K epochs in RUN/snapshots; `digitnet inspect` then shows how the "
                        "first layer's features formed (default: 0, none)")
    t.add_argument("--tensorboard", metavar="DIR",
                   help="also write TensorBoard logs into DIR/<run name>: losses, accuracy, learning rate, weight "
                        "histograms, first-layer images (needs pip install 'digitnet[tensorboard]')")
    _add_data_options(t)


def _evaluate_command(sub) -> None:
    e = sub.add_parser(
        "evaluate", help="reload a run's model and print its test figures",
        description="Reload RUN/model.safetensors, evaluate it on the run's test split (checked against the "
                    "data hashes in config.json) and print test loss and accuracy.",
    )
    _add_run_argument(e)
    _add_data_options(e)


def _predict_command(sub) -> None:
    p = sub.add_parser(
        "predict", help="read digits in image files",
        description="Read the digits in each image, left to right (PNG, JPEG, BMP, GIF, WebP, TIFF; any size, "
                    "colour or grey, dark-on-light or light-on-dark; one digit or a written number). Each digit is "
                    "prepared as MNIST's were: ink made white on black, cropped, fitted in 20x20, centred by mass "
                    "in 28x28. Confidences: softmax of the outputs for "
                    "cross-entropy models; for the tutorial recipe's MSE model, outputs clipped at 0 and normalised.",
    )
    _add_run_argument(p)
    p.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="image files, or folders of images")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per image: the digits, and per digit its box and ten confidences")
    p.add_argument("--onnx", action="store_true",
                   help="run RUN/model.onnx (see `digitnet export`) with ONNX Runtime; PyTorch is not imported")
    p.add_argument("--show-input", metavar="DIR",
                   help="write the prepared 28x28 image the network saw as DIR/<image name>.input.png")


def _export_command(sub) -> None:
    x = sub.add_parser(
        "export", help="write RUN/model.onnx and check it against PyTorch",
        description="Export RUN's model to ONNX (input: float pixels 0-255, shape (batch, 28, 28), any batch; "
                    "outputs: logits and confidences), then run it with ONNX Runtime on the whole test split and "
                    "require the outputs to equal PyTorch's within 1e-5. Needs pip install 'digitnet[onnx]'.",
    )
    _add_run_argument(x)
    x.add_argument("--data-dir", metavar="DIR", help="where the run's data set is, if not where it was trained")


def _serve_command(sub) -> None:
    s = sub.add_parser(
        "serve", help="serve predictions over HTTP, with a draw-a-digit page",
        description="Serve RUN's model: GET / (draw a digit), GET /inside (every layer's activations while you "
                    "draw), POST /api/predict (an image upload or JSON {\"pixels\": 28x28 of 0-255}), POST "
                    "/api/inspect (the same inputs: activations per layer), GET /api/units/N, GET /api/health.",
    )
    _add_run_argument(s)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0 picks a free one)")
    s.add_argument("--workers", type=int,
                   help="worker processes, each with its own copy of the model (default: the number of CPUs, "
                        "at most 4)")
    s.add_argument("--request-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="a client must send its request head, and then its body, within this many seconds "
                        "(default: 30)")


def _inspect_command(sub) -> None:
    i = sub.add_parser(
        "inspect", help="figures of what RUN's network learned",
        description="Write into DIR (default RUN/inspect): the first layer's weights as images (what each unit looks "
                    "for), the test split in the last hidden layer projected to 2-D (PCA; t-SNE too with "
                    "scikit-learn installed), the most confident mistakes, per-class accuracy, and with "
                    "`train --snapshots K` how the first layer's features formed over training.",
    )
    _add_run_argument(i)
    i.add_argument("--out", metavar="DIR", help="folder for the figures (default: RUN/inspect)")
    i.add_argument("--data-dir", metavar="DIR", help="where the run's test split is, if not where it was trained")
    i.add_argument("--no-progress", action="store_true", help="no progress bars")


def _compare_command(sub) -> None:
    c = sub.add_parser(
        "compare", help="runs side by side: curves and a table",
        description="One figure of the runs' test accuracy and loss by epoch, and a table (the recipe and the "
                    "settings in which the runs differ, final and best accuracy, epochs, seconds per epoch), "
                    "printed and saved beside the figure as FILE.md.",
    )
    c.add_argument("runs", metavar="RUN", nargs="+", help="run folders written by `digitnet train`")
    c.add_argument("--out", metavar="FILE", help="the figure (PNG; default: compare.png); its table goes to FILE.md")
