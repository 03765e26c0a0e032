"""benchmarks/machine.py: the line that tells the machines of docs/performance.md's tables apart."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from machine import describe_cpu  # noqa: E402

ZEN5 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
flags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni

processor\t: 1
cpu family\t: 99
model name\t: not the first processor
"""

SAPPHIRE_RAPIDS = """processor\t: 0
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""


def test_two_machines_that_share_a_model_name_get_different_lines():
    zen4 = ZEN5.replace("cpu family\t: 26", "cpu family\t: 25").replace("model\t\t: 2", "model\t\t: 17")
    assert describe_cpu(ZEN5).startswith("AMD EPYC (family 26 model 2; AVX-512, AVX512-BF16, no AMX-BF16), ")
    assert describe_cpu(zen4).startswith("AMD EPYC (family 25 model 17; ")
    assert describe_cpu(SAPPHIRE_RAPIDS).startswith(
        "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz (family 6 model 143; AVX-512, AVX512-BF16, AMX-BF16), ")


def test_a_machine_without_cpuinfo_still_gets_a_line():
    assert describe_cpu("").endswith(" logical CPUs")
    assert "no AVX-512" in describe_cpu("model name\t: old\nflags\t\t: sse avx2\n")
