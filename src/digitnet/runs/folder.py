"""The run folder: written as training goes, valid at every instant, and read back.

runs/<time>-<recipe>/
  config.json        everything needed to repeat the run (recipe, seed, data hashes, versions)
  metrics.csv        one row per epoch
  model.safetensors  the weights after the last finished epoch
  curves.png, confusion.png, per_class.csv, misclassified.png, summary.md  (at the end)
"""

from __future__ import annotations

import csv
import io
import json
import platform
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy
import torch

from digitnet import __version__, report
from digitnet.checkpoint import save_checkpoint
from digitnet.data import Dataset, load_dataset
from digitnet.errors import DataError, ModelFileError
from digitnet.fsutil import write_text_atomic
from digitnet.model import load_model, save_model
from digitnet.training import EpochRecord, TrainConfig, resolve_device

CONFIG, METRICS, MODEL = "config.json", "metrics.csv", "model.safetensors"


def versions() -> dict:
    return {"digitnet": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}


def metrics_csv(history) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f.name for f in fields(EpochRecord)])
    for record in history:
        writer.writerow([repr(v) for v in asdict(record).values()])
    return out.getvalue()


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in rows]
    except (OSError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: cannot read metrics ({exc})") from None


class RunWriter:
    def __init__(self, run_dir: Path, config_dict: dict, history=()):
        self.run_dir = run_dir
        self.config = config_dict
        self.history = list(history)
        for stale in run_dir.glob(".*.tmp"):  # left by a process killed inside a write
            stale.unlink(missing_ok=True)

    @classmethod
    def create(cls, config: TrainConfig, data: Dataset, out: str | Path | None = None) -> "RunWriter":
        run_dir = Path(out) if out is not None else _new_run_dir(config.recipe.name)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ModelFileError(f"--out {run_dir}: folder exists and is not empty; choose a new folder or delete it")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelFileError(f"--out {run_dir}: cannot create the run folder ({exc.strerror})") from None
        config_dict = config.to_dict()
        config_dict.update(
            data={"name": data.name, "files": data.files, "train_size": len(data.x_train),
                  "test_size": len(data.x_test), "class_names": list(data.class_names)},
            device_used=_device_type(config.device), versions=versions(), command=sys.argv, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        write_text_atomic(run_dir / CONFIG, json.dumps(config_dict, indent=2) + "\n")
        return cls(run_dir, config_dict)

    def on_epoch(self, record, state) -> None:
        """Save after a finished epoch: checkpoint first (what resume reads), then model and metrics.

        Each file is replaced atomically, so a kill between two of them leaves every file whole;
        resume rewrites model and metrics from the checkpoint.
        """
        self.history = list(state.history)
        save_checkpoint(self.run_dir, state.model, state.step, record.epoch, self.history)
        save_model(state.model, self.run_dir / MODEL, self.config["architecture"])
        write_text_atomic(self.run_dir / METRICS, metrics_csv(self.history))

    def finish(self, result, data) -> None:
        report.write_report(self.run_dir, self.config, result.history, result.final, data)


def _device_type(name: str) -> str:
    return resolve_device(name).type


def _new_run_dir(recipe_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path("runs") / f"{stamp}-{recipe_name}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = Path("runs") / f"{stamp}-{recipe_name}-{suffix}"
    return run_dir


def load_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise ModelFileError(f"{run_dir}: no such run folder; give a folder written by `digitnet train`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing; {run_dir} is not a digitnet run folder") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: unreadable or not JSON ({exc})") from None


def check_data_matches(config: dict, data, run_dir) -> None:
    """Refuse data whose file hashes differ from those recorded in the run's config.json."""
    recorded = {name: f["sha256"] for name, f in config["data"]["files"].items()}
    loaded = {name: f["sha256"] for name, f in data.files.items()}
    if recorded != loaded:
        raise DataError(f"the data loaded for {config['data']['name']} does not match the hashes in "
                        f"{Path(run_dir) / CONFIG}; give the run's own data with --data-dir")


def load_run(run_dir: str | Path, device="cpu"):
    """(config dict, model) of a run folder, the model checked against the config."""
    config = load_config(run_dir)
    if "architecture" not in config:
        raise ModelFileError(f"{Path(run_dir) / CONFIG}: has no architecture entry")
    return config, load_model(Path(run_dir) / MODEL, config["architecture"], device=device)


def load_run_data(config: dict, run_dir, data_dir=None, progress: bool = True) -> Dataset:
    """The run's own data set (from data_dir, else where it was trained), checked against its hashes."""
    data = load_dataset(config["data"]["name"], data_dir or config.get("data_dir"), progress=progress)
    check_data_matches(config, data, run_dir)
    return data
