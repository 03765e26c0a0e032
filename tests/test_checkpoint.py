"""Checkpoints and resume: nothing finished is lost, a resumed run is bit-identical."""

import errno
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from conftest import Crash, TIME_FACTOR, crash_after

from digitnet import fsutil
from digitnet.checkpoint import load_checkpoint
from digitnet.errors import ModelFileError
from digitnet.runs import load_run
from digitnet.runs import resume, train
from digitnet.training import SaveFailed, TrainingDiverged

pytestmark = pytest.mark.slow


def _metrics_without_timing(run):
    rows = (run / "metrics.csv").read_text().splitlines()
    return [",".join(r.split(",")[:4] + r.split(",")[6:]) for r in rows]


def _weights(run):
    return load_file(str(run / "model.safetensors"))


@pytest.mark.parametrize("recipe", ["tutorial", "best"])
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, mnist_t10k_dir, recipe):
    common = dict(data_dir=mnist_t10k_dir, epochs=4, progress=False)
    train(recipe, "mnist-10k", out=tmp_path / "whole", **common)
    with pytest.raises(Crash):
        train(recipe, "mnist-10k", out=tmp_path / "cut", on_epoch=crash_after(2), **common)
    assert load_checkpoint(tmp_path / "cut")["epoch"] == 2
    resume(tmp_path / "cut", progress=False)
    whole, cut = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    assert _metrics_without_timing(tmp_path / "whole") == _metrics_without_timing(tmp_path / "cut")
    assert (tmp_path / "cut" / "summary.md").is_file()


def test_resume_takes_a_data_set_in_memory_only_with_the_runs_hashes(tmp_path, mnist_t10k_dir):
    """resume(dataset=...), what `train --resume` read while torch imported, is checked like a loaded one."""
    import dataclasses

    from digitnet.data import load_dataset
    from digitnet.errors import DataError

    train("tutorial", "mnist-10k", data_dir=mnist_t10k_dir, epochs=1, out=tmp_path / "run", progress=False)
    data = load_dataset("mnist-10k", mnist_t10k_dir, progress=False)
    forged = dataclasses.replace(data, files={k: {**v, "sha256": "0" * 64} for k, v in data.files.items()})
    with pytest.raises(DataError, match="does not match the hashes"):
        resume(tmp_path / "run", dataset=forged, progress=False)
    assert resume(tmp_path / "run", dataset=data, progress=False).history[-1].epoch == 1


def test_divergence_stops_at_once_naming_epoch_and_step_and_keeps_no_bad_checkpoint(tmp_path, mnist_t10k_dir):
    with pytest.raises(TrainingDiverged, match=r"epoch 1 step \d+: the training loss became (nan|inf).*--lr 10000") as info:
        train("tutorial", "mnist-10k", data_dir=mnist_t10k_dir, epochs=3, lr=1e4, out=tmp_path / "run", progress=False)
    assert info.value.saved_epochs == 0
    assert load_checkpoint(tmp_path / "run") is None


def test_a_full_disk_while_saving_leaves_the_previous_checkpoint(tmp_path, mnist_t10k_dir, monkeypatch):
    run = tmp_path / "run"
    real_fsync = fsutil.os.fsync

    def on_epoch(record, state):
        if record.epoch == 1:  # from now on every write finds the disk full
            def full(fd):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(fsutil.os, "fsync", full)

    with pytest.raises(SaveFailed) as info:
        train("tutorial", "mnist-10k", data_dir=mnist_t10k_dir, epochs=3, out=run, on_epoch=on_epoch, progress=False)
    assert info.value.saved_epochs == 1
    assert info.value.describe() == (
        f"error: {run / 'checkpoint.safetensors'}: no space left on device; free some space or write elsewhere "
        f"(files already saved are intact); epochs 1-1 are saved in {run}; once it is fixed, resume with: "
        f"digitnet train --resume {run}")
    monkeypatch.setattr(fsutil.os, "fsync", real_fsync)
    assert load_checkpoint(run)["epoch"] == 1
    load_run(run)  # model.safetensors of epoch 1 still loads
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_damaged_checkpoint_is_refused(tmp_path, mnist_t10k_dir):
    train("tutorial", "mnist-10k", data_dir=mnist_t10k_dir, epochs=1, out=tmp_path / "run", progress=False)
    path = tmp_path / "run" / "checkpoint.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # a flipped bit in the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checkpoint.safetensors: the contents do not match their recorded SHA-256"):
        load_checkpoint(tmp_path / "run")
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ModelFileError, match="checkpoint.safetensors: not a readable safetensors file"):
        load_checkpoint(tmp_path / "run")


def _cli(*args):
    return [sys.executable, "-m", "digitnet", *map(str, args)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_says_how_to_resume(tmp_path, mnist_t10k_dir, signum):
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli("train", "--recipe", "best", "--dataset", "mnist-10k", "--data-dir", mnist_t10k_dir,
                                 "--epochs", 200, "--out", run, "--no-progress"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120 * TIME_FACTOR
    while not (run / "checkpoint.safetensors").exists():  # renamed into place whole, so it is complete
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    second = subprocess.run(_cli("train", "--resume", run, "--no-progress"), capture_output=True, text=True,
                            timeout=120 * TIME_FACTOR)
    assert second.returncode == 2 and second.stderr == (
        f"digitnet: error: --resume {run}: in use by another digitnet process (pid {proc.pid}); wait for it to "
        "finish or stop it first\n")
    assert proc.poll() is None  # the live writer goes on, its files untouched
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60 * TIME_FACTOR)
    assert proc.returncode == 128 + signum
    assert f"resume with: digitnet train --resume {run}" in err and "Traceback" not in err
    epochs = load_checkpoint(run)["epoch"]
    assert epochs >= 1 and f"epochs 1-{epochs} are saved" in err
    assert f"**Stopped after epoch {epochs} of 200**" in (run / "summary.md").read_text()


def test_resume_refuses_flags_that_change_the_computation(tmp_path, mnist_t10k_dir):
    train("tutorial", "mnist-10k", data_dir=mnist_t10k_dir, epochs=1, lr=0.01, out=tmp_path / "run", progress=False)
    done = subprocess.run(_cli("train", "--resume", tmp_path / "run", "--lr", "0.1", "--hidden", "64"),
                          capture_output=True, text=True, timeout=60 * TIME_FACTOR)
    assert done.returncode == 2
    assert "drop --lr, --hidden" in done.stderr and done.stderr.count("\n") == 1
    same = subprocess.run(_cli("train", "--resume", tmp_path / "run", "--lr", "0.01", "--epochs", "1",
                               "--dataset", "mnist-10k"), capture_output=True, text=True, timeout=120 * TIME_FACTOR)
    assert same.returncode == 0, same.stderr  # repeating the run's own values is fine


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 2 MiB tmpfs (mounting needs root, as on CI); yields (folder, grow) where grow(mib) resizes it."""
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")

    def grow(mib):
        subprocess.run(["mount", "-o", f"remount,size={mib}m", str(mount)], check=True)

    try:
        yield mount, grow
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_gives_one_line_and_the_run_resumes_once_there_is_room(small_filesystem, mnist_t10k_dir):
    """The tutorial network's checkpoint and model are 0.9 MB each: a 2 MiB file system fills while
    the second checkpoint is written (inside safetensors' serialisation of it, before our fix)."""
    mount, grow = small_filesystem
    run = mount / "run"
    done = subprocess.run(_cli("train", "--dataset", "mnist-10k", "--data-dir", mnist_t10k_dir, "--epochs", 3,
                               "--out", run, "--no-progress"), capture_output=True, text=True,
                          timeout=300 * TIME_FACTOR)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "no space left on device" in done.stderr and f"digitnet train --resume {run}" in done.stderr
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    saved = load_checkpoint(run)["epoch"]
    assert saved >= 1 and f"epochs 1-{saved} are saved" in done.stderr
    grow(16)
    resumed = subprocess.run(_cli("train", "--resume", run, "--no-progress"), capture_output=True, text=True,
                             timeout=300 * TIME_FACTOR)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(run)["epoch"] == 3 and (run / "summary.md").is_file()
