"""Download data files from a list of mirrors into a cache, atomically and verified.

Each file is streamed into a temporary file in the cache folder, its decompressed
SHA-256 checked, and only then renamed into place; a file that fails is deleted and
the next mirror is tried. The error after the last mirror lists every attempt.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from digitnet.data.idx import read_idx_bytes
from digitnet.data.sources import IdxFile
from digitnet.errors import DataError, DownloadError
from digitnet.fsutil import atomic_path

MIRRORS_ENV = "DIGITNET_MIRRORS"
TIMEOUT_SECONDS = 30
_CHUNK = 1 << 16


def mirrors_for(default: tuple[str, ...]) -> tuple[str, ...]:
    """The mirror list: DIGITNET_MIRRORS (comma-separated base URLs) overrides the table."""
    override = os.environ.get(MIRRORS_ENV, "").strip()
    if override:
        return tuple(m.strip() for m in override.split(",") if m.strip())
    return default


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_file(path: Path, expected: IdxFile) -> bytes:
    """Return the decompressed bytes of path, or raise DataError if they fail the checksum."""
    data = read_idx_bytes(path)
    digest = sha256_hex(data)
    if digest != expected.sha256:
        raise DataError(
            f"{path}: SHA-256 of the decompressed data is {digest[:16]}..., expected {expected.sha256[:16]}...; "
            "the file is corrupt or not the original"
        )
    return data


def _stream_to(url: str, dest, progress: bool) -> None:
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "digitnet"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
            disable=None if progress else True, leave=False,
        ) as bar:
            while chunk := response.read(_CHUNK):
                dest.write(chunk)
                bar.update(len(chunk))


def download_file(
    expected: IdxFile, folder: Path, mirrors: tuple[str, ...], progress: bool = True
) -> tuple[Path, bytes]:
    """Fetch "<name>.gz" from the first mirror that delivers a verified copy.

    Returns the final path and the decompressed bytes. Raises DownloadError listing
    every mirror tried and why it failed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{expected.name}.gz"
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + f"/{expected.name}.gz"
        try:
            with atomic_path(final) as tmp:
                with open(tmp, "wb") as dest:
                    _stream_to(url, dest, progress)
                data = verify_file(tmp, expected)
            return final, data
        except urllib.error.HTTPError as exc:
            failures.append(f"{url} (HTTP {exc.code})")
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            failures.append(f"{url} ({getattr(exc, 'reason', exc)})")
        except DataError as exc:
            failures.append(f"{url} (failed verification: {str(exc).split(': ', 1)[-1]})")
        except ValueError as exc:  # a malformed mirror URL
            failures.append(f"{url} ({exc})")
    raise DownloadError(
        f"could not download {expected.name}.gz; tried: " + "; ".join(failures or ["no mirrors configured"])
    )
