"""Download data files from a list of mirrors into a cache, atomically and verified.

Each file is streamed into a temporary file in the cache folder, its decompressed
SHA-256 checked, and only then renamed into place; a file that fails is deleted and
the next mirror is tried. The error after the last mirror lists every attempt.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from digitnet.data.idx import read_idx_bytes
from digitnet.data.sources import IdxFile, known_file
from digitnet.errors import DataError, DownloadError
from digitnet.fsutil import atomic_path

MIRRORS_ENV = "DIGITNET_MIRRORS"
DEADLINE_ENV = "DIGITNET_DOWNLOAD_DEADLINE"
TIMEOUT_SECONDS = 30  # with no byte arriving
_CHUNK = 1 << 16


def mirrors_for(default: tuple[str, ...]) -> tuple[str, ...]:
    """The mirror list: DIGITNET_MIRRORS (comma-separated base URLs) overrides the table."""
    override = os.environ.get(MIRRORS_ENV, "").strip()
    if override:
        return tuple(m.strip() for m in override.split(",") if m.strip())
    return default


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_file(path: Path, expected: IdxFile, dataset: str = "") -> bytes:
    """Return the decompressed bytes of path, or raise DataError if they fail the checksum (naming
    the data set the file belongs to when it is another one's)."""
    data = read_idx_bytes(path, expected.size)
    digest = sha256_hex(data)
    if digest != expected.sha256:
        other = known_file(digest)
        if other is not None:
            raise DataError(f"{path}: this is {other}, not {dataset or 'the requested data set'}'s; give the folder "
                            f"of {dataset or 'that data set'}'s files")
        raise DataError(
            f"{path}: SHA-256 of the decompressed data is {digest[:16]}..., expected {expected.sha256[:16]}...; "
            "the file is corrupt or not the original"
        )
    return data


def download_deadline(expected: IdxFile) -> float:
    """Seconds one file may take from one mirror: DIGITNET_DOWNLOAD_DEADLINE, else a minute plus
    what its size takes at 50 kB/s (a mirror dripping bytes is given up, not waited on forever)."""
    override = os.environ.get(DEADLINE_ENV, "").strip()
    try:
        return float(override) if override else 60.0 + expected.size / 50_000
    except ValueError:
        raise DataError(f"{DEADLINE_ENV}={override!r}: give a number of seconds") from None


def _stream_to(url: str, dest, progress: bool, limit: int, seconds: float) -> None:
    """Copy url into dest; DownloadCut past `limit` bytes or after `seconds`."""
    from tqdm import tqdm

    deadline = time.monotonic() + seconds
    request = urllib.request.Request(url, headers={"User-Agent": "digitnet"})
    timeout = max(1.0, min(TIMEOUT_SECONDS, deadline - time.monotonic()))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        declared = int(response.headers.get("Content-Length") or 0) or None
        if declared is not None and declared > limit:
            raise DownloadCut(f"it announces {declared:,} bytes, more than the file can be ({limit:,})")
        with tqdm(total=declared, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                  disable=None if progress else True, leave=False) as bar:
            received = 0
            while chunk := response.read1(_CHUNK):  # whatever has arrived: the deadline is checked often
                received += len(chunk)
                if received > limit:
                    raise DownloadCut(f"it sent more than {limit:,} bytes, more than the file can be")
                if time.monotonic() > deadline:
                    raise DownloadCut(f"it was still sending after {seconds:g} s")
                dest.write(chunk)
                bar.update(len(chunk))


class DownloadCut(Exception):
    """A mirror sent too much or too slowly."""


def _short_reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", exc)
    return (str(reason).splitlines() or [type(exc).__name__])[0][:80]


def download_file(
    expected: IdxFile, folder: Path, mirrors: tuple[str, ...], progress: bool = True
) -> tuple[Path, bytes]:
    """Fetch "<name>.gz" from the first mirror that delivers a verified copy within its size cap
    (the file's known decompressed size: its .gz is smaller) and its deadline.

    Returns the final path and the decompressed bytes. Raises DownloadError saying why each
    mirror failed, in one line.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{expected.name}.gz"
    limit = expected.size + (1 << 16)  # a .gz of incompressible data is a few bytes larger than the data
    seconds = download_deadline(expected)
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + f"/{expected.name}.gz"
        host = urllib.parse.urlsplit(url).netloc or url
        try:
            with atomic_path(final) as tmp:
                with open(tmp, "wb") as dest:
                    _stream_to(url, dest, progress, limit, seconds)
                data = verify_file(tmp, expected)
            return final, data
        except urllib.error.HTTPError as exc:
            failures.append((host, f"HTTP {exc.code}"))
        except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as exc:  # ValueError: a bad URL
            failures.append((host, _short_reason(exc)))
        except DownloadCut as exc:
            failures.append((host, str(exc)))
        except DataError as exc:
            failures.append((host, f"failed verification: {str(exc).split(': ', 1)[-1][:80]}"))
    raise DownloadError(f"could not download {expected.name}.gz: {_summary(failures)}")


def _summary(failures: list[tuple[str, str]]) -> str:
    """"3 mirrors tried, each: Connection refused" when every mirror failed alike, else each one's reason."""
    if not failures:
        return "no mirrors configured"
    reasons = {reason for _, reason in failures}
    if len(failures) > 1 and len(reasons) == 1:
        return f"{len(failures)} mirrors tried, each: {reasons.pop()}"
    return "; ".join(f"{host}: {reason}" for host, reason in failures)
