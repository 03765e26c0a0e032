"""Reading a run folder back: its config.json (checked once, here, for everything evaluate,
predict, serve and resume read from it), its metrics, its model and its data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from digitnet.data import Dataset, load_dataset
from digitnet.errors import DataError, ModelFileError
from digitnet.fsutil import FolderLock
from digitnet.model import architecture_problem, load_model
from digitnet.runs.folder import CONFIG, METRICS, MODEL, holds_no_run
from digitnet.settings import CLASSES
from digitnet.training import TrainConfig


def load_config(run_dir: str | Path) -> dict:
    """A run folder's config.json, checked once here for everything evaluate, predict, serve and
    resume read from it (ModelFileError naming the first problem)."""
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise ModelFileError(f"{run_dir}: no such run folder; give a folder written by `digitnet train`")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if (Path(run_dir) / FolderLock.LOCK_NAME).exists() and holds_no_run(Path(run_dir)):
            raise ModelFileError(f"{run_dir}: the run was stopped before it began (no {CONFIG}); start it again "
                                 f"with --out {run_dir}") from None
        raise ModelFileError(f"{path}: missing; {run_dir} is not a digitnet run folder") from None
    except (OSError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise ModelFileError(f"{path}: unreadable or not JSON ({reason})") from None
    problem = config_problem(config)
    if problem:
        raise ModelFileError(f"{path}: {problem}; restore the run's own config.json or train again")
    return config


def _data_problem(data) -> str | None:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return "data must be an object with the data set's name"
    files = data.get("files")
    if not isinstance(files, dict) or not all(isinstance(f, dict) and isinstance(f.get("sha256"), str)
                                              for f in files.values()):
        return "data.files must map each file to its sha256"
    names = data.get("class_names")
    if not (isinstance(names, list) and len(names) == CLASSES and all(isinstance(n, str) for n in names)):
        return f"data.class_names must be {CLASSES} names"
    if not all(type(data.get(key)) is int and data[key] >= 0 for key in ("train_size", "test_size")):
        return "data.train_size and data.test_size must be counts"
    return None


def _snapshots_problem(config: dict) -> str | None:
    every = config.get("snapshots", 0)
    return None if type(every) is int and every >= 0 else "snapshots must be a number of epochs (0: none)"


def config_problem(config) -> str | None:
    """What is wrong with a config.json's contents, or None."""
    if not isinstance(config, dict):
        return "must hold a JSON object"
    problem = architecture_problem(config.get("architecture"))
    if problem:
        return f"architecture {problem}"
    try:
        TrainConfig.from_dict(config)
    except ModelFileError as exc:
        return str(exc).removeprefix("config.json").lstrip(": ")
    return _data_problem(config.get("data")) or _snapshots_problem(config)


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in rows]
    except (OSError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: cannot read metrics ({exc})") from None


def check_data_matches(config: dict, data, run_dir) -> None:
    """Refuse data whose file hashes differ from those recorded in the run's config.json (for the
    files loaded: evaluate loads only the test split's)."""
    loaded = {name: f["sha256"] for name, f in data.files.items()}
    recorded = {name: f["sha256"] for name, f in config["data"]["files"].items() if name in loaded}
    if recorded != loaded:
        raise DataError(f"the data loaded for {config['data']['name']} does not match the hashes in "
                        f"{Path(run_dir) / CONFIG}; give the run's own data with --data-dir")


def check_printed_matches(config: dict, run_dir) -> None:
    """Refuse to resume a run trained on printed digits if they render differently here (another
    matplotlib or Pillow): the run could not be repeated bit for bit."""
    if "print" not in config["recipe"]["augment"]:
        return
    from digitnet.data.printed import glyph_bank  # lazy: rendering needs scipy and the fonts, only here

    printed = config["data"].get("printed")
    recorded = printed.get("sha256") if isinstance(printed, dict) else None
    if recorded != glyph_bank().sha256:
        raise DataError(f"the printed digits rendered here from matplotlib's fonts differ from those recorded in "
                        f"{Path(run_dir) / CONFIG} (another matplotlib or Pillow?); resume where the run began, "
                        "or start a new run")


def load_run(run_dir: str | Path, device="cpu"):
    """(config dict, model) of a run folder, the model checked against the config."""
    config = load_config(run_dir)
    return config, load_model(Path(run_dir) / MODEL, config["architecture"], device=device)


def load_run_data(config: dict, run_dir, data_dir=None, progress: bool = True, test_only: bool = False) -> Dataset:
    """The run's own data set (from data_dir, else where it was trained), checked against its hashes;
    with test_only, its test split alone."""
    data = load_dataset(config["data"]["name"], data_dir or config.get("data_dir"), progress=progress,
                        test_only=test_only)
    check_data_matches(config, data, run_dir)
    return data
