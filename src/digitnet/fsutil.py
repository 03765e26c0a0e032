"""Writing files so that a crash or a full disk never leaves a partial file in place."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

# Fault injection for the kill tests: seconds to pause after a temporary file is written and
# before it is renamed into place, so that a SIGKILL can be landed inside a write.
WRITE_DELAY_ENV = "DIGITNET_FAULT_WRITE_DELAY"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.

    On any error the temporary file is removed and `path` keeps its old content.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        delay = float(os.environ.get(WRITE_DELAY_ENV) or 0)
        if delay:
            time.sleep(delay)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
