"""What the commands spend outside their work: leaving the process, short commands, the report's
figures, garbage collection.

    python benchmarks/cli_overheads.py [--data-dir ../shared/data] [--rounds 5] [--baseline-src DIR]
        # DIR: another source tree's src folder, e.g. after `git worktree add /tmp/before <commit>`

1. exit: seconds from a process's last line to its end, for `python -c "import torch"` left to
   Python's own shutdown and for the same process ending as `digitnet` ends (digitnet.cli.run).
2. commands, each a fresh process, interleaved over --rounds rounds (with --baseline-src, the
   other tree's digitnet in the same rounds): `digitnet predict RUN one.png`, and `digitnet train
   --resume RUN` of a finished run (it evaluates and writes the report).
3. the report's figures, each tree's in a process of its own: the curves, the confusion matrix and
   the misclassified images' grid, each drawn once (the time includes what it imports), then 3 times.
4. garbage collection during a 5-epoch tutorial run in one process (imports, training, report):
   the full collections and their time, with the imports as `digitnet train` makes them
   (cli.commands.imports_for_good) and, in a second process, plainly.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EXIT_PROBE = """
import sys, time
import torch
print(time.time(), flush=True)
if sys.argv[1] == "digitnet":
    import digitnet.cli as cli
    cli.main = lambda argv=None: 0
    cli.run([])
"""

GC_PROBE = """
import gc, sys, tempfile, time
from pathlib import Path
started, pauses = {}, []
def watch(phase, info):
    if info["generation"] != 2:
        return
    if phase == "start":
        started["at"] = time.perf_counter()
    else:
        pauses.append(time.perf_counter() - started["at"])
gc.callbacks.append(watch)
if sys.argv[2] == "digitnet":
    from digitnet.cli.commands import imports_for_good
    with imports_for_good():
        import torch, digitnet.runs
else:
    import torch, digitnet.runs
from digitnet.data import load_dataset
from digitnet.runs import train
data = load_dataset("fashion-mnist", sys.argv[1], progress=False)
with tempfile.TemporaryDirectory() as tmp:
    train("tutorial", data, epochs=5, out=Path(tmp) / "run", progress=False)
print(len(pauses), sum(pauses))
"""


def _env(src: str | None) -> dict | None:
    return None if src is None else dict(os.environ, PYTHONPATH=src)


def exit_seconds(how: str) -> float:
    proc = subprocess.run([sys.executable, "-c", EXIT_PROBE, how], capture_output=True, text=True, check=True)
    return time.time() - float(proc.stdout.split()[0])  # measured once the process has ended


def command_seconds(args: list[str], src: str | None) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "digitnet", *args], capture_output=True, check=True, env=_env(src))
    return time.perf_counter() - started


def prepare(shared: Path, folder: Path) -> tuple[Path, Path]:
    """A finished 1-epoch Fashion-MNIST run and one test image as a PNG."""
    import numpy as np
    from PIL import Image

    from digitnet.data import load_dataset

    run = folder / "run"
    subprocess.run([sys.executable, "-m", "digitnet", "train", "--dataset", "fashion-mnist", "--data-dir",
                    str(shared / "fashion-mnist"), "--epochs", "1", "--out", str(run), "--no-progress"],
                   capture_output=True, check=True)
    image = folder / "one.png"
    test = load_dataset("mnist-10k", shared / "mnist-t10k", progress=False, test_only=True)
    Image.fromarray(255 - np.asarray(test.x_test[0])).save(image)
    return run, image


def figure_seconds() -> dict[str, list[float]]:
    from types import SimpleNamespace

    import numpy as np

    from digitnet import report

    rng = np.random.default_rng(0)
    history = [SimpleNamespace(epoch=e, train_loss=1 / e, test_loss=1.1 / e, test_accuracy=0.8 + e / 300)
               for e in range(1, 31)]
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    counts = rng.integers(0, 900, (10, 10))
    images, labels = rng.integers(0, 256, (2000, 28, 28), dtype=np.uint8), rng.integers(0, 10, 2000)
    predicted = (labels + (rng.random(2000) < 0.1)) % 10
    out = Path(tempfile.mkdtemp())
    figures = {"curves": lambda: report.plot_curves(history, out / "c.png", "title"),
               "confusion matrix": lambda: report.plot_confusion(counts, names, out / "m.png"),
               "misclassified grid": lambda: report.plot_misclassified(images, labels, predicted, names,
                                                                                out / "g.png")}
    times: dict[str, list[float]] = {}
    for name, draw in figures.items():
        started = time.perf_counter()
        draw()  # the first: what it imports, fonts, first-call costs
        times[f"{name}, first (its imports included)"] = [time.perf_counter() - started]
        for _ in range(3):
            started = time.perf_counter()
            draw()
            times.setdefault(name, []).append(time.perf_counter() - started)
    return times


def _span(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f} (median {statistics.median(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"),
                        help="holds fashion-mnist/ and mnist-t10k/")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-src", help="a digitnet source tree (its src folder) to run beside this one")
    parser.add_argument("--figures-only", action="store_true", help="part 3 alone, with the digitnet imported")
    args = parser.parse_args()
    if args.figures_only:
        for name, values in figure_seconds().items():
            print(f"report figure, {name}: {_span(values)}")
        return
    shared = Path(args.data_dir)
    trees = {"now": None}
    if args.baseline_src:
        trees = {"baseline": str(Path(args.baseline_src).resolve()), **trees}
    print(f"# {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, {args.rounds} rounds; seconds")
    exits = {how: [exit_seconds(how) for _ in range(args.rounds)] for how in ("python", "digitnet")}
    print(f"exit after `import torch`: Python's shutdown {_span(exits['python'])}, "
          f"as digitnet ends {_span(exits['digitnet'])}")
    with tempfile.TemporaryDirectory() as tmp:
        run, image = prepare(shared, Path(tmp))
        commands = {"predict RUN one.png": ["predict", str(run), str(image)],
                    "train --resume RUN (finished)": ["train", "--resume", str(run), "--no-progress"]}
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for label, command in commands.items():
                for tree, src in trees.items():
                    times.setdefault((label, tree), []).append(command_seconds(command, src))
    for (label, tree), values in times.items():
        print(f"digitnet {label} [{tree}]: {_span(values)}")
    for tree, src in trees.items():  # each tree's own report module, in its own process
        figures = subprocess.run([sys.executable, __file__, "--figures-only"], capture_output=True, text=True,
                                 check=True, env=_env(src)).stdout
        print("".join(f"{line} [{tree}]\n" for line in figures.splitlines()), end="")
    for how in ("digitnet", "plain"):
        done = subprocess.run([sys.executable, "-c", GC_PROBE, str(shared / "fashion-mnist"), how],
                              capture_output=True, text=True, check=True)
        count, seconds = done.stdout.split()
        print(f"full collections in a 5-epoch run, imports {'as digitnet train' if how == 'digitnet' else 'plain'}: "
              f"{count}, {float(seconds):.3f} s")


if __name__ == "__main__":
    main()
