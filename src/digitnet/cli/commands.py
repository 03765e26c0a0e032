"""The CLI's commands: each parses nothing, calls the library, prints, returns an exit code.

Each imports its library modules inside the handler: `digitnet --help` and option errors then
answer without loading PyTorch.
"""

from __future__ import annotations

import contextlib
import gc
import sys

from digitnet.recipes import canonical_name, overridable_fields
from digitnet.settings import DEFAULT_DEVICE, DEFAULT_PRECISION, RUN_CONFIG


def _saved_value(option: str, config: dict):
    """The value an option had in a run's config.json, in the parser's terms."""
    recipe = config["recipe"]
    saved = {"dataset": config["dataset"], "recipe": canonical_name(recipe["name"]), "hidden": tuple(config["hidden"]),
             "seed": config["seed"], "no_shuffle": not config["shuffle"],
             "precision": config.get("precision", DEFAULT_PRECISION), "threads": config.get("threads")}
    return saved[option] if option in saved else recipe[option]


RECIPE_OPTIONS = tuple(f.name for f in overridable_fields())
COMPUTATION_OPTIONS = ("dataset", "recipe", *RECIPE_OPTIONS, "hidden", "seed", "no_shuffle", "precision", "threads")


def _refuse_changes_on_resume(args, parser_defaults: dict) -> None:
    """Options given with --resume must repeat the run's own values (or be left out)."""
    from digitnet.errors import ConfigError
    from digitnet.runs import load_config

    config = load_config(args.resume)
    given = dict(vars(args), recipe=canonical_name(args.recipe))
    changed = [name for name in COMPUTATION_OPTIONS
               if getattr(args, name) != parser_defaults[name] and given[name] != _saved_value(name, config)]
    if args.out is not None:
        changed.append("out")
    if changed:
        flags = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise ConfigError(f"--resume continues {args.resume} with its own config; drop {flags} "
                          "(start a new run to change them)")


@contextlib.contextmanager
def imports_for_good():
    """Around a command's heavy imports, whose ~170k objects (torch's) live until the process ends:
    no cyclic garbage collection while they load, and none of them walked again by a later one
    (gc.freeze). Each full collection walked them all: in a 5-epoch run three took 0.17 s, none
    with this (benchmarks/cli_overheads.py); in a server, each such pause would delay the requests
    in flight."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _data_to_read(args) -> tuple[str, str | None] | None:
    """The data set (name, folder) a train command reads: its options', or with --resume its run's,
    from config.json read here without torch (None where that fails: resume then says why)."""
    if not args.resume:
        return args.dataset, args.data_dir
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(args.resume) / RUN_CONFIG).read_text(encoding="utf-8"))
        return str(config["data"]["name"]), args.data_dir or config.get("data_dir")
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def cmd_train(args) -> int:
    from digitnet.data.datasets import BackgroundLoad

    wanted = _data_to_read(args)
    reading = BackgroundLoad(*wanted) if wanted else None  # read while torch imports
    with imports_for_good():
        from digitnet.report import TABLE_HEADER, format_epoch
        from digitnet.runs import resume, train
        from digitnet.training import RunStopped

    data = reading.result() if reading is not None else None  # done before --threads auto counts idle cores

    def show(record, state):
        if not shown:
            print(TABLE_HEADER, flush=True)
            shown.append(True)
        print(format_epoch(record), flush=True)

    shown: list[bool] = []
    if args.snapshots < 0:
        from digitnet.errors import ConfigError

        raise ConfigError(f"--snapshots {args.snapshots}: give a number of epochs (0: none)")
    log = _tensorboard(args)
    on_epoch = show if log is None else (lambda record, state: (show(record, state), log(record, state)))
    try:
        if args.resume:
            _refuse_changes_on_resume(args, args.defaults)
            result = resume(args.resume, data_dir=args.data_dir,
                            device=None if args.device == DEFAULT_DEVICE else args.device,
                            progress=not args.no_progress, on_epoch=on_epoch, dataset=data)
        else:
            if args.threads == "auto":
                from digitnet.training.threads import available_cores, resolve_threads

                args.threads = resolve_threads("auto")
                print(f"threads: {args.threads} of {available_cores()} cores (the ones idle now; kept for "
                      "--resume)", file=sys.stderr)
            overrides = {name: getattr(args, name) for name in RECIPE_OPTIONS if name != "epochs"}
            result = train(args.recipe, data or args.dataset, data_dir=args.data_dir, out=args.out, epochs=args.epochs,
                           hidden=args.hidden, seed=args.seed, shuffle=not args.no_shuffle, device=args.device,
                           precision=args.precision, threads=args.threads, progress=not args.no_progress,
                           on_epoch=on_epoch, snapshots=args.snapshots, **overrides)
    except RunStopped as stop:
        print(f"digitnet: {stop.describe()}", file=sys.stderr)
        return stop.exit_code
    finally:
        if log is not None:
            log.close()
    if not result.is_main:
        return 0
    last = result.history[-1]
    print(f"\nfinal test accuracy {100 * last.test_accuracy:.2f}%; run folder: {result.run_dir}")
    print(f"next: digitnet evaluate {result.run_dir}")
    return 0


def _tensorboard(args):
    """The TensorBoard callback for --tensorboard DIR (None without it), named after the run folder."""
    if not args.tensorboard:
        return None
    from pathlib import Path

    from digitnet.tensorboard_log import TensorBoardLog

    name = Path(args.resume or args.out or f"{canonical_name(args.recipe)}-seed{args.seed}").name
    return TensorBoardLog(args.tensorboard, name)


def cmd_evaluate(args) -> int:
    with imports_for_good():
        from digitnet.runs import evaluate_run

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

    with imports_for_good():
        if args.onnx:
            from digitnet.export import OnnxPredictor as Predictor
        else:
            from digitnet.predict import Predictor
    predictor = Predictor(args.run)
    files, errors = image_files(args.images)
    for message in errors:
        print(f"digitnet: error: {message}", file=sys.stderr)
    for path in files:
        try:
            reading = predictor.read_image(path, str(path))
        except DigitnetError as exc:
            errors.append(str(exc))
            print(f"digitnet: error: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"file": str(path), "error": str(exc)}), flush=True)
            continue
        if args.show_input:
            _write_inputs(reading, args.show_input, path)
        if args.json:
            record = {"file": str(path), **reading.to_dict()}
            for item in (record, *record["items"]):
                item.pop("prepared", None)
            print(json.dumps(record), flush=True)
        else:
            shares = " ".join(f"{100 * p.confidence:.1f}%" for p in reading.predictions)
            print(f"{path}\t{reading.digits}\t{shares}", flush=True)
    return 1 if errors else 0


def _write_inputs(reading, folder: str, source) -> None:
    """DIR/<image>.input.png for one digit; DIR/<image>.<i>.input.png for each of several."""
    from pathlib import Path

    from PIL import Image

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    several = len(reading.predictions) > 1
    for i, prediction in enumerate(reading.predictions):
        suffix = f".{i + 1}" if several else ""
        Image.fromarray(prediction.prepared).save(out / f"{Path(source).name}{suffix}.input.png")


def cmd_export(args) -> int:
    with imports_for_good():
        from digitnet.export import export_onnx

    path, difference = export_onnx(args.run, data_dir=args.data_dir)
    print(f"wrote {path}; ONNX Runtime matches PyTorch on the test split within {difference:.1e} (limit 1e-5)")
    return 0


def cmd_serve(args) -> int:
    with imports_for_good():
        from digitnet.serve.server import run_server

    run_server(args.run, host=args.host, port=args.port, workers=args.workers, request_timeout=args.request_timeout)
    return 0


def cmd_inspect(args) -> int:
    with imports_for_good():
        from digitnet.inspection import inspect_run

    for path in inspect_run(args.run, args.out, data_dir=args.data_dir, progress=not args.no_progress):
        print(f"wrote {path}")
    return 0


def cmd_compare(args) -> int:
    with imports_for_good():
        from digitnet.comparison import compare_runs

    table, figure, table_file = compare_runs(args.runs, args.out)
    print(table, end="")
    print(f"wrote {figure} and {table_file}")
    return 0
