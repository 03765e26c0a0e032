"""The run folder, written as training goes and valid at every instant (reading.py reads it back).

runs/<time>-<recipe>/
  config.json        everything needed to repeat the run (recipe, seed, data hashes, versions)
  metrics.csv        one row per epoch
  model.safetensors  the weights after the last finished epoch
  checkpoint.safetensors  what resume continues from
  curves.png, confusion.png, per_class.csv, misclassified.png, summary.md  (at the end, or at a stop)
  snapshots/epoch-0005.safetensors  with --snapshots 5: the weights after epochs 5, 10, ...
  .lock              held by the one process writing the folder

After any kill, one resume makes the folder complete: model and metrics.csv are those of the last
checkpointed epoch and the report files exist.
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
from digitnet.data import Dataset
from digitnet.errors import ModelFileError
from digitnet.fsutil import FolderBusy, FolderLock, write_text_atomic
from digitnet.model import save_model
from digitnet.settings import RUN_CONFIG
from digitnet.training import EpochRecord, TrainConfig, resolve_device

CONFIG, METRICS, MODEL = RUN_CONFIG, "metrics.csv", "model.safetensors"
SNAPSHOTS = "snapshots"  # with `train --snapshots K`: the weights every K epochs, for `inspect`


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


def _lock(run_dir: Path, what: str) -> FolderLock:
    try:
        return FolderLock(run_dir).acquire()
    except FolderBusy as busy:
        raise ModelFileError(f"{what} {run_dir}: {busy}; wait for it to finish or stop it first") from None
    except OSError as exc:
        raise ModelFileError(f"{what} {run_dir}: cannot lock the run folder ({exc.strerror or exc})") from None


def holds_no_run(run_dir: Path) -> bool:
    """Empty, or only what a process killed before writing config.json leaves (lock, temporaries)."""
    return all(p.name == FolderLock.LOCK_NAME or p.name.endswith(".tmp") for p in run_dir.iterdir())


class RunWriter:
    """Writes one run folder, holding its lock from creation (or resume) until the process ends or
    close() is called: a second `train --resume` of a folder still training is refused."""

    def __init__(self, run_dir: Path, config_dict: dict, lock: FolderLock | None = None):
        self.run_dir = run_dir
        self.lock = lock or _lock(run_dir, "--resume")
        self.config = config_dict
        self.history = []
        self.saved_epochs = 0  # epochs in the checkpoint on disk
        for stale in run_dir.glob(".*.tmp"):  # left by a process killed inside a write (we hold the lock)
            stale.unlink(missing_ok=True)

    @classmethod
    def create(cls, config: TrainConfig, data: Dataset, out: str | Path | None = None, snapshots: int = 0
               ) -> "RunWriter":
        run_dir = Path(out) if out is not None else _new_run_dir(config.recipe.name)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelFileError(f"--out {run_dir}: cannot create the run folder ({exc.strerror})") from None
        lock = _lock(run_dir, "--out")
        if not holds_no_run(run_dir):  # checked under the lock: two runs never share a folder
            lock.release()
            raise ModelFileError(f"--out {run_dir}: folder exists and is not empty; choose a new folder or delete it")
        config_dict = config.to_dict()
        config_dict.update(
            data={"name": data.name, "files": data.files, "train_size": len(data.x_train),
                  "test_size": len(data.x_test), "class_names": list(data.class_names)},
            device_used=_device_type(config.device), versions=versions(), command=sys.argv, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            snapshots=snapshots,
        )
        if "print" in config.recipe.augment:
            from digitnet.data.printed import glyph_bank  # lazy: rendering needs scipy and the fonts, only here

            config_dict["data"]["printed"] = glyph_bank().describe()
        write_text_atomic(run_dir / CONFIG, json.dumps(config_dict, indent=2) + "\n")
        return cls(run_dir, config_dict, lock=lock)

    def on_epoch(self, record, state) -> None:
        """Save after a finished epoch: checkpoint first (what resume reads), then model and metrics.

        Each file is replaced atomically, so a kill between two of them leaves every file whole;
        restore() at the next resume brings model and metrics level with the checkpoint.
        """
        self.history = list(state.history)
        save_checkpoint(self.run_dir, state.model, state.step, record.epoch, self.history, self.config)
        self.saved_epochs = record.epoch
        self._write_model_and_metrics(state.model, self.history)
        every = self.config.get("snapshots") or 0
        if every and record.epoch % every == 0:
            (self.run_dir / SNAPSHOTS).mkdir(exist_ok=True)
            save_model(state.model, self.run_dir / SNAPSHOTS / f"epoch-{record.epoch:04d}.safetensors",
                       self.config["architecture"])

    def restore(self, checkpoint: dict) -> None:
        """Bring model and metrics.csv level with the checkpoint resume continues from: a kill
        between the checkpoint's write and theirs left them one epoch behind."""
        self.history = [EpochRecord(**r) for r in checkpoint["history"]]
        self.saved_epochs = checkpoint["epoch"]
        self._write_model_and_metrics(checkpoint["model"], self.history)

    def _write_model_and_metrics(self, model, history) -> None:
        save_model(model, self.run_dir / MODEL, self.config["architecture"])
        write_text_atomic(self.run_dir / METRICS, metrics_csv(history))

    def finish(self, result, data) -> None:
        """Complete the folder with the report (model and metrics are current: each epoch wrote
        them, and a resume restores them first, even with no epoch left to train)."""
        report.write_report(self.run_dir, self.config, result.history, result.final, data)

    def report_stop(self, final, data, stop_line: str) -> None:
        """The report of a stopped run: its saved epochs, evaluated with the saved model (`final`)."""
        report.write_report(self.run_dir, self.config, self.history, final, data, stopped=stop_line)

    def close(self) -> None:
        self.lock.release()


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
