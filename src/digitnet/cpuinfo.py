"""The CPU this process runs on, as Linux's /proc/cpuinfo describes it.

One reader for the plan of cpu_linear (which GEMMs oneDNN takes) and the line benchmarks/machine.py
prints above every table: both need the vendor, family, model and instruction-set flags.
"""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def first_processor(text: str | None = None) -> dict[str, str]:
    """The first processor's fields ("vendor_id", "cpu family", "model", "model name", "flags", ...)
    from cpuinfo's text (this machine's where text is None; none where it cannot be read)."""
    if text is None:
        try:
            text = CPUINFO.read_text()
        except OSError:
            return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block has ended
            continue
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields
