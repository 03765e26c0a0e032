"""Where a `digitnet train` run's wall time goes, phase by phase, in one process.

    python benchmarks/run_phases.py [--data-dir ../shared/data/fashion-mnist] [--epochs 30]

Times, around the library's train() (what the CLI calls): importing torch, importing digitnet,
reading and verifying the data, then inside the run the epochs' training, their evaluation, the
run folder's per-epoch writes, the report at the end, and the rest. The tutorial recipe on
Fashion-MNIST, as benchmarks/time_to_result.py runs it (that one times the whole command).
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    started = time.perf_counter()
    from digitnet.cli.commands import imports_for_good

    with imports_for_good():  # as `digitnet train` imports them
        importlib.import_module("torch")
        torch_imported = time.perf_counter()
        import digitnet.runs.folder as folder
        from digitnet.data import load_dataset
        from digitnet.runs import train

    digitnet_imported = time.perf_counter()
    data = load_dataset("fashion-mnist", args.data_dir, progress=False)
    data_read = time.perf_counter()
    spent = {"writes": 0.0, "report": 0.0}

    def timed(method, key):
        def wrapper(*a, **k):
            began = time.perf_counter()
            method(*a, **k)
            spent[key] += time.perf_counter() - began
        return wrapper

    folder.RunWriter.on_epoch = timed(folder.RunWriter.on_epoch, "writes")
    folder.RunWriter.finish = timed(folder.RunWriter.finish, "report")
    with tempfile.TemporaryDirectory() as tmp:
        result = train("tutorial", data, epochs=args.epochs, out=Path(tmp) / "run", progress=False)
    finished = time.perf_counter()
    training = sum(r.seconds for r in result.history)
    evaluation = sum(r.eval_seconds for r in result.history)
    rest = finished - data_read - training - evaluation - spent["writes"] - spent["report"]
    print(f"import torch {torch_imported - started:.2f} s, import digitnet {digitnet_imported - torch_imported:.2f} s, "
          f"data {data_read - digitnet_imported:.2f} s; in train(): training {training:.2f} s, evaluation "
          f"{evaluation:.2f} s, per-epoch writes {spent['writes']:.2f} s, report {spent['report']:.2f} s, "
          f"the rest {rest:.2f} s; all {finished - started:.2f} s = {(finished - started) / training:.3f}x training")


if __name__ == "__main__":
    main()
