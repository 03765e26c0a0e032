"""The command line: parses options and calls the library. Nothing heavy is imported here."""

from __future__ import annotations

import argparse
import sys

from digitnet import __version__

DATASETS = ("mnist", "fashion-mnist", "mnist-10k")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 256,128") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: every hidden size must be a positive integer")
    return sizes


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="read the IDX files (gzipped or plain) from DIR instead of the cache; never downloads "
                        "(default: $DIGITNET_DATA, else the cache in $DIGITNET_HOME or the user cache folder)")
    p.add_argument("--device", default="auto",
                   help="cpu, cuda or cuda:N; auto (default) picks CUDA when available, else the CPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (they are off anyway when not a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitnet",
        description="Train, evaluate and use the TensorFlow tutorial's handwritten-digit network (784-256-128-10).",
        epilog="Run `digitnet COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"digitnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser(
        "train", help="train a model and write a run folder",
        description="Train the MLP with a recipe, evaluate on the test split after every epoch, and write "
                    "runs/<time>-<recipe>/ (config.json, metrics.csv, plots, model.safetensors, summary.md).",
    )
    t.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="mnist (default), fashion-mnist, or mnist-10k (MNIST's 10k test files: first 8,000 train, "
                        "last 2,000 test; for machines without the training split)")
    t.add_argument("--recipe", choices=("seed", "best"), default="seed",
                   help="seed (default): the tutorial's MSE + plain SGD lr 0.001 batch 512; "
                        "best: cross-entropy + AdamW + one-cycle schedule")
    t.add_argument("--epochs", type=int, help="number of epochs (default: 30)")
    t.add_argument("--batch-size", type=int, help="examples per step (seed: 512; the last partial batch is kept)")
    t.add_argument("--lr", type=float, help="learning rate (peak rate for the onecycle schedule; seed: 0.001)")
    t.add_argument("--loss", choices=("mse-sum", "cross-entropy"),
                   help="mse-sum: sum((out - onehot)^2)/batch as the tutorial; cross-entropy: softmax cross-entropy")
    t.add_argument("--optimizer", choices=("sgd", "adamw"), help="sgd (plain, see --momentum) or adamw")
    t.add_argument("--momentum", type=float, help="SGD momentum (seed: 0)")
    t.add_argument("--weight-decay", type=float, help="weight decay (SGD: L2 in the gradient; AdamW: decoupled)")
    t.add_argument("--schedule", choices=("constant", "onecycle"),
                   help="constant, or onecycle: linear warm-up then cosine decay to zero, stepped every batch")
    t.add_argument("--warmup-fraction", type=float, help="share of all steps spent warming up (onecycle)")
    t.add_argument("--label-smoothing", type=float, help="label smoothing for cross-entropy")
    t.add_argument("--hidden", type=_hidden, default=(256, 128), metavar="H1,H2,...",
                   help="hidden layer sizes (default: 256,128)")
    t.add_argument("--seed", type=int, default=0, help="seeds the initial weights and the shuffle (default: 0)")
    t.add_argument("--no-shuffle", action="store_true",
                   help="keep the data set's order every epoch, as the tutorial's tf.data pipeline does")
    t.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="fp32 (default, the tutorial's numbers) or bf16: matrix products in bfloat16 with fp32 "
                        "master weights and fp32 evaluation (fast on CPUs with AMX and on GPUs)")
    t.add_argument("--resume", metavar="RUN",
                   help="continue RUN from its last checkpoint with its own config (only --data-dir, --device and "
                        "--no-progress may be given with it); on the same device the result is bit-identical to "
                        "an uninterrupted run")
    t.add_argument("--out", metavar="DIR", help="run folder to write (default: runs/<time>-<recipe>)")
    _add_data_options(t)

    e = sub.add_parser(
        "evaluate", help="reload a run's model and print its test figures",
        description="Reload RUN/model.safetensors, evaluate it on the run's test split (checked against the "
                    "data hashes in config.json) and print test loss and accuracy.",
    )
    e.add_argument("run", metavar="RUN", help="a run folder written by `digitnet train`")
    _add_data_options(e)

    p = sub.add_parser(
        "predict", help="read digits in image files",
        description="Predict the digit in each image (PNG, JPEG, BMP, GIF, WebP, TIFF; any size, colour or grey, "
                    "dark-on-light or light-on-dark). Each image is prepared as MNIST was: ink made white on black, "
                    "cropped, fitted in 20x20, centred by mass in 28x28. Confidences: softmax of the outputs for "
                    "cross-entropy models; for the seed recipe's MSE model, outputs clipped at 0 and normalised.",
    )
    p.add_argument("run", metavar="RUN", help="a run folder written by `digitnet train`")
    p.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="image files, or folders of images")
    p.add_argument("--json", action="store_true", help="print one JSON object per image, with all ten confidences")
    p.add_argument("--onnx", action="store_true",
                   help="run RUN/model.onnx (see `digitnet export`) with ONNX Runtime; PyTorch is not imported")
    p.add_argument("--show-input", metavar="DIR",
                   help="write the prepared 28x28 image the network saw as DIR/<image name>.input.png")

    x = sub.add_parser(
        "export", help="write RUN/model.onnx and check it against PyTorch",
        description="Export RUN's model to ONNX (input: float pixels 0-255, shape (batch, 28, 28), any batch; "
                    "outputs: logits and confidences), then run it with ONNX Runtime on the whole test split and "
                    "require the outputs to equal PyTorch's within 1e-5. Needs pip install 'digitnet[onnx]'.",
    )
    x.add_argument("run", metavar="RUN", help="a run folder written by `digitnet train`")
    x.add_argument("--format", choices=("onnx",), default="onnx", help="the format to write (onnx)")
    x.add_argument("--data-dir", metavar="DIR", help="where the run's data set is, if not where it was trained")

    s = sub.add_parser(
        "serve", help="serve predictions over HTTP, with a draw-a-digit page",
        description="Serve RUN's model: GET / (draw a digit), POST /api/predict (an image upload or JSON "
                    "{\"pixels\": 28x28 of 0-255}), GET /api/health.",
    )
    s.add_argument("run", metavar="RUN", help="a run folder written by `digitnet train`")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0 picks a free one)")
    s.add_argument("--workers", type=int,
                   help="worker processes, each with its own copy of the model (default: the number of CPUs, "
                        "at most 4)")
    return parser


def _saved_value(option: str, config: dict):
    """The value an option had in a run's config.json, in the parser's terms."""
    recipe = config["recipe"]
    saved = {"dataset": config["dataset"], "recipe": recipe["name"], "hidden": tuple(config["hidden"]),
             "seed": config["seed"], "no_shuffle": not config["shuffle"], "precision": config.get("precision", "fp32")}
    return saved[option] if option in saved else recipe[option]


RECIPE_OPTIONS = ("epochs", "batch_size", "lr", "loss", "optimizer", "momentum", "weight_decay", "schedule",
                  "warmup_fraction", "label_smoothing")
COMPUTATION_OPTIONS = ("dataset", "recipe", *RECIPE_OPTIONS, "hidden", "seed", "no_shuffle", "precision")


def _refuse_changes_on_resume(args, parser_defaults: dict) -> None:
    """Options given with --resume must repeat the run's own values (or be left out)."""
    from digitnet.errors import ConfigError
    from digitnet.runs import load_config

    config = load_config(args.resume)
    changed = [name for name in COMPUTATION_OPTIONS
               if getattr(args, name) != parser_defaults[name] and getattr(args, name) != _saved_value(name, config)]
    if args.out is not None:
        changed.append("out")
    if changed:
        flags = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise ConfigError(f"--resume continues {args.resume} with its own config; drop {flags} "
                          "(start a new run to change them)")


def cmd_train(args) -> int:
    from digitnet.report import TABLE_HEADER, format_epoch
    from digitnet.training import PeerFailure, TrainingDiverged, TrainingInterrupted, resume, train

    def show(record, state):
        if not shown:
            print(TABLE_HEADER, flush=True)
            shown.append(True)
        print(format_epoch(record), flush=True)

    shown: list[bool] = []
    try:
        if args.resume:
            _refuse_changes_on_resume(args, args.defaults)
            result = resume(args.resume, data_dir=args.data_dir, device=None if args.device == "auto" else args.device,
                            progress=not args.no_progress, on_epoch=show)
        else:
            overrides = {k: getattr(args, k) for k in ("batch_size", "lr", "loss", "optimizer", "momentum",
                                                       "weight_decay", "schedule", "warmup_fraction",
                                                       "label_smoothing")}
            result = train(args.recipe, args.dataset, data_dir=args.data_dir, out=args.out, epochs=args.epochs,
                           hidden=args.hidden, seed=args.seed, shuffle=not args.no_shuffle, device=args.device,
                           precision=args.precision, progress=not args.no_progress, on_epoch=show, **overrides)
    except (TrainingInterrupted, TrainingDiverged, PeerFailure) as exc:
        kept = (f"epochs 1-{exc.saved_epochs} are saved in {exc.run_dir}" if exc.saved_epochs
                else f"no epoch had finished; {exc.run_dir} holds only its config")
        if isinstance(exc, TrainingInterrupted):
            print(f"digitnet: interrupted: {exc}; {kept}; resume with: digitnet train --resume {exc.run_dir}",
                  file=sys.stderr)
            return 128 + exc.signum
        if isinstance(exc, PeerFailure):
            if exc.saved_epochs:
                kept += f"; resume with the same torchrun command and --resume {exc.run_dir}"
            print(f"digitnet: error: {exc}; {kept}", file=sys.stderr)
            return 4
        print(f"digitnet: error: {exc}; {kept}", file=sys.stderr)
        return 3
    if not result.is_main:
        return 0
    last = result.history[-1]
    print(f"\nfinal test accuracy {100 * last.test_accuracy:.2f}%; run folder: {result.run_dir}")
    print(f"next: digitnet evaluate {result.run_dir}")
    return 0


def cmd_evaluate(args) -> int:
    from digitnet.evaluate import evaluate_run

    evaluation, last, trained_on = evaluate_run(args.run, data_dir=args.data_dir, device=args.device,
                                                progress=not args.no_progress)
    print(f"test loss {evaluation.loss:.6f}  test accuracy {100 * evaluation.accuracy:.2f}%")
    if last is not None:
        same = last["test_loss"] == evaluation.loss and last["test_accuracy"] == evaluation.accuracy
        verdict = "identical to" if same else "DIFFERENT from"
        print(f"{verdict} epoch {last['epoch']} in metrics.csv "
              f"(test loss {last['test_loss']:.6f}, test accuracy {100 * last['test_accuracy']:.2f}%)")
        if not same and trained_on and trained_on != evaluation.device:
            print(f"(trained on {trained_on}, evaluated on {evaluation.device}: their kernels round differently)")
    return 0


def cmd_predict(args) -> int:
    import json

    from digitnet.errors import DigitnetError
    from digitnet.imageprep import image_files

    if args.onnx:
        from digitnet.export import OnnxPredictor

        predictor = OnnxPredictor(args.run)
    else:
        from digitnet.predict import Predictor

        predictor = Predictor(args.run)
    files, errors = image_files(args.images)
    for message in errors:
        print(f"digitnet: error: {message}", file=sys.stderr)
    for path in files:
        try:
            prediction = predictor.predict_image(path, str(path))
        except DigitnetError as exc:
            errors.append(str(exc))
            print(f"digitnet: error: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": str(path), "error": str(exc)}), flush=True)
            continue
        if args.show_input:
            _write_input(prediction.prepared, args.show_input, path)
        if args.json:
            record = {"file": str(path), **prediction.to_dict()}
            del record["prepared"]
            print(json.dumps(record), flush=True)
        else:
            print(f"{path}\t{prediction.digit}\t{100 * prediction.confidence:.1f}%", flush=True)
    return 1 if errors else 0


def _write_input(pixels, folder: str, source) -> None:
    from pathlib import Path

    from PIL import Image

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(out / f"{Path(source).name}.input.png")


def cmd_export(args) -> int:
    from digitnet.export import export_onnx

    path, difference = export_onnx(args.run, data_dir=args.data_dir)
    print(f"wrote {path}; ONNX Runtime matches PyTorch on the test split within {difference:.1e} (limit 1e-5)")
    return 0


def cmd_serve(args) -> int:
    from digitnet.serve.app import run_server

    run_server(args.run, host=args.host, port=args.port, workers=args.workers)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        train_parser = next(a for a in parser._actions if a.dest == "command").choices["train"]
        args.defaults = {a.dest: a.default for a in train_parser._actions}
    from digitnet.errors import DigitnetError

    handlers = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export,
                "serve": cmd_serve}
    try:
        return handlers[args.command](args)
    except DigitnetError as exc:
        print(f"digitnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitnet: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"digitnet: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1


def describe_os_error(exc: OSError) -> str:
    """One line for a failed read or write: what, why, and the fix."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return (f"{where}no space left on device; free some space or write the run elsewhere with --out "
                "(files already saved are intact)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}{exc.strerror}; choose a folder you can write to (--out)"
    return f"{where}{exc.strerror or exc}"
