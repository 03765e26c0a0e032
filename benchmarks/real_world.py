"""Accuracy on our real-world set, per category, for each run: the share of images read fully right.

    python benchmarks/real_world.py RUN [RUN ...] --data-dir DIR/mnist-t10k [--per-category 200] [--seed 0]

Makes the set with real_world_set.py (in a temporary folder) and reads every image as
`digitnet predict` does: the digits left to right; an image counts only if the whole string is right.
`unseen-fonts` holds print in system fonts of families no recipe trains on (empty without them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from machine import describe_cpu  # noqa: E402
from real_world_set import CATEGORIES, write_set  # noqa: E402

from digitnet.data import load_dataset  # noqa: E402
from digitnet.errors import DigitnetError  # noqa: E402
from digitnet.predict import Predictor  # noqa: E402


def accuracy(predictor: Predictor, folder: Path) -> tuple[float, int]:
    """(share read fully right, number of images); NaN for an empty category (no unseen fonts here)."""
    files = sorted(folder.iterdir())
    if not files:
        return float("nan"), 0
    right = 0
    for path in files:
        try:
            right += predictor.read_image(path, path.name).digits == path.name.split("_")[0]
        except DigitnetError:
            pass
    return right / len(files), len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--per-category", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_dataset("mnist-10k", args.data_dir, progress=False)
    print(f"# {time.strftime('%Y-%m-%d')}, {describe_cpu()}, seed {args.seed}")
    with tempfile.TemporaryDirectory() as tmp:
        counts = write_set(Path(tmp), data.x_test, data.y_test, args.seed, args.per_category)
        print("| run | recipe | " + " | ".join(f"{c} ({counts[c]})" for c in CATEGORIES) + " |")
        print("| --- | --- | " + " | ".join("---:" for _ in CATEGORIES) + " |")
        for run in args.runs:
            predictor = Predictor(run)
            shares = [accuracy(predictor, Path(tmp) / c)[0] for c in CATEGORIES]
            print(f"| {run.name} | {predictor.config['recipe']['name']} | "
                  + " | ".join(f"{100 * s:.1f}%" for s in shares) + " |", flush=True)


if __name__ == "__main__":
    main()
