"""SIGKILL at random moments, during checkpoint writes too: every run folder stays loadable,
and every resumed run ends bit-identical to one never interrupted."""

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from conftest import RUN_FILES, TIME_FACTOR

from digitnet.checkpoint import load_checkpoint
from digitnet.model import load_model
from digitnet.runs import evaluate_run, read_metrics

pytestmark = pytest.mark.slow
TRIALS = 10
EPOCHS = 5


# The training process to kill widens every write through fsutil's test seam, so kills land inside.
SLOW_WRITES = ("import sys, time\nfrom digitnet import fsutil\nfsutil.before_rename = lambda tmp: time.sleep(0.05)\n"
               "from digitnet.cli import main\nsys.exit(main(sys.argv[1:]))")


def _train(out, data_dir, *extra, slow_writes=False):
    launcher = ["-c", SLOW_WRITES] if slow_writes else ["-m", "digitnet"]
    return [sys.executable, *launcher, "train", "--recipe", "best", "--dataset", "mnist-10k",
            "--data-dir", str(data_dir), "--epochs", str(EPOCHS), "--no-progress", *extra] + (
        ["--out", str(out)] if out else [])


def _check_every_file_loads(run):
    json.loads((run / "config.json").read_text())
    if (run / "checkpoint.safetensors").exists():
        assert load_checkpoint(run)["epoch"] >= 1
    if (run / "model.safetensors").exists():
        load_model(run / "model.safetensors")
    if (run / "metrics.csv").exists():
        read_metrics(run)


def test_sigkill_at_random_moments_then_resume(tmp_path, mnist_t10k_dir):
    reference = tmp_path / "reference"
    subprocess.run(_train(reference, mnist_t10k_dir), check=True, capture_output=True, timeout=300 * TIME_FACTOR)
    expected = load_file(str(reference / "model.safetensors"))
    rng = random.Random(20261126)
    landed_in_write = 0
    for trial in range(TRIALS):
        run = tmp_path / f"trial{trial}"
        proc = subprocess.Popen(_train(run, mnist_t10k_dir, slow_writes=True), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120 * TIME_FACTOR
        while not (run / "config.json").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        if trial % 2 == 0:  # aim inside a write: wait for a temporary file to appear
            while proc.poll() is None and not any(p.name.endswith(".tmp") for p in run.iterdir()):
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.04))
        else:
            time.sleep(rng.uniform(0, 1.5))
        in_write = any(p.name.endswith(".tmp") for p in run.iterdir())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60 * TIME_FACTOR)
        landed_in_write += in_write
        _check_every_file_loads(run)
        done = subprocess.run(_train(None, mnist_t10k_dir, "--resume", str(run)), capture_output=True,
                              text=True, timeout=300 * TIME_FACTOR)
        assert done.returncode == 0, done.stderr
        assert not any(p.name.endswith(".tmp") for p in run.iterdir())
        got = load_file(str(run / "model.safetensors"))
        assert all(torch.equal(got[k], expected[k]) for k in expected), f"trial {trial} differs"
    print(f"kill test: {TRIALS} trials, {landed_in_write} kills inside a write, {TRIALS} bit-identical resumes")
    assert landed_in_write >= 3


# Kills the training process (SIGKILL, no clean-up of any kind) just before the Nth rename of a
# file named argv[1], i.e. while that write is in flight.
KILL_IN_WRITE = ("import os, signal, sys\nfrom digitnet import fsutil\ntarget, nth = sys.argv.pop(1), int(sys.argv.pop(1))\n"
                 "seen = []\ndef seam(tmp):\n    if tmp.name.startswith('.' + target + '.'):\n        seen.append(tmp)\n"
                 "        if len(seen) == nth:\n            os.kill(os.getpid(), signal.SIGKILL)\n"
                 "fsutil.before_rename = seam\nfrom digitnet.cli import main\nsys.exit(main(sys.argv[1:]))")
FINAL_EPOCH_WRITES = [("checkpoint.safetensors", 2), ("model.safetensors", 2), ("metrics.csv", 2), ("curves.png", 1),
                      ("confusion.png", 1), ("misclassified.png", 1), ("per_class.csv", 1), ("summary.md", 1)]


def _tutorial(out, data_dir, *extra):
    return ["train", "--recipe", "tutorial", "--dataset", "mnist-10k", "--data-dir", str(data_dir), "--epochs", "2",
            "--no-progress", "--out", str(out), *extra]


def _rows_without_timing(run):
    return [{k: v for k, v in row.items() if k not in ("seconds", "eval_seconds")} for row in read_metrics(run)]


def test_a_kill_inside_every_write_of_the_final_epoch_is_completed_by_one_resume(tmp_path, mnist_t10k_dir):
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "-m", "digitnet", *_tutorial(reference, mnist_t10k_dir)], check=True,
                   capture_output=True, timeout=300 * TIME_FACTOR)
    expected = load_file(str(reference / "model.safetensors"))
    for target, nth in FINAL_EPOCH_WRITES:
        run = tmp_path / target
        killed = subprocess.run([sys.executable, "-c", KILL_IN_WRITE, target, str(nth),
                                 *_tutorial(run, mnist_t10k_dir)], capture_output=True, timeout=300 * TIME_FACTOR)
        assert killed.returncode == -signal.SIGKILL, (target, killed.stderr)
        done = subprocess.run([sys.executable, "-m", "digitnet", "train", "--resume", str(run), "--no-progress"],
                              capture_output=True, text=True, timeout=300 * TIME_FACTOR)
        assert done.returncode == 0, (target, done.stderr)
        assert {p.name for p in run.iterdir()} == RUN_FILES, target
        got = load_file(str(run / "model.safetensors"))
        assert all(torch.equal(got[k], expected[k]) for k in expected), target
        assert _rows_without_timing(run) == _rows_without_timing(reference), target
        evaluation, last, _ = evaluate_run(run, device="cpu", progress=False)
        assert (evaluation.loss, evaluation.accuracy) == (last["test_loss"], last["test_accuracy"]), target
    print(f"final-epoch kills: {len(FINAL_EPOCH_WRITES)} writes killed, {len(FINAL_EPOCH_WRITES)} complete folders")
