"""End-to-end: the console script as a user runs it."""

import json
import os
import subprocess
import sys

import pytest
from conftest import RUN_FILES, TIME_FACTOR

from digitnet.cli import build_parser



def digitnet(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "digitnet", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300 * TIME_FACTOR)


@pytest.mark.slow
def test_train_writes_every_run_file_and_evaluate_repeats_its_figures(tmp_path, mnist_t10k_dir):
    done = digitnet("train", "--dataset", "mnist-10k", "--data-dir", mnist_t10k_dir, "--epochs", 2,
                    "--lr", 0.01, "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["epoch", "train", "loss", "test", "loss", "test", "acc", "seconds"]
    assert [line.split()[0] for line in lines[1:3]] == ["1", "2"]
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == RUN_FILES
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["lr"] == 0.01 and config["recipe"]["loss"] == "mse-sum"
    assert config["architecture"]["hidden"] == [256, 128]
    assert config["data"]["files"]["t10k-images-idx3-ubyte"]["sha256"].startswith("0fa7898d")
    assert {"torch", "python", "digitnet"} <= set(config["versions"])
    metrics = (run / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 3 and metrics[0].startswith("epoch,train_loss,test_loss,test_accuracy")
    assert "final test accuracy" in (run / "summary.md").read_text()
    last_accuracy = lines[2].split()[3]

    evaluated = digitnet("evaluate", run)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"test accuracy {last_accuracy}" in evaluated.stdout
    assert "identical to epoch 2 in metrics.csv" in evaluated.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data-dir", "/nonexistent"], "--data-dir /nonexistent: no such folder"),
        (["train", "--dataset", "mnist"], "could not download train-images-idx3-ubyte.gz"),
        (["train", "--lr", "-1", "--data-dir", "."], "--lr -1.0: the learning rate must be a positive number"),
        (["evaluate", "/nonexistent"], "/nonexistent: no such run folder"),
        (["evaluate", "."], "config.json: missing; . is not a digitnet run folder"),
        (["train", "--device", "cuda:0", "--data-dir", "."], "CUDA is not available here; use --device cpu"),
        (["train", "--precision", "tf32", "--device", "cpu", "--data-dir", "."],
         "--precision tf32 needs a CUDA GPU (this run trains on cpu); use fp32 or bf16"),
    ],
)
def test_user_mistakes_get_one_line_errors(args, message, tmp_path):
    done = digitnet(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("digitnet: error: ") and done.stderr.count("\n") == 1
    assert message in done.stderr


def test_existing_run_folder_is_not_overwritten(tmp_path, mnist_t10k_dir):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.safetensors").write_bytes(b"precious")
    done = digitnet("train", "--dataset", "mnist-10k", "--data-dir", mnist_t10k_dir, "--out", tmp_path / "run")
    assert done.returncode == 2 and "not empty" in done.stderr
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == b"precious"


def test_help_does_not_import_torch():
    code = ("import sys\nfrom digitnet.cli import main\n"
            "for argv in (['--help'], ['train', '--help'], ['evaluate', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60 * TIME_FACTOR)
    assert done.returncode == 0, done.stderr
    assert "--no-shuffle" in done.stdout and "--data-dir" in done.stdout


def test_every_option_is_explained():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in subparsers.items():
        for action in sub._actions:
            assert action.help, f"digitnet {name} {action.option_strings or action.dest} has no help"


def test_unwritable_output_folder_is_a_one_line_error(tmp_path, mnist_t10k_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = digitnet("train", "--dataset", "mnist-10k", "--data-dir", mnist_t10k_dir, "--out", blocker / "run")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot create the run folder (Not a directory)" in done.stderr


QUICK_EXIT = """
import atexit, sys, threading, time
import digitnet.cli as cli
marker = sys.argv[1]
atexit.register(lambda: open(marker, "a").write("atexit\\n"))
def late_writer():
    time.sleep(0.3)
    open(marker, "a").write("thread\\n")
def command(argv=None):
    if argv == ["with-thread"]:
        threading.Thread(target=late_writer).start()
    for _ in range(2000):  # more than a pipe holds, in small writes: the last ones sit in a buffer
        print("x" * 99)
    print("last line", file=sys.stderr, end="")
    return 3
cli.main = command
cli.run(sys.argv[2:])
"""


@pytest.mark.parametrize("argv, expected", [([], "atexit\n"), (["with-thread"], "thread\natexit\n")])
def test_the_program_leaves_quickly_but_completely(tmp_path, argv, expected):
    """run() skips Python's shutdown, yet keeps the exit code, the whole output and the atexit
    handlers, and waits for a running (non-daemon) thread as Python would."""
    marker = tmp_path / "marker"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", QUICK_EXIT, str(marker), *argv], capture_output=True, text=True,
                          timeout=60 * TIME_FACTOR, env=buffered)
    assert done.returncode == 3
    assert done.stdout == ("x" * 99 + "\n") * 2000 and done.stderr == "last line"
    assert marker.read_text() == expected


def test_output_lost_to_a_full_disk_is_an_error():
    """stdout on a full device (/dev/full), the last lines still buffered when the command returns:
    exit code 1 and one line saying so, not a quiet 0."""
    code = ("import digitnet.cli as cli\n"
            "cli.main = lambda argv=None: print('final test accuracy 97.00%') or 0\n"
            "cli.run([])\n")
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=60 * TIME_FACTOR, env=buffered)
    assert done.returncode == 1
    assert done.stderr.startswith("digitnet: error: the output could not be written: no space left on device")
    assert done.stderr.count("\n") == 1
