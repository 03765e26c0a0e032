"""Which CPU a benchmark ran on, in one line: the model name alone does not tell machines apart.

Our machines change from day to day and two kinds both call themselves "AMD EPYC", so the line adds the
CPU family and model numbers and the instruction sets that decide the GEMMs' speed (AVX-512, its BF16
instructions, AMX), as /proc/cpuinfo gives them.
"""

from __future__ import annotations

import os
import platform

from digitnet.cpuinfo import first_processor

# flag in /proc/cpuinfo -> the name written in the line
ISA_FLAGS = {"avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}


def describe_cpu(cpuinfo: str | None = None) -> str:
    """e.g. "AMD EPYC (family 26 model 2; AVX-512, AVX512-BF16, no AMX-BF16), 2 logical CPUs"."""
    fields = first_processor(cpuinfo)
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    details = []
    if "cpu family" in fields:
        details.append(f"family {fields['cpu family']} model {fields.get('model', '?')}")
    if "flags" in fields:
        flags = set(fields["flags"].split())
        details.append(", ".join(label if flag in flags else f"no {label}" for flag, label in ISA_FLAGS.items()))
    described = f"{name} ({'; '.join(details)})" if details else name
    return f"{described}, {os.cpu_count()} logical CPUs"
