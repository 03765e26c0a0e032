"""Where one training step of an MLP recipe spends its time, on a fixed batch, in one process.

    python benchmarks/step_breakdown.py [--recipe best] [--rounds 5] [--precision fp32]

Interleaves, round by round, 469 repetitions (one Fashion-MNIST epoch at batch 128) of:
  floor        the eight GEMMs backprop needs, alone (3 forward, 3 weight-gradient, 2 input-gradient)
  fwd+bwd      digitnet's step with the optimiser's update removed (GEMMs, loss gradient, bias sums, ReLUs)
  step         digitnet's whole step (the above, the recipe's optimiser and schedule)
  step-torch   the same step with torch.optim's own optimizer.step() as the update (for AdamW on the
               CPU, digitnet calls the same fused kernel directly: training/optim.py, HostFusedAdamW)
  wgrad-mm     the first layer's weight gradient (256 x 784, from the batch of 128) by torch.mm(out=):
               MKL's GEMM overwriting its result (beta 0)
  wgrad-addmm  the same gradient zeroed, then added to by addmm_ (beta 1), as BackpropStep computes it
  idiomatic    an idiomatic PyTorch step (nn.Sequential, autograd, the recipe's loss, torch.optim's
               optimiser, fused where it can be, and LambdaLR), the peer of train_speed.py's
               torch-idiomatic rows, on the same batch
and prints each round's seconds, so a machine whose speed drifts shows it, and per round the ratios
idiomatic / step (digitnet's lead) and idiomatic / floor (the most any step made of these GEMMs could lead by);
then the ratio of each part's fastest round: another tenant's load only ever adds time, so the fastest
rounds are the closest to what each loop costs on this machine alone.
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

import torch

from digitnet.model import build_model
from digitnet.recipes import get_recipe
from digitnet.training.steps import make_step

STEPS = 469


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="best")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
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
    torch_update.updater = torch_update.optimizer
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
    parts = {"floor": floor, "fwd+bwd": lambda: no_update(x, y), "step": lambda: step(x, y),
             "step-torch": lambda: torch_update(x, y), "wgrad-mm": lambda: torch.mm(g1.t(), x, out=w1_grad),
             "wgrad-addmm": lambda: w1_grad.zero_().addmm_(g1.t(), x),
             "idiomatic": _idiomatic_step(recipe, x.float(), y)}
    for part in parts.values():  # warm-up: first-call costs, allocator
        for _ in range(20):
            part()
    seconds = {name: [] for name in parts}
    for _ in range(args.rounds):
        for name, part in parts.items():
            started = time.perf_counter()
            for _ in range(STEPS):
                part()
            seconds[name].append(time.perf_counter() - started)
    print(f"{args.recipe} recipe, batch {recipe.batch_size}, {args.precision}, {type(step).__name__}, "
          f"{torch.get_num_threads()} threads; seconds per {STEPS} steps, round by round")
    for name, values in seconds.items():
        print(f"{name:11s} " + " ".join(f"{v:.3f}" for v in values))
    ratios = " ".join(f"{m / a:.2f}" for m, a in zip(seconds["wgrad-mm"], seconds["wgrad-addmm"]))
    print(f"wgrad-mm / wgrad-addmm: {ratios}")
    for name in ("step", "step-torch", "floor"):
        ratios = [i / s for i, s in zip(seconds["idiomatic"], seconds[name])]
        rounds = " ".join(f"{r:.2f}" for r in ratios)
        fastest = min(seconds["idiomatic"]) / min(seconds[name])
        print(f"idiomatic / {name}: {rounds}  (median {statistics.median(ratios):.2f}; fastest rounds {fastest:.2f})")


def _idiomatic_step(recipe, x, y):
    """One step as an idiomatic PyTorch loop writes it, for the recipe's loss, optimiser and schedule."""
    from digitnet.losses import make_loss
    from digitnet.training.optim import lr_factor, make_optimizer

    model = build_model(seed=0)
    loss_fn = make_loss(recipe.loss, recipe.label_smoothing)
    optimizer = make_optimizer(model, recipe)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(recipe, 10**6))

    def run():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
        schedule.step()

    return run


if __name__ == "__main__":
    import warnings

    # fwd+bwd's schedule advances without an optimiser step, which torch's LambdaLR warns of
    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
    main()
