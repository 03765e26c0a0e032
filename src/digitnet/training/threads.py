"""How many CPU threads a run computes with, chosen once per run and kept by its resume.

The count decides how a matrix product's sums are split, so it changes the result's bits: a run
that changed it as the load came and went could not be repeated or resumed bit for bit. So the
count is fixed for a whole run, recorded in config.json, and reused by `--resume`:

- default: every core torch sees (the fastest on a quiet machine; reproducible from --seed);
- `--threads N`: N threads;
- `--threads auto`: the cores left idle by other processes when the run starts (measured over a
  quarter of a second). With another process busy on one of two cores, it trains 2.1-2.4x faster
  than the default's two threads, which wait on each other while one is descheduled, and as fast
  as the default on a quiet machine (docs/performance.md). Not the default: two runs with the same
  seed would then differ in their last bits whenever the load at their starts differed.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import torch

from digitnet.errors import ConfigError

PROBE_SECONDS = 0.25


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs since boot, from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])


def idle_cores(seconds: float = PROBE_SECONDS) -> float:
    """How many of the machine's cores sat idle over the next `seconds` (load average where
    /proc/stat is missing)."""
    cores = os.cpu_count() or 1
    before = _cpu_times()
    if before is None:
        return max(0.0, cores - os.getloadavg()[0])
    time.sleep(seconds)
    after = _cpu_times()
    total = after[1] - before[1]
    return cores * (after[0] - before[0]) / total if total > 0 else float(cores)


def available_cores() -> int:
    """The cores this process may run on (its affinity), which is what torch's default uses."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(request: int | str | None) -> int:
    """The thread count a run will record: None -> torch's current count; "auto" -> the idle cores
    (at least 1); an integer >= 1 as given."""
    if request is None:
        return torch.get_num_threads()
    if request == "auto":
        return max(1, min(available_cores(), int(idle_cores() + 0.5)))
    if type(request) is not int or request < 1:
        raise ConfigError(f"--threads {request!r}: give a number of threads >= 1, or auto")
    return request


@contextmanager
def thread_count(threads: int | None):
    """Compute with `threads` threads inside the block (None: leave torch's setting alone)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
