"""digitnet's training step against the idiomatic PyTorch step (and another digitnet tree's), in paired
blocks: the comparison that a shared machine's swings in speed do not decide.

    python benchmarks/paired_steps.py [--recipe best] [--cycles 200] [--block 20] [--baseline-src DIR]

Each cycle runs a block of --block steps of each contender on fresh batches (one model each, trained on
as in a run, so each keeps its own data warm within its block as a run would), in an order rotated from
cycle to cycle, and records each block's time a step. Another tenant's load comes and goes over seconds,
so the blocks of one cycle (milliseconds apart) meet nearly the same machine: the median over cycles of
their ratio is steady where round-by-round totals (step_breakdown.py) swing by 30% on a busy machine.
Prints the median microseconds a step of each and, per contender, the median, quartiles and share of
cycles of peer / digitnet (above 1: digitnet is faster).

Contenders: digitnet (this tree's make_step), idiomatic (step_breakdown.py's: nn.Sequential, autograd,
the recipe's loss and torch.optim optimiser, fused where it can be, LambdaLR), and with --baseline-src the
same make_step from another tree's src folder (e.g. `git archive <commit> src | tar -x -C DIR`).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from step_breakdown import _idiomatic_step, _import_baseline
from train_speed import hardware

from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet.training.steps import make_step

POOL = 60_000  # images the batches are drawn from, as one Fashion-MNIST epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="best", choices=("best", "tutorial"), help="an MLP recipe")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--baseline-src", help="another digitnet tree's src folder, run as a third contender")
    args = parser.parse_args()
    recipe = get_recipe(args.recipe)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(POOL, 784, generator=generator) * 2 - 1
    labels = torch.randint(0, 10, (POOL,), generator=generator)
    n = recipe.batch_size
    batches = [(images[i : i + n].clone(), labels[i : i + n].clone()) for i in range(0, POOL - n + 1, n)]
    digitnet = make_step(build_model(seed=0), recipe, 10**6)
    contenders = {"digitnet": lambda x, y: digitnet(x, y), "idiomatic": _idiomatic_step(recipe)}
    if args.baseline_src:
        base = _import_baseline(args.baseline_src)
        baseline = base.make_step(base.build_model(seed=0), base.get_recipe(args.recipe), 10**6)
        contenders["baseline"] = lambda x, y: baseline(x, y)
    names = list(contenders)
    for run in contenders.values():  # warm-up: first calls, the optimiser's state, the allocator
        for x, y in batches[:30]:
            run(x, y)
    per_step = {name: [] for name in names}
    position = 0
    for cycle in range(args.cycles):
        order = names[cycle % len(names):] + names[: cycle % len(names)]
        for name in order:
            run = contenders[name]
            started = time.perf_counter()
            for k in range(args.block):
                x, y = batches[(position + k) % len(batches)]
                run(x, y)
            per_step[name].append((time.perf_counter() - started) / args.block)
        position += args.block
    print(hardware())
    print(f"{args.recipe} recipe, batch {n}, {type(digitnet).__name__}; {args.cycles} cycles of {args.block} steps each")
    for name in names:
        print(f"{name:10s} median {statistics.median(per_step[name]) * 1e6:8.1f} us a step")
    for name in names[1:]:
        ratios = sorted(p / d for p, d in zip(per_step[name], per_step["digitnet"]))
        quartiles = statistics.quantiles(ratios, n=4)
        print(f"{name} / digitnet: median {statistics.median(ratios):.3f} (quartiles {quartiles[0]:.3f}-"
              f"{quartiles[2]:.3f}); digitnet faster in {sum(r > 1 for r in ratios) / len(ratios):.0%} of cycles")


if __name__ == "__main__":
    main()
