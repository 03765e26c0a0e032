"""train() and resume(): a training run with its run folder, the Python face of `digitnet train`."""

from __future__ import annotations

from pathlib import Path

from digitnet.checkpoint import load_checkpoint
from digitnet.data import Dataset, load_dataset
from digitnet.distributed import Distributed, from_environment, is_collective_failure
from digitnet.recipes import Recipe, get_recipe
from digitnet.errors import ConfigError, DigitnetError, describe_os_error
from digitnet.model import load_model
from digitnet.runs.evaluate import evaluate_on_test_split
from digitnet.runs.folder import MODEL, RunWriter
from digitnet.runs.reading import check_data_matches, check_printed_matches, load_config, load_run_data
from digitnet.settings import (DEFAULT_DATASET, DEFAULT_DEVICE, DEFAULT_HIDDEN, DEFAULT_PRECISION, DEFAULT_RECIPE,
                               DEFAULT_SEED)
from digitnet.training.stops import StopSignals
from digitnet.training.threads import resolve_threads
from digitnet.training import (EpochRecord, EpochState, PeerFailure, RunStopped, SaveFailed, TrainConfig, TrainResult,
                               check_precision, fit, resolve_device)


def _fit_into(writer, config, data, on_epoch, progress, checkpoint, dist: Distributed) -> TrainResult:
    """fit() with a run folder written (by rank 0) after every epoch and reported at the end.

    A stop carries the run folder and its last saved epoch, so the message can say what is kept
    and how to resume. Only torch.distributed's own errors become a peer failure.
    """
    def after_epoch(record: EpochRecord, state: EpochState) -> None:
        if dist.is_main:
            writer.on_epoch(record, state)
            if on_epoch is not None:
                on_epoch(record, state)

    try:
        try:
            result = fit(config, data, on_epoch=after_epoch, progress=progress and dist.is_main,
                         checkpoint=checkpoint, dist=dist)
        except RuntimeError as exc:
            if not (dist.active and is_collective_failure(exc)):
                raise
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PeerFailure(f"rank {dist.rank}: another process of this run failed or stopped answering "
                              f"({reason[:160]})") from None
        except OSError as exc:  # a run folder write failed: what was saved before stays whole
            raise SaveFailed(describe_os_error(exc)) from None
    except RunStopped as stop:
        stop.in_run(writer.run_dir, writer.saved_epochs)
        # Not after a peer failure: torchrun is tearing the group down and would kill this process
        # before its message is out; the resume writes the report.
        if dist.is_main and writer.saved_epochs and not isinstance(stop, SaveFailed | PeerFailure):
            _report_stop(writer, config, data, stop)
        raise stop from None
    if dist.is_main:
        writer.finish(result, data)
    result.run_dir, result.is_main = str(writer.run_dir), dist.is_main
    return result


def _report_stop(writer: RunWriter, config: TrainConfig, data: Dataset, stop: RunStopped) -> None:
    """Plots and summary of the saved epochs, so a stopped run can be read before it is resumed.
    A failure here (a full disk) is added to the stop's message rather than hiding it; a second
    Ctrl-C or SIGTERM while the plots are drawn is held off, so the message still comes out."""
    with StopSignals():
        try:
            device = resolve_device(config.device)
            model = load_model(writer.run_dir / MODEL, writer.config["architecture"], device=device)
            writer.report_stop(evaluate_on_test_split(model, data, writer.config, device), data,
                               stop.describe())
        except (OSError, DigitnetError) as exc:
            stop.args = (f"{stop} (the report of the saved epochs could not be written: {exc})",)


class _RankWriter:
    """What ranks other than 0 hold in place of a RunWriter: they write nothing."""

    def __init__(self, out):
        self.run_dir, self.history, self.saved_epochs = Path(out or "."), [], 0

    def close(self) -> None:
        pass


def train(recipe: str | Recipe = DEFAULT_RECIPE, dataset: str | Dataset = DEFAULT_DATASET, *, data_dir=None, out=None,
          epochs=None, hidden=DEFAULT_HIDDEN, seed: int = DEFAULT_SEED, shuffle: bool = True,
          device: str = DEFAULT_DEVICE, precision: str = DEFAULT_PRECISION, threads: int | str | None = None,
          progress: bool = True, write_run: bool = True, on_epoch=None, snapshots: int = 0, **recipe_overrides
          ) -> TrainResult:
    """Train a model and (by default) write a run folder; the Python face of `digitnet train`.

    dataset is a name (loaded and verified) or a Dataset already in memory. Under torchrun, every
    process calls this; rank 0 downloads, prints and writes the run folder. snapshots=K keeps the
    weights every K epochs in RUN/snapshots (for `digitnet inspect`). threads: CPU threads for the
    whole run (None: torch's current count; "auto": the cores idle at the start), recorded.

    >>> result = train("tutorial", "fashion-mnist", data_dir="data/fashion-mnist", epochs=3)  # doctest: +SKIP
    >>> result.history[-1].test_accuracy  # doctest: +SKIP
    """
    if isinstance(recipe, str):
        recipe = get_recipe(recipe, epochs=epochs, **recipe_overrides)
    resolved = resolve_device(device)  # a bad --device or --precision fails here, before the data loads
    check_precision(precision, resolved)
    dist = from_environment(resolved)
    try:
        data_dir = None if data_dir is None else str(Path(data_dir).expanduser().resolve())
        if isinstance(dataset, Dataset):
            data = dataset
        else:
            with dist.main_first():
                data = load_dataset(dataset, data_dir, progress=progress and dist.is_main)
        config = TrainConfig(recipe, data.name, data_dir, tuple(hidden), seed, shuffle, device, precision,
                             resolve_threads(threads))
        if not write_run:
            return fit(config, data, on_epoch=on_epoch, progress=progress and dist.is_main, dist=dist)
        if type(snapshots) is not int or snapshots < 0:
            raise ConfigError(f"--snapshots {snapshots}: give a number of epochs (0: none)")
        writer = RunWriter.create(config, data, out, snapshots) if dist.is_main else _RankWriter(out)
        try:
            return _fit_into(writer, config, data, on_epoch, progress, None, dist)
        finally:
            writer.close()
    finally:
        dist.close()


def resume(run_dir, *, data_dir=None, device: str | None = None, progress: bool = True, on_epoch=None,
           dataset: Dataset | None = None) -> TrainResult:
    """Continue a run folder from its last checkpoint with its own config (from scratch if it has none).

    On the same device, the result is bit-identical to the run never interrupted. dataset: the
    run's data set already in memory (checked against the run's hashes), else it is loaded.
    """
    saved = load_config(run_dir)
    config = TrainConfig.from_dict(saved)
    if device is not None:
        config.device = device
    resolved = resolve_device(config.device)
    check_precision(config.precision, resolved)
    dist = from_environment(resolved)
    try:
        if dataset is not None and dataset.name == saved["data"]["name"]:
            check_data_matches(saved, dataset, run_dir)
            data = dataset
        else:
            with dist.main_first():
                data = load_run_data(saved, run_dir, data_dir, progress=progress and dist.is_main)
        check_printed_matches(saved, run_dir)
        writer = RunWriter(Path(run_dir), saved) if dist.is_main else _RankWriter(run_dir)
        try:
            checkpoint = load_checkpoint(run_dir, saved)  # read under the lock
            if checkpoint and dist.is_main:
                writer.restore(checkpoint)
            return _fit_into(writer, config, data, on_epoch, progress, checkpoint, dist)
        finally:
            writer.close()
    finally:
        dist.close()
