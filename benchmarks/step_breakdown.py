"""Where one training step of an MLP recipe spends its time, on a fixed batch, in one process.

    python benchmarks/step_breakdown.py [--recipe best] [--rounds 5] [--precision fp32] [--baseline-src DIR]

Interleaves, round by round, 469 repetitions (one Fashion-MNIST epoch at batch 128) of:
  floor        the eight GEMMs backprop needs, alone (3 forward, 3 weight-gradient, 2 input-gradient)
  fwd+bwd      digitnet's step with the optimiser's update removed (GEMMs, loss gradient, bias sums, ReLUs)
  step         digitnet's whole step (the above, the recipe's optimiser and schedule)
  step-torch   the same step with torch.optim's own optimizer.step() and LambdaLR.step() as the update
               (on the CPU digitnet calls the same fused AdamW kernel directly and sets the schedule's
               fields itself: training/optim.py, HostFusedAdamW and HostSchedule)
  wgrad-mm     the first layer's weight gradient (256 x 784, from the batch of 128) by torch.mm(out=):
               MKL's GEMM overwriting its result (beta 0)
  wgrad-addmm  the same gradient zeroed, then added to by addmm_ (beta 1), as BackpropStep computes it
  idiomatic    an idiomatic PyTorch step (nn.Sequential, autograd, the recipe's loss, torch.optim's
               optimiser, fused where it can be, and LambdaLR), the peer of train_speed.py's
               torch-idiomatic rows, on the same batch
  epoch        a whole epoch of digitnet's training loop (training.train_one_epoch: the shuffled
               batches gathered, the step, the loss kept and checked) over 60,000 random images
  idiom-epoch  the idiomatic loop's epoch over the same images (randperm, x[index], its step), as
               train_speed.py's torch-idiomatic rows run it
  tiny step    digitnet's step for the same recipe on a 784-8-8-10 MLP and a batch of 4: what a step
               costs whatever its GEMMs (Python, the dispatch of its ~30 operations, their fixed costs)
With --baseline-src DIR (another digitnet tree's src folder, e.g. from `git worktree add`), also
  step (baseline), epoch (baseline), tiny step (baseline)   the same three from that tree, in the
               same process and rounds:
               on a machine whose speed swings between processes, the one comparison of two versions
               that the swings do not decide (its modules are imported under their own names, then
               set aside; imports it makes lazily, inside functions, would find this tree's: the CPU
               rows make none)
and prints each round's seconds, so a machine whose speed drifts shows it, and per round the ratios
idiomatic / step (digitnet's lead), idiom-epoch / epoch (the same over whole epochs of fresh batches) and
idiomatic / floor (the most any step made of these GEMMs could lead by);
then the ratio of each part's fastest round: another tenant's load only ever adds time, so the fastest
rounds are the closest to what each loop costs on this machine alone.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from types import SimpleNamespace

import torch

from digitnet.data.batches import EpochBatches
from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet.training.loop import train_one_epoch
from digitnet.training.steps import make_step

STEPS = 469
TINY_HIDDEN, TINY_BATCH = (8, 8), 4  # the tiny step's MLP and batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="best")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--baseline-src", help="a digitnet tree's src folder whose step and epoch run beside")
    args = parser.parse_args()
    recipe = get_recipe(args.recipe)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(recipe.batch_size, 784, generator=generator) * 2 - 1).to(dtype)
    y = torch.randint(0, 10, (recipe.batch_size,), generator=generator)
    step = make_step(build_model(seed=0), recipe, 10**6, dtype)
    no_update = make_step(build_model(seed=0), recipe, 10**6, dtype)
    no_update.updater = SimpleNamespace(step=lambda: None)
    torch_update = make_step(build_model(seed=0), recipe, 10**6, dtype)
    torch_update.updater, torch_update.scheduler = torch_update.optimizer, torch_update.schedule
    w1, w2, w3 = (torch.randn(256, 784, dtype=dtype), torch.randn(128, 256, dtype=dtype), torch.randn(10, 128, dtype=dtype))

    def floor():
        h1 = x @ w1.t()
        h2 = h1 @ w2.t()
        out = h2 @ w3.t()
        out.t() @ h2
        g2 = out @ w3
        g2.t() @ h1
        g1 = g2 @ w2
        g1.t() @ x

    g1, w1_grad = torch.randn(recipe.batch_size, 256, dtype=dtype), torch.empty(256, 784, dtype=dtype)
    idiomatic = _idiomatic_step(recipe)
    images = torch.rand(STEPS * recipe.batch_size, 784, generator=generator) * 2 - 1
    labels = torch.randint(0, 10, (len(images),), generator=generator)
    batches = EpochBatches(images.to(dtype), labels, recipe.batch_size, seed=0)
    epoch_step = make_step(build_model(seed=0), recipe, 10**6, dtype)
    tiny_step = make_step(build_model(TINY_HIDDEN, seed=0), recipe, 10**6, dtype)
    tiny_x, tiny_y = x[:TINY_BATCH], y[:TINY_BATCH]
    # name -> (what one call runs, calls a round): STEPS steps a round either way
    parts = {"floor": (floor, STEPS), "fwd+bwd": (lambda: no_update(x, y), STEPS), "step": (lambda: step(x, y), STEPS),
             "step-torch": (lambda: torch_update(x, y), STEPS),
             "wgrad-mm": (lambda: torch.mm(g1.t(), x, out=w1_grad), STEPS),
             "wgrad-addmm": (lambda: w1_grad.zero_().addmm_(g1.t(), x), STEPS),
             "idiomatic": (lambda: idiomatic(x.float(), y), STEPS),
             "epoch": (lambda: train_one_epoch(epoch_step, batches, 1, progress=False), 1),
             "idiom-epoch": (lambda: _idiomatic_epoch(idiomatic, images, labels, recipe.batch_size), 1),
             "tiny step": (lambda: tiny_step(tiny_x, tiny_y), STEPS)}
    if args.baseline_src:
        base = _import_baseline(args.baseline_src)
        base_step = base.make_step(base.build_model(seed=0), base.get_recipe(args.recipe), 10**6, dtype)
        base_epoch_step = base.make_step(base.build_model(seed=0), base.get_recipe(args.recipe), 10**6, dtype)
        base_batches = base.EpochBatches(images.to(dtype), labels, recipe.batch_size, seed=0)
        parts["step (baseline)"] = (lambda: base_step(x, y), STEPS)
        parts["epoch (baseline)"] = (lambda: base.train_one_epoch(base_epoch_step, base_batches, 1, progress=False), 1)
        base_tiny_step = base.make_step(base.build_model(TINY_HIDDEN, seed=0), base.get_recipe(args.recipe), 10**6, dtype)
        parts["tiny step (baseline)"] = (lambda: base_tiny_step(tiny_x, tiny_y), STEPS)
    for part, calls in parts.values():  # warm-up: first-call costs, allocator
        for _ in range(max(1, calls // 20)):
            part()
    seconds = {name: [] for name in parts}
    for _ in range(args.rounds):
        for name, (part, calls) in parts.items():
            started = time.perf_counter()
            for _ in range(calls):
                part()
            seconds[name].append(time.perf_counter() - started)
    print(f"{args.recipe} recipe, batch {recipe.batch_size}, {args.precision}, {type(step).__name__}, "
          f"{torch.get_num_threads()} threads; seconds per {STEPS} steps, round by round")
    for name, values in seconds.items():
        print(f"{name:20s} " + " ".join(f"{v:.3f}" for v in values))
    ratios = " ".join(f"{m / a:.2f}" for m, a in zip(seconds["wgrad-mm"], seconds["wgrad-addmm"]))
    print(f"wgrad-mm / wgrad-addmm: {ratios}")
    pairs = [("idiomatic", "step"), ("idiomatic", "step-torch"), ("idiom-epoch", "epoch"), ("idiomatic", "floor")]
    if args.baseline_src:
        pairs += [("step (baseline)", "step"), ("epoch (baseline)", "epoch"), ("tiny step (baseline)", "tiny step")]
    for peer, name in pairs:
        ratios = [i / s for i, s in zip(seconds[peer], seconds[name])]
        rounds = " ".join(f"{r:.2f}" for r in ratios)
        fastest = min(seconds[peer]) / min(seconds[name])
        print(f"{peer} / {name}: {rounds}  (median {statistics.median(ratios):.2f}; fastest rounds {fastest:.2f})")


def _import_baseline(src: str) -> SimpleNamespace:
    """What this benchmark calls of digitnet, imported from another tree's src folder; its modules are
    then renamed in sys.modules ("baseline:digitnet...") and this tree's put back."""
    def ours() -> dict:
        return {name: module for name, module in sys.modules.items() if name.split(".")[0] == "digitnet"}

    current = ours()
    for name in current:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        def load(module: str, name: str):
            return getattr(importlib.import_module(f"digitnet.{module}"), name)

        return SimpleNamespace(build_model=load("model", "build_model"), get_recipe=load("recipes", "get_recipe"),
                               make_step=load("training.steps", "make_step"),
                               EpochBatches=load("data.batches", "EpochBatches"),
                               train_one_epoch=load("training.loop", "train_one_epoch"))
    finally:
        sys.path.remove(src)
        for name, module in ours().items():
            sys.modules[f"baseline:{name}"] = sys.modules.pop(name)
        sys.modules.update(current)


def _idiomatic_step(recipe):
    """run(x, y): one step as an idiomatic PyTorch loop writes it, for the recipe's loss, optimiser and schedule."""
    from digitnet.losses import make_loss
    from digitnet.training.optim import lr_factor, make_optimizer

    model = build_model(seed=0)
    loss_fn = make_loss(recipe.loss, recipe.label_smoothing)
    optimizer = make_optimizer(model, recipe)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(recipe, 10**6))

    def run(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
        schedule.step()

    return run


def _idiomatic_epoch(run, images, labels, batch_size: int) -> None:
    """One epoch of run(x, y) as an idiomatic script walks the data: a fresh permutation, x[index]."""
    order = torch.randperm(len(images))
    for start in range(0, len(images), batch_size):
        index = order[start : start + batch_size]
        run(images[index], labels[index])


if __name__ == "__main__":
    import warnings

    # fwd+bwd's schedule advances without an optimiser step, which torch's LambdaLR warns of
    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
    main()
