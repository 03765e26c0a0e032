"""Keeping the memory a training step frees for the next step, instead of handing it back to the system.

glibc's malloc gives a block above its mmap threshold (128 KiB at first, raised as the process frees
such blocks, up to 32 MiB) a mapping of its own, unmapped when it is freed, and hands the top of its
heap back once more than twice that threshold lies free there. A step of the convnet frees and
allocates the same blocks of several MB every step (its first layer's output and that output's
gradient are 12.8 MB each at batch 128); whenever the thresholds of the moment put one outside the
heap, its pages are faulted in afresh, 4 KiB at a time, on the next step. Which blocks do so depends
on the order of allocations, so two runs of the same command differed: on a 2-core AMD EPYC, four
epochs of `digitnet train --recipe cnn --dataset mnist-10k` took 0.1-1.3 million page faults and
1.8-3.2 s per epoch in eight runs, and 0.10-0.11 million and 1.7-2.0 s in six with the thresholds below
(docs/performance.md).
"""

from __future__ import annotations

import ctypes
import functools
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts: every block of up to 32 MiB comes from the heap
TRIM_THRESHOLD = 256 << 20  # free memory at the heap's top kept for reuse, up to this much


@functools.cache
def retain_freed_memory() -> bool:
    """Set glibc's malloc to serve blocks of up to 32 MiB from its heap and to keep up to 256 MiB of
    freed memory there for reuse, for the rest of the process. True where that was done (Linux with
    glibc); elsewhere a no-op returning False."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
