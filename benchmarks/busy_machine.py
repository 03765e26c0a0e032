"""Training while other work runs: seconds per epoch for each thread and wait policy, quiet and busy.

    python benchmarks/busy_machine.py [--recipe tutorial] [--epochs 4] [--rounds 3] [--busy 1]

Each configuration trains `--recipe` on mnist-10k from ../shared/data in a fresh process (the
OpenMP runtime reads its environment once, at start) and reports the median seconds per epoch
after the first. "busy" runs --busy competing processes that spin on the CPU meanwhile (a
compiler, a browser, another training run). Rounds are interleaved, so a change in the machine's
load during the benchmark hits every configuration alike.

Policies:
  torch default     torch's threads = cores, OpenMP's default wait (idle threads spin a while)
  passive wait      the same threads, OMP_WAIT_POLICY=PASSIVE (idle threads sleep at once)
  one thread        torch.set_num_threads(1)
  --threads auto    digitnet's choice at the start: the cores other processes leave idle
  spin 1k, spin 30k the same threads, GOMP_SPINCOUNT=1000 / 30000 (libgomp's spin before sleeping;
                    3000 and 10000 measured between them, 2026-11-27)

Changing the thread count also changes the bits of the result (measured: 2 epochs of each recipe
with 1 and with 2 threads give different weights), so a policy that adapts the count to the load
would end bit-identical resume; the choice holds for a whole run (training/threads.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import describe_cpu

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist-t10k"

CHILD = """
import json, sys, time, torch
from digitnet.data import load_dataset
from digitnet.runs import train
mode, recipe, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "one":
    torch.set_num_threads(1)
data = load_dataset("mnist-10k", sys.argv[4], progress=False)
result = train(recipe, data, epochs=epochs, write_run=False, progress=False, device="cpu",
               threads="auto" if mode == "auto" else None)
print(json.dumps([r.seconds for r in result.history]))
"""

POLICIES = {"torch default": ("default", {}), "passive wait": ("default", {"OMP_WAIT_POLICY": "PASSIVE"}),
            "one thread": ("one", {}), "--threads auto": ("auto", {}),
            "spin 1k": ("default", {"GOMP_SPINCOUNT": "1000"}), "spin 30k": ("default", {"GOMP_SPINCOUNT": "30000"})}


def _spin(stop_at: float) -> None:
    x = 0
    while time.monotonic() < stop_at:
        x += 1


def run(policy: str, recipe: str, epochs: int) -> float:
    mode, extra = POLICIES[policy]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    env.update(extra)
    done = subprocess.run([sys.executable, "-c", CHILD, mode, recipe, str(epochs), str(DATA)], env=env,
                          capture_output=True, text=True, check=True)
    seconds = json.loads(done.stdout.strip().splitlines()[-1])
    return statistics.median(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="tutorial")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=1, help="competing busy processes in the busy condition")
    args = parser.parse_args()
    cpu = describe_cpu()
    print(f"# {time.strftime('%Y-%m-%d')}, {cpu}, recipe {args.recipe}, "
          f"median s/epoch over epochs 2-{args.epochs}, {args.rounds} interleaved rounds")
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for condition in ("quiet", "busy"):
            for policy in POLICIES:
                spinners = []
                if condition == "busy":
                    stop_at = time.monotonic() + 600
                    spinners = [multiprocessing.Process(target=_spin, args=(stop_at,)) for _ in range(args.busy)]
                    for s in spinners:
                        s.start()
                try:
                    results.setdefault((policy, condition), []).append(run(policy, args.recipe, args.epochs))
                finally:
                    for s in spinners:
                        s.terminate()
                        s.join()
    print("| policy | quiet s/epoch | busy s/epoch | busy / quiet |")
    print("| --- | ---: | ---: | ---: |")
    for policy in POLICIES:
        quiet = statistics.median(results[(policy, "quiet")])
        busy = statistics.median(results[(policy, "busy")])
        print(f"| {policy} | {quiet:.3f} | {busy:.3f} | {busy / quiet:.2f} |")


if __name__ == "__main__":
    main()
