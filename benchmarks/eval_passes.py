"""Evaluating a test split in passes of different sizes: seconds and page faults, in one process.

    python benchmarks/eval_passes.py [--rounds 3] [--images 10000]

For each model (the tutorial's MLP and the convnet), times `metrics.evaluate` over --images random
test images in passes of 4096 (every model before 2026-11-27), 2048, 1024, 512, 256 and 128 rows,
round by round, and counts the minor page faults each evaluation took (fresh pages the process had
to be given: an activation larger than the C allocator keeps for reuse is handed back after every
pass and faulted in again). The row marked * is the size digitnet now chooses (`model.pass_rows`).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

import digitnet.metrics as metrics
from digitnet.losses import make_loss
from digitnet.model import build_model, pass_rows
from digitnet.training.devices import fast_layout
from train_speed import hardware

PASS_SIZES = (4096, 2048, 1024, 512, 256, 128)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(args.images, 784, generator=generator) * 2 - 1
    y = torch.randint(0, 10, (args.images,), generator=generator)
    loss_fn = make_loss("cross-entropy", 0.1)
    chosen_rows = metrics.pass_rows
    models = {kind: fast_layout(build_model(kind=kind, seed=0), torch.device("cpu")) for kind in ("mlp", "cnn")}
    seconds = {(kind, rows): [] for kind in models for rows in PASS_SIZES}
    faults = dict.fromkeys(seconds, 0)
    try:
        for _ in range(args.rounds):
            for (kind, rows) in seconds:
                metrics.pass_rows = lambda model, rows=rows: rows
                before, started = _minor_faults(), time.perf_counter()
                metrics.evaluate(models[kind], x, y, loss_fn)
                seconds[kind, rows].append(time.perf_counter() - started)
                faults[kind, rows] = _minor_faults() - before  # the last round's: after any first-call costs
    finally:
        metrics.pass_rows = chosen_rows
    print(f"# {time.strftime('%Y-%m-%d')}, {hardware()}")
    print(f"# {args.images} images; seconds per evaluation over {args.rounds} interleaved rounds")
    print("| model | rows a pass | fastest s | median s | minor page faults (last round) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for (kind, rows), values in seconds.items():
        mark = " *" if rows == pass_rows(models[kind]) else ""
        print(f"| {kind} | {rows}{mark} | {min(values):.3f} | {statistics.median(values):.3f} | {faults[kind, rows]:,} |")


if __name__ == "__main__":
    main()
