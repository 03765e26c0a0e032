"""The run folder's own protections, on small synthetic runs: one writer at a time, every byte resume
reads covered by a check, the umask followed, and a folder complete after any stop."""

import json
import os
import shutil
import stat

import pytest
from conftest import Crash, RUN_FILES, crash_after
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from digitnet.checkpoint import load_checkpoint
from digitnet.errors import ModelFileError
from digitnet.fsutil import FolderLock
from digitnet.runs import RunWriter, read_metrics, resume, train
from digitnet.training import TrainConfig, TrainingInterrupted



def _copy(run, tmp_path):
    return shutil.copytree(run, tmp_path / "copy")


def test_an_edited_history_in_the_checkpoint_is_refused(synthetic_run, tmp_path):
    run = _copy(synthetic_run, tmp_path)
    path = run / "checkpoint.safetensors"
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    state = json.loads(metadata["state"])
    state["history"][0]["train_loss"] += 7.0  # one digit of the history, as the attack changed 2.373 to 9.373
    metadata["state"] = json.dumps(state)
    save_file(load_file(str(path)), str(path), metadata=metadata)
    with pytest.raises(ModelFileError, match="checkpoint.safetensors: the contents do not match their recorded SHA"):
        load_checkpoint(run)


def test_resume_refuses_a_config_json_changed_since_the_checkpoint(synthetic_data, tmp_path, hand_over_data):
    run = tmp_path / "run"
    with pytest.raises(Crash):
        train("best", synthetic_data, epochs=3, out=run, progress=False, on_epoch=crash_after(1))
    config = json.loads((run / "config.json").read_text())
    config["recipe"]["lr"] = 0.5
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=r"config.json: recipe differ from what the checkpoint was trained with"):
        resume(run, progress=False)


def test_one_writer_per_run_folder(synthetic_data, synthetic_run, tmp_path, hand_over_data):
    run = _copy(synthetic_run, tmp_path)
    live = FolderLock(run).acquire()  # a live training process
    try:
        with pytest.raises(ModelFileError, match=rf"--resume {run}: in use by another digitnet process "
                                                 rf"\(pid {os.getpid()}\); wait for it to finish or stop it first"):
            resume(run, progress=False)
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        FolderLock(fresh).acquire()
        with pytest.raises(ModelFileError, match="--out .*fresh: in use by another digitnet process"):
            train("best", synthetic_data, epochs=1, out=fresh, progress=False)
    finally:
        live.release()
    resume(run, progress=False)  # the lock is free again: taken over


def test_a_folder_killed_before_its_config_can_be_reused(synthetic_data, tmp_path, hand_over_data):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("12345\n")  # what a process killed before writing config.json leaves
    (run / ".config.json.x1y2.tmp").write_text("{")
    with pytest.raises(ModelFileError, match=f"{run}: the run was stopped before it began .*--out {run}"):
        resume(run, progress=False)
    train("best", synthetic_data, epochs=1, out=run, progress=False)
    assert {p.name for p in run.iterdir()} == RUN_FILES


def test_out_on_a_folder_with_a_run_is_refused(synthetic_data, synthetic_run):
    with pytest.raises(ModelFileError, match="folder exists and is not empty"):
        train("best", synthetic_data, epochs=1, out=synthetic_run, progress=False)


def test_run_files_follow_the_umask(synthetic_data, tmp_path):
    previous = os.umask(0o027)
    try:
        train("best", synthetic_data, epochs=1, out=tmp_path / "run", progress=False)
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "run").iterdir()}
    assert set(modes.values()) == {0o640}, modes


@pytest.mark.parametrize("write", ["model.safetensors", "metrics.csv", "curves.png", "summary.md"])
def test_a_crash_in_any_write_after_the_last_checkpoint_is_completed_by_resume(
        synthetic_data, tmp_path, hand_over_data, monkeypatch, write):
    """The attack: the last checkpoint saved, then a crash before model, metrics or report were;
    resume found no epoch left and left the folder one epoch behind."""
    from digitnet import fsutil

    whole = tmp_path / "whole"
    train("best", synthetic_data, epochs=2, out=whole, progress=False)

    def crash_in_the_final_epochs_write(tmp):
        if tmp.name.startswith(f".{write}.") and load_checkpoint(tmp.parent)["epoch"] == 2:
            raise Crash

    run = tmp_path / "run"
    monkeypatch.setattr(fsutil, "before_rename", crash_in_the_final_epochs_write)
    with pytest.raises(Crash):
        train("best", synthetic_data, epochs=2, out=run, progress=False)
    monkeypatch.setattr(fsutil, "before_rename", None)
    result = resume(run, progress=False)
    assert [r.epoch for r in result.history] == [1, 2]
    assert {p.name for p in run.iterdir()} == RUN_FILES
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]
    expected, got = load_file(str(whole / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert all((expected[k] == got[k]).all() for k in expected)


def test_an_interrupted_run_has_its_report(synthetic_data, tmp_path, monkeypatch):
    import signal

    def interrupt_after_epoch_2(record, state):
        if record.epoch == 2:
            signal.raise_signal(signal.SIGINT)  # lands between two steps of epoch 3

    with pytest.raises(TrainingInterrupted) as info:
        train("best", synthetic_data, epochs=5, out=tmp_path / "run", progress=False, on_epoch=interrupt_after_epoch_2)
    assert info.value.saved_epochs == 2
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "**Stopped after epoch 2 of 5**: interrupted: SIGINT during epoch 3" in summary
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0


def test_the_lock_names_its_holder(synthetic_data, tmp_path):
    writer = RunWriter.create(TrainConfig(dataset="synthetic"), synthetic_data, tmp_path / "run")
    try:
        assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == 0
        assert (tmp_path / "run" / ".lock").read_text() == f"{os.getpid()}\n"
    finally:
        writer.close()


def test_a_resume_stopped_early_still_leaves_model_and_metrics_of_the_checkpoint(
        synthetic_data, tmp_path, hand_over_data, monkeypatch):
    import signal

    import digitnet.runs.api as api
    from digitnet import fsutil

    def crash_in_the_first_model_write(tmp):
        if tmp.name.startswith(".model.safetensors."):
            raise Crash

    run = tmp_path / "run"
    monkeypatch.setattr(fsutil, "before_rename", crash_in_the_first_model_write)
    with pytest.raises(Crash):
        train("best", synthetic_data, epochs=3, out=run, progress=False)
    monkeypatch.setattr(fsutil, "before_rename", None)
    assert not (run / "model.safetensors").exists() and load_checkpoint(run)["epoch"] == 1

    def interrupted_at_once(*args, **kwargs):
        raise TrainingInterrupted(signal.SIGTERM, 2, 1)

    monkeypatch.setattr(api, "fit", interrupted_at_once)
    with pytest.raises(TrainingInterrupted):
        resume(run, progress=False)
    checkpoint = load_checkpoint(run)
    model = load_file(str(run / "model.safetensors"))
    assert all((model[k] == checkpoint["model"][k]).all() for k in model)
    assert [r["epoch"] for r in read_metrics(run)] == [1]
    assert "**Stopped after epoch 1 of 3**" in (run / "summary.md").read_text()


def _find_tile(sheet, tile):
    """(row, column) of the top-left corner where tile sits in sheet, or None."""
    first = tile[0].tobytes()
    for y in range(sheet.shape[0] - tile.shape[0] + 1):
        x = sheet[y].tobytes().find(first)
        if x >= 0 and (sheet[y : y + tile.shape[0], x : x + tile.shape[1]] == tile).all():
            return y, x
    return None


def test_the_image_grid_shows_each_image_three_times_larger_under_its_caption():
    import numpy as np

    from digitnet.report import GRID_SCALE, image_grid

    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    captions = [f"#{i}\ntrue {i}\npred {i + 1}" for i in range(6)]
    sheet = np.asarray(image_grid(images, captions, "a title", columns=4))
    corners = [_find_tile(sheet, np.kron(255 - image, np.ones((GRID_SCALE, GRID_SCALE), np.uint8)))
               for image in images]
    assert None not in corners  # every image, pixel for pixel, dark ink on white
    (y0, x0), (y1, x1), (y2, x2), (y4, x4) = corners[0], corners[1], corners[2], corners[4]
    assert y0 == y1 == y2 and x0 < x1 < x2 and y4 > y0 and x4 == x0  # reading order, 4 a row
    for y, x in corners:
        assert (sheet[y - 40 : y, x : x + 28 * GRID_SCALE] < 128).any()  # its caption, just above it
    assert (sheet[: min(y for y, _ in corners) - 40] < 128).any()  # the title
    wide = image_grid(images, ["a caption far wider than any image"] * 6, "t", columns=4)
    assert wide.width > sheet.shape[1]  # columns widen to their captions rather than overlap


def test_the_confusion_image_shades_each_cell_by_its_count_in_place():
    import numpy as np

    from digitnet.report import DARKEST, LIGHTEST, confusion_image

    counts = np.array([[50, 0, 3], [1, 40, 7], [2, 10, 25]])
    image = np.asarray(confusion_image(counts, ["zero", "one", "a rather long class name"])).astype(int)
    centres = {}
    for (i, j), n in np.ndenumerate(counts):
        colour = np.rint(LIGHTEST + n / counts.max() * (DARKEST - LIGHTEST)).astype(int)
        ys, xs = np.nonzero((image == colour).all(axis=2))
        assert len(ys) > 0.6 * 46 * 46, f"cell ({i}, {j}) not shaded for {n}"
        box = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert (box != colour).any(axis=2).sum() > 20, f"no count written in cell ({i}, {j})"
        centres[i, j] = ys.mean(), xs.mean()
    for i in range(3):  # rows are true classes, columns predicted ones, in order
        assert centres[i, 0][1] < centres[i, 1][1] < centres[i, 2][1]
        assert centres[0, i][0] < centres[1, i][0] < centres[2, i][0]
