"""training/memory.py: freed memory kept in the process (glibc's malloc thresholds), checked in fresh processes."""

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's malloc only")

# in a fresh process: nothing, retain_freed_memory(), or a one-epoch fit(); then malloc and free a
# 20 MiB block with glibc's own calls and print the free bytes its heap holds
_PROBE = """
import ctypes, sys
import numpy as np

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

if sys.argv[1] == "retain":
    from digitnet.training.memory import retain_freed_memory
    assert retain_freed_memory() is True
elif sys.argv[1] == "fit":
    from digitnet.data import Dataset
    from digitnet.recipes import get_recipe
    from digitnet.training import TrainConfig, fit
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (80, 28, 28), dtype=np.uint8), rng.integers(0, 10, 80)
    data = Dataset("synthetic", images[:64], labels[:64], images[64:], labels[64:], tuple("0123456789"))
    fit(TrainConfig(get_recipe("tutorial", epochs=1), "synthetic"), data, progress=False)
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
block = libc.malloc(20 << 20)
ctypes.memset(block, 1, 20 << 20)
libc.free(block)
print(libc.mallinfo2().fordblks)
"""


def _free_bytes_held_after_freeing_20_mib(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_a_freed_block_of_megabytes_stays_in_the_heap_for_reuse_once_set_so():
    assert _free_bytes_held_after_freeing_20_mib("default") < 20 << 20  # glibc's default: unmapped at once
    assert _free_bytes_held_after_freeing_20_mib("retain") >= 20 << 20  # kept for the next step's block


def test_training_keeps_freed_memory_for_reuse():
    assert _free_bytes_held_after_freeing_20_mib("fit") >= 20 << 20
